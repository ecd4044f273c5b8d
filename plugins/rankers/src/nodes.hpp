#pragma once
#include "caulk/registry.hpp"

namespace caulk::rankers {
void register_logme(PluginRegistrar& r);
}  // namespace caulk::rankers
