// LogME (You et al., ICML 2021; JMLR 2022): the maximum log evidence of a Bayesian linear model
// y = F w + e on a model's features, computed with the authors' default fixed-point algorithm
// (methods.md §1). Plain functions over matrices: no graph, no files.
#pragma once
#include <vector>

#include "caulk/matrix.hpp"
#include "caulk/transferability/feature_stats.hpp"

namespace caulk::rank {

struct LogMEResult {
  double score = 0;               // mean over target columns of the per-column evidence / N
  std::vector<double> evidence;   // per column (per class, or per regression target), already / N
  Matrix weights;                 // posterior mean weights, one row per column: C x D
  std::vector<double> alpha, beta;
  std::vector<int> iterations;    // fixed-point iterations used per column (at most 11)
};

// The spectral part shared by every target column: sigma (the kept eigenvalues of F^T F, i.e.
// squared singular values of F), the matching right singular vectors V (D x k), and F^T Y.
struct LogMESpectrum {
  std::size_t rows = 0, dims = 0;
  Vector sigma;  // k
  Matrix V;      // D x k
};

// Classification: one 0/1 target column per class 0..num_classes-1. labels[i] in [0, num_classes).
// When N > D the eigendecomposition of F^T F comes from (and is shared through) `features`.
LogMEResult logme_classification(const FeatureStats& features, const std::vector<int>& labels, int num_classes);
// Regression: one column per target (Y is N x T).
LogMEResult logme_regression(const FeatureStats& features, const Matrix& targets);

// The fixed-point iteration for one column, given the spectrum, x = U^T y (length k) and
// ||y||^2. Exposed for tests that check it against the explicit evidence formula.
struct LogMEColumn {
  double evidence = 0, alpha = 0, beta = 0;
  int iterations = 0;
  Vector weights;  // D
};
LogMEColumn logme_column(const LogMESpectrum& spectrum, const Vector& x, double y_squared_norm);

}  // namespace caulk::rank
