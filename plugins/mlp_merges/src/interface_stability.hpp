// analysis.scale_stability of a model that is not a caulk MLP (a TorchScript module with its
// weights), through the model interface (caulk/models/model.hpp).
#pragma once
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/models/model.hpp"
#include "mlp_merges/algorithms/scale_stability.hpp"

namespace caulk::mlp_merges {

// Every parameter of the model multiplied by s (in float32, as PyTorch's p * s) for each s of
// `scales`: the accuracy of the predicted classes (the first maximum of the logits) against the
// split's labels, and their agreement with the unscaled model's. Batches of 64 samples.
std::vector<ScalePoint> interface_scale_stability(const models::ModelSource& source, const Dataset& data, const std::string& split,
                                                  const std::vector<double>& scales);

}  // namespace caulk::mlp_merges
