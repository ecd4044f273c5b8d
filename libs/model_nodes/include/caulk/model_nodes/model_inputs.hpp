// What the model nodes share: the hub of checkpoints they work on, and a dataset split as samples.
#pragma once
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/models/hub.hpp"

namespace caulk::models {

// A split's model inputs as columns, with its class indices or targets. Throws Error naming the
// split and the dataset files when the split has no inputs.
mlp::Samples split_samples(const Dataset& data, const std::string& split);
// The splits of a dataset that have model inputs.
std::vector<std::string> splits_with_inputs(const Dataset& data);

}  // namespace caulk::models
