// A linear probe: multinomial logistic regression with an L2 penalty on a model's frozen
// features, fitted by L-BFGS. The demo's ground truth (the accuracy each model reaches when
// tuned on the task) and the evaluators use it.
#pragma once
#include <vector>

#include "caulk/matrix.hpp"

namespace caulk::probe {

struct LinearProbe {
  Matrix weights;  // C x D
  Vector bias;     // C
  int iterations = 0;
  // Class probabilities for the rows of F (N x C).
  Matrix predict_proba(const MatrixView& F) const;
  // The fraction of rows whose most probable class is the label (lowest class on ties), as
  // metrics::accuracy.
  double accuracy(const MatrixView& F, const std::vector<int>& labels) const;
};

struct LinearProbeOptions {
  double l2 = 1e-3;  // penalty (l2 / 2) ||W||^2 on the weights, not the bias
  int max_iterations = 500;
  double gradient_tolerance = 1e-8;
};

// Minimises (1/N) sum_i [ logsumexp(W x_i + b) - (W x_i + b)_{y_i} ] + (l2 / 2) ||W||^2.
LinearProbe fit_linear_probe(const MatrixView& F, const std::vector<int>& labels, int num_classes, const LinearProbeOptions& options = {});

// The objective above and its gradient at (W, b), packed as [vec(W) (column-major C x D), b].
// Exposed so that a test can check the gradient against finite differences.
double linear_probe_objective(const Matrix& X, const std::vector<int>& labels, int num_classes, double l2, const Vector& packed,
                              Vector& gradient);

}  // namespace caulk::probe
