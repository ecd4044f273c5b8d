// LogME (You et al., ICML 2021; JMLR 2022): the maximum log evidence of a Bayesian linear model
// y = F w + e on a model's features, computed with the authors' default fixed-point algorithm
// (docs/rankers.md, "LogME"). Plain functions over matrices: no graph, no files.
#pragma once
#include <vector>

#include "caulk/matrix.hpp"
#include "caulk/transferability/feature_stats.hpp"

namespace caulk::rank {

// Which evidence to report when N <= D (for N > D both are the true evidence over all D directions).
enum class LogMEFormula {
  // The authors' thin-SVD formula: D/2 log(alpha) with only the k kept directions in the
  // log-determinant. What published numbers use.
  Reference,
  // The true evidence: each of the D - k directions without data adds log(alpha) to the
  // log-determinant too.
  Exact,
};

struct LogMEOptions {
  LogMEFormula formula = LogMEFormula::Reference;
};

struct LogMEResult {
  double score = 0;              // mean over the scored columns of the per-column evidence / N
  std::vector<int> columns;      // the target columns scored: the classes present in the labels, or every regression target
  std::vector<double> evidence;  // per scored column, already / N
  Matrix weights;                // posterior mean weights, one row per class or target (zero for absent classes): C x D
  std::vector<double> alpha, beta;
  std::vector<int> iterations;  // fixed-point iterations used per scored column (at most 11)
  std::size_t rank = 0;         // numerical rank of F (singular values above max(N, D) eps s_max)
  std::size_t directions = 0;   // directions in the evidence: D when N > D, the k kept singular values when N <= D
  bool thin_svd = false;        // N <= D: the thin SVD of F (else the eigendecomposition of F^T F)
};

// The spectral part shared by every target column: the eigenvalues sigma of F^T F used (the
// squared singular values of F, clipped at 0), descending.
struct LogMESpectrum {
  std::size_t rows = 0, dims = 0;
  Vector sigma;  // k
};

// Classification: one 0/1 target column per class present in `labels` (a class with no sample in
// the scored rows is not a target: its all-zero column would add an evidence that depends only on
// the features). labels[i] in [0, num_classes). When N > D the eigendecomposition of F^T F comes
// from (and is shared through) `features`.
LogMEResult logme_classification(const FeatureStats& features, const std::vector<int>& labels, int num_classes,
                                 const LogMEOptions& options = {});
// Regression: one column per target (Y is N x T). Targets whose magnitude exceeds 2^64 are divided
// by a power of two first and the evidence corrected exactly (docs/rankers.md), so that squares
// cannot overflow.
LogMEResult logme_regression(const FeatureStats& features, const Matrix& targets, const LogMEOptions& options = {});

// The fixed-point iteration for one column, given the spectrum, p = V^T F^T y (length k) and
// ||y||^2. `missing_directions` (D - k with the exact formula, else 0) each add log(alpha) to the
// log-determinant. Exposed for tests that check it against the explicit evidence formula.
struct LogMEColumn {
  double evidence = 0, alpha = 0, beta = 0;
  int iterations = 0;
  Vector coefficients;  // k: the posterior mean weights are V * coefficients
};
LogMEColumn logme_column(const LogMESpectrum& spectrum, const Vector& p, double y_squared_norm, std::size_t missing_directions = 0);

}  // namespace caulk::rank
