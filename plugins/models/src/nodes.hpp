#pragma once
#include "caulk/registry.hpp"

namespace caulk::models {
void register_zoo_pretrain(PluginRegistrar& r);
void register_adapter_mlp(PluginRegistrar& r);
void register_adapter_models(PluginRegistrar& r);
void register_tune_peft(PluginRegistrar& r);
void register_fisher(PluginRegistrar& r);
void register_sample_complexity(PluginRegistrar& r);
}  // namespace caulk::models
