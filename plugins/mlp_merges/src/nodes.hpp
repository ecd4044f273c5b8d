#pragma once
#include "caulk/registry.hpp"

namespace caulk::mlp_merges {
void register_merges(PluginRegistrar& r);
void register_ensembles(PluginRegistrar& r);
void register_analyses(PluginRegistrar& r);
}  // namespace caulk::mlp_merges
