#pragma once
#include "caulk/registry.hpp"

namespace caulk::evaluators {
void register_rank_correlation(PluginRegistrar& r);
void add_rank_correlation_data_check(NodeSpec& spec);  // rank_correlation_check.cpp
void register_prediction_evals(PluginRegistrar& r);    // eval.classification, eval.regression
}  // namespace caulk::evaluators
