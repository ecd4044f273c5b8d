// Prediction stability versus parameter magnitude (methods.md section 3; paper 3, perspective 3):
// multiply a model's parameters (all of them, or one layer's weight and bias) by s for each s of a
// grid, and record the accuracy of the scaled model and its agreement with the unscaled one (the
// fraction of samples whose predicted class, the first maximum, is unchanged).
#pragma once
#include <vector>

#include "caulk/mlp/mlp.hpp"
#include "caulk/mlp/training.hpp"

namespace caulk::mlp_merges {

struct ScalePoint {
  double scale = 1;
  double accuracy = 0;   // against the samples' labels
  double agreement = 0;  // with the unscaled model's predicted classes
};

// Softmax models only (Error otherwise). `layer` < 0 scales every parameter.
std::vector<ScalePoint> scale_stability(const mlp::Model<float>& m, const mlp::Samples& data, const std::vector<double>& scales,
                                        int layer = -1);

}  // namespace caulk::mlp_merges
