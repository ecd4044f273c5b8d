// What the model nodes share: the hub of checkpoints they work on, and a dataset split as samples.
#pragma once
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/mlp/training.hpp"

namespace caulk::models {

// Declares the optional `models` input (Checkpoint) and the optional `manifest` parameter (a
// checkpoint hub manifest); a node takes its models from exactly one of them.
void declare_hub(NodeSpec& s);
// The models of the `models` input or the manifest, optionally restricted to the `only` parameter's
// list (when the node declares it). Throws Error when neither or both are given, or a listed
// model is not in the hub.
std::vector<CheckpointRef> hub_models(const NodeContext& ctx);

// A split's model inputs as columns, with its class indices or targets. Throws Error naming the
// split and the dataset files when the split has no inputs.
mlp::Samples split_samples(const Dataset& data, const std::string& split);
// The splits of a dataset that have model inputs.
std::vector<std::string> splits_with_inputs(const Dataset& data);

}  // namespace caulk::models
