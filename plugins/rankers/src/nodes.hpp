#pragma once
#include "caulk/registry.hpp"

namespace caulk::rankers {
void register_logme(PluginRegistrar& r);
void register_covariance_rankers(PluginRegistrar& r);
void register_source_probability_rankers(PluginRegistrar& r);
void register_class_model_rankers(PluginRegistrar& r);
}  // namespace caulk::rankers
