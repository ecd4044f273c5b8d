#pragma once
#include "caulk/registry.hpp"

namespace caulk::mergers {
void register_checkpoint_load(PluginRegistrar& r);
void register_merge_nodes(PluginRegistrar& r);
void register_predict(PluginRegistrar& r);
void register_search(PluginRegistrar& r);
}  // namespace caulk::mergers
