#pragma once
#include "caulk/registry.hpp"

namespace caulk::tuners {
void register_btuning(PluginRegistrar& r);
void register_distill(PluginRegistrar& r);
void register_top_ranked(PluginRegistrar& r);
void register_subsample(PluginRegistrar& r);
void register_aggregate(PluginRegistrar& r);
}  // namespace caulk::tuners
