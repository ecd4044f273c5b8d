#pragma once
#include "caulk/registry.hpp"

namespace caulk::adapters {
void register_dataset_load(PluginRegistrar& r);
void register_precomputed(PluginRegistrar& r);
}  // namespace caulk::adapters
