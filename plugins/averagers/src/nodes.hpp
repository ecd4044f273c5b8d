#pragma once
#include "caulk/registry.hpp"

namespace caulk::averagers {
void register_predictions_io(PluginRegistrar& r);
void register_local(PluginRegistrar& r);
void register_baselines(PluginRegistrar& r);
void register_report(PluginRegistrar& r);
void register_simulation(PluginRegistrar& r);
}  // namespace caulk::averagers
