// Losses, backpropagation and the diagonal Fisher information of an MLP.
//
// The loss follows the model's output: softmax outputs use the mean cross-entropy, identity outputs
// the mean squared error over every sample and target column.
#pragma once
#include <vector>

#include "caulk/mlp/mlp.hpp"

namespace caulk::mlp {

// The targets of a batch's columns: class indices (softmax models) or values (out x N).
template <class S>
struct Targets {
  std::vector<int> classes;
  Mat<S> values;
};

// Sum over the batch of the per-sample loss, divided by `divisor` (the minibatch size, so that
// chunks of one minibatch add up to its mean), and when dz is given dL/dz of the output layer
// with the same scaling. Cross-entropy uses log-softmax of the pre-activation (stable).
template <class S>
double loss_and_output_gradient(const Model<S>& m, const Trace<S>& t, const Targets<S>& y, double divisor, Mat<S>* dz);

// Adds to `grad` (a model of the same shapes) the gradient of the batch loss with respect to
// every parameter whose index in parameters() is true in `trainable` (all when empty); returns the
// loss (scaled as above). The backward pass stops below the lowest trainable layer.
template <class S>
double accumulate_gradient(const Model<S>& m, const Mat<S>& X, const Targets<S>& y, double divisor, const std::vector<bool>& trainable,
                           Model<S>& grad);

// The backward pass proper, from dL/dz of the output layer. With `sample_weights` it adds the
// per-sample squared gradients weighted by w_i (sum_i w_i g_i^2, elementwise) instead of their
// sum: every parameter enters through a linear map whose per-sample gradient is an outer product
// delta_i h_i^T, so the squares are (delta^2 diag(w)) (h^2)^T, one product per tensor.
template <class S>
void backward(const Model<S>& m, const Trace<S>& t, Mat<S> dz, const std::vector<bool>& trainable, Model<S>& grad,
              const Vec<S>* sample_weights = nullptr);

// Diagonal Fisher information (docs/models.md), a model of the same shapes:
//   classification: F = (1/N) sum_x sum_y p(y|x) (d log p(y|x) / d theta)^2, the exact expectation
//   over the model's own predictive distribution (one backward pass per class);
//   regression: the expectation under the model's Gaussian p(y|x) = N(f(x), I), which is
//   F = (1/N) sum_x sum_t (d f_t(x) / d theta)^2.
// X is input_dim x N; computed by blocks in parallel, summed in a fixed order.
Model<double> fisher_diagonal(const Model<double>& m, const Mat<double>& X, int batch = 256);

}  // namespace caulk::mlp
