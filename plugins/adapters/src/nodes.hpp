#pragma once
#include "caulk/registry.hpp"

namespace caulk::adapters {
void register_dataset_load(PluginRegistrar& r);
void register_precomputed(PluginRegistrar& r);
void register_dataset_images(PluginRegistrar& r);
// Their data checks (data_checks.cpp).
void add_dataset_data_check(NodeSpec& spec);
void add_hub_data_check(NodeSpec& spec);
void add_images_data_check(NodeSpec& spec);
}  // namespace caulk::adapters
