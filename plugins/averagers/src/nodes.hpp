#pragma once
#include "caulk/registry.hpp"

namespace caulk::averagers {
void register_predictions_io(PluginRegistrar& r);
void add_predictions_data_check(NodeSpec& spec);  // predictions_check.cpp
void register_local(PluginRegistrar& r);
void register_baselines(PluginRegistrar& r);
void register_report(PluginRegistrar& r);
void register_simulation(PluginRegistrar& r);
}  // namespace caulk::averagers
