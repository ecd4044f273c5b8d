#pragma once
#include "caulk/registry.hpp"

namespace caulk::evaluators {
void register_rank_correlation(PluginRegistrar& r);
}  // namespace caulk::evaluators
