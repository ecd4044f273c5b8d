// The tuning parameters tune.peft and eval.sample_complexity share, declared once so their
// descriptions (caulk nodes, docs/nodes.md) and their reading cannot drift apart.
#pragma once
#include "caulk/artifacts.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/node.hpp"

namespace caulk::models {

void declare_tuning_params(NodeSpec& s, const std::string& default_mode);
// `outputs` and `output` come from the dataset (classes or target columns).
mlp::PeftOptions peft_options(const Params& p, const Dataset& data, std::uint64_t seed);
mlp::TrainOptions train_options(const Params& p, std::uint64_t seed);

}  // namespace caulk::models
