// The tuning parameters tune.peft and eval.sample_complexity share, declared once so their
// descriptions (caulk nodes, docs/nodes.md) and their reading cannot drift apart.
#pragma once
#include "caulk/artifacts.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/models/model.hpp"
#include "caulk/models/training.hpp"
#include "caulk/node.hpp"

namespace caulk::models {

void declare_tuning_params(NodeSpec& s, const std::string& default_mode);
// `outputs` and `output` come from the dataset (classes or target columns).
mlp::PeftOptions peft_options(const Params& p, const Dataset& data, std::uint64_t seed);
mlp::TrainOptions train_options(const Params& p, std::uint64_t seed);

// Prepares a model of any family but the MLP (TorchScript) for the tuning the parameters ask,
// through the model interface: a new head (replace_head, from `seed`) for the dataset's classes or
// targets, then what trains: the head (linear_probe), the parameters matching the `trainable`
// globs and the head (partial), every parameter (full), or LoRA factors on the weights matching
// `lora_weights` and the head (lora; factors drawn from a seed derived from `seed`). `train` gives
// the feature size when the model does not know it yet. Throws Error naming the model and the
// parameter for adapter mode, a glob that matches nothing and LoRA on a parameter that is not a
// weight matrix. Returns the number of trainable values.
std::int64_t prepare_model(Model& model, const Params& p, const Dataset& data, std::uint64_t seed, const TrainingSamples& train);
// The MLP family tunes by its own modes (caulk/mlp/peft.hpp): throws Error naming the model when
// the parameters use what only other families take (`trainable`, `lora_weights`).
void check_mlp_params(const Params& p, const std::string& model);

}  // namespace caulk::models
