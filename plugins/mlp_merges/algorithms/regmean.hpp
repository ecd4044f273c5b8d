// RegMean (methods.md section 3; Jin et al., "Dataless knowledge fusion by merging weights of
// language models", ICLR 2023) for native MLPs.
//
// Every linear map y = W h (W out x in, as stored) is merged as the minimiser of
//   sum_i || X_i W^T - X_i W_i^T ||^2,   X_i the N_i x in inputs of that map in model i on model i's data,
// i.e. W^T = (sum_i G_i)^-1 sum_i G_i W_i^T with G_i = X_i^T X_i, each G_i first shrunk towards its
// diagonal: G_i <- alpha G_i + (1 - alpha) diag(G_i). The linear maps are the layers
// (layers.l.weight) and the adapters' down and up projections; their inputs are the activations
// model i itself computes on its data (so they differ between models). Biases, and every other
// parameter, are averaged uniformly.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "caulk/mlp/mlp.hpp"

namespace caulk::mlp_merges {

// The Gram matrix X^T X (in x in, float64) of the inputs of every linear map of `m` on the samples
// X (input_dim x N, one sample per column), keyed by the map's weight tensor name. `m` must have no
// LoRA factors (fold them first: mlp::fold_lora). Accumulated by blocks of `block` samples in a
// fixed order.
struct InputGrams {
  std::map<std::string, mlp::Mat<double>> gram;
  long samples = 0;
};
InputGrams input_grams(const mlp::Model<float>& m, const mlp::Mat<float>& X, int block = 512);

struct RegMeanOptions {
  double alpha = 0.9;  // off-diagonal shrinkage, in [0, 1]
  // G_i = X_i^T X_i as methods.md writes it ("sum"), or X_i^T X_i / N_i ("mean": the reference
  // implementations' choice; it differs only when the models' sample counts differ).
  bool mean_gram = false;
  // When sum_i G_i is singular (an input that is zero on every model's data, e.g. a dead ReLU unit)
  // the problem is regularised towards the plain average:
  //   minimise sum_i ||X_i (W - W_i)^T||^2 + lambda ||W - W_avg||^2,  lambda = jitter * mean(diag sum_i G_i)
  // (jitter itself when that mean is 0). jitter = 0 makes a singular matrix an error instead.
  double jitter = 1e-8;
  // sum_i G_i counts as singular when its Cholesky factorisation fails or its reciprocal condition
  // number estimate falls below this.
  double singular_rcond = 1e-12;
};

struct RegMeanResult {
  mlp::Model<float> model;
  std::vector<std::string> regularised;  // weight tensors that needed the jitter
  std::vector<std::string> merged;       // weight tensors merged by RegMean (the rest were averaged)
};

// Merges models of one architecture (no LoRA) given each model's grams on its own data. Throws
// Error naming the tensor when a Gram matrix is missing or of the wrong size, or when a summed
// Gram matrix is singular and jitter = 0.
RegMeanResult regmean_merge(const std::vector<mlp::Model<float>>& models, const std::vector<InputGrams>& grams,
                            const RegMeanOptions& options);

// The merge of one weight: W_i (out x in) and their (already shrunk) Gram matrices. Exposed for
// tests. `regularised` is set when the jitter was needed.
mlp::Mat<double> regmean_weight(const std::vector<mlp::Mat<double>>& weights, const std::vector<mlp::Mat<double>>& grams,
                                const RegMeanOptions& options, const std::string& tensor, bool* regularised = nullptr);

// G <- alpha G + (1 - alpha) diag(G).
mlp::Mat<double> shrink_off_diagonal(const mlp::Mat<double>& G, double alpha);

}  // namespace caulk::mlp_merges
