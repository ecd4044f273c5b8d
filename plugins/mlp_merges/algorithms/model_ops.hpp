// Operations on whole native MLPs that the merges and studies share: checking that models have one
// architecture, weighted parameter averages, the head after the feature layer as a model of its
// own, scaling parameters, and argmax predictions.
#pragma once
#include <string>
#include <vector>

#include "caulk/mlp/mlp.hpp"

namespace caulk::mlp_merges {

using mlp::Mat;
using mlp::Model;
using mlp::Vec;

// Throws caulk::Error unless every model has the architecture of models[0]: the same tensors
// (names and shapes), activation, output kind and feature layer. The message names both models
// (by `names`, parallel to `models`) and the first tensor or setting that differs.
void check_same_architecture(const std::vector<Model<float>>& models, const std::vector<std::string>& names);

// sum_i w_i theta_i / sum_i w_i for every parameter (accumulated in double). Empty weights mean
// uniform. The models must share one architecture (not checked here).
Model<float> average_models(const std::vector<const Model<float>*>& models, const std::vector<double>& weights = {});
Model<float> average_models(const std::vector<Model<float>>& models, const std::vector<double>& weights = {});

// The layers after the feature layer as a model that reads features: its layer 0 is the model's
// layer feature_layer + 1; adapters after later layers move with them. Running it on a model's
// features gives the model's outputs.
template <class S>
Model<S> head_of(const Model<S>& m);

// Every parameter multiplied by s (layer < 0), or only layers.{layer}.weight and .bias. Throws
// Error when the layer does not exist.
Model<float> scale_parameters(const Model<float>& m, double s, int layer = -1);

}  // namespace caulk::mlp_merges
