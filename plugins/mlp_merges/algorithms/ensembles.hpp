// Output and feature ensembles (methods.md section 3, "Weight averaging versus feature/output
// averaging"; paper 3, perspective 2): the alternatives to averaging weights.
//   output ensemble:  p(x) = (1/K) sum_k f_k(x)           (class probabilities or regression values)
//   feature ensemble: h(x) = (1/K) sum_k phi_k(x), the models' features (the feature layer's output),
//                     then either the averaged head (the uniform average of the K heads' weights)
//                     or a linear head refitted on h over training samples.
#pragma once
#include <vector>

#include "caulk/mlp/mlp.hpp"
#include "caulk/mlp/training.hpp"

namespace caulk::mlp_merges {

// N x C: the mean of the models' outputs on X (input_dim x N), each computed as the model alone
// computes it. The models need the same input and output dimensions, not the same architecture.
mlp::Mat<double> output_ensemble(const std::vector<mlp::Model<float>>& models, const mlp::Mat<float>& X);

// N x D: the mean of the models' features on X. Throws Error when feature dimensions differ.
mlp::Mat<double> mean_features(const std::vector<mlp::Model<float>>& models, const mlp::Mat<float>& X);

// The same in two steps, for models run anywhere (e.g. on other processes): each model's own
// matrix on X (N x C outputs, N x D features; float32 widened exactly), then their mean, summed in
// model order from zero and divided by K, exactly as output_ensemble and mean_features compute it.
// The per-model steps throw Error when the model does not take X's inputs; mean_of_features throws
// when the widths differ (naming the models by index), mean_of_outputs when the shapes differ.
mlp::Mat<double> model_outputs(const mlp::Model<float>& m, const mlp::Mat<float>& X);
mlp::Mat<double> model_features(const mlp::Model<float>& m, const mlp::Mat<float>& X);
mlp::Mat<double> mean_of_outputs(const std::vector<mlp::Mat<double>>& outputs);
mlp::Mat<double> mean_of_features(const std::vector<mlp::Mat<double>>& features);

// N x C: the head `head` (a model reading features, see head_of) applied to features (N x D).
mlp::Mat<double> apply_head(const mlp::Model<float>& head, const mlp::Mat<double>& features);

// The uniform average of the models' heads (the layers after the feature layer). Throws Error
// when the heads' architectures differ.
mlp::Model<float> averaged_head(const std::vector<mlp::Model<float>>& models);

// A linear head z = W h + b refitted on features F (N x D) by L-BFGS from zero, minimising
//   softmax:  (1/N) sum_i [ logsumexp(z_i) - z_i,y_i ] + (wd / 2) ||W||^2
//   identity: (1/(N C)) sum_i ||z_i - y_i||^2 + (wd / 2) ||W||^2
// (mlp::linear_head_objective, as mlp::fit_head_lbfgs; the linear probe's objective). Returned as a
// one-layer head model.
struct RefitOptions {
  double weight_decay = 1e-3;
  int max_iterations = 500;
  double tolerance = 1e-8;  // on the gradient norm, relative to max(1, ||theta||)
};
mlp::Model<float> refit_linear_head(const mlp::Mat<double>& features, const mlp::Targets<float>& targets, int outputs, mlp::Output output,
                                    const RefitOptions& options);

}  // namespace caulk::mlp_merges
