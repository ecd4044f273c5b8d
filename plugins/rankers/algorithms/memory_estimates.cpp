#include "rankers/algorithms/memory_estimates.hpp"

#include <algorithm>

#include "caulk/transferability/feature_stats.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace caulk::rank {

namespace {

constexpr std::size_t kDouble = sizeof(double);
constexpr std::size_t kBlockRows = 512;  // rows per block of for_each_row_block

std::string square(std::size_t D) { return std::to_string(D) + " x " + std::to_string(D); }

std::string reduce_dims_advice(std::size_t N, std::size_t D) {
  std::string advice = "Reduce the features to fewer dimensions first (PCA to a few thousand or less)";
  if (N <= D)
    advice += "; with fewer rows than dimensions (N = " + std::to_string(N) + " <= D = " + std::to_string(D) +
              "), rank.logme scores the features through the thin SVD of the N x D matrix instead, with no D x D matrix";
  return advice + ".";
}

}  // namespace

std::size_t decomposition_peak_bytes(std::size_t D) {
  // The scatter stays while its copy (or F^T F) is decomposed in place with LAPACK's workspace.
  const std::size_t decomposing = 2 * D * D * kDouble + symmetric_eigen_workspace_bytes(D);
  return std::max(moments_peak_bytes(D), decomposing) + 2 * D * kDouble;
}

MemoryEstimate logme_memory(std::size_t N, std::size_t D, std::size_t T) {
  MemoryEstimate e;
  if (N > D) {
    // + class sums and means (T x D each), F^T Y, V^T F^T Y, coefficients, weights and their
    // transpose (D x T each), one row block.
    e.bytes = decomposition_peak_bytes(D) + (7 * D * T + kBlockRows * D) * kDouble;
    e.what = "F^T F (" + square(D) + ") and its eigendecomposition";
    e.advice = reduce_dims_advice(N, D);
  } else {
    // The N x D features in float64, overwritten by LAPACK's dgesdd (LQ first when D is much
    // larger than N), V^T (N x D) and dgesdd's O(N^2) workspace and U; then U^T Y, p, coefficients
    // and weights. An upper bound: Eigen's BDCSVD, used before, peaked at 4.4 N x D, which this
    // estimate was measured against; dgesdd holds less.
    e.bytes = (5 * N * D + 5 * N * N + 3 * N * T + 3 * D * T) * kDouble;
    e.what = "the thin SVD of the " + std::to_string(N) + " x " + std::to_string(D) + " features";
    e.advice = "Reduce the features to fewer dimensions, or score fewer rows (a smaller split).";
  }
  return e;
}

MemoryEstimate hscore_memory(std::size_t N, std::size_t D, std::size_t C) {
  // + class sums and means, the between-class factor and its projection (C x D each), two row blocks.
  return {decomposition_peak_bytes(D) + (4 * C * D + 2 * kBlockRows * D) * kDouble,
          "the " + square(D) + " scatter matrix and its eigendecomposition", reduce_dims_advice(N, D)};
}

MemoryEstimate transrate_memory(std::size_t N, std::size_t D, std::size_t C, unsigned width) {
  // Each class's coding rate uses the smaller Gram matrix: n x n with its n x D rows (n <= D), or
  // D x D with a chunk of rows. Classes run concurrently only while D is small (transrate()).
  const std::size_t m = std::min(N, D);
  std::size_t per_class = (m * D + m * m) * kDouble;
  if (N > D) per_class = std::max(per_class, (D * D + kBlockRows * D) * kDouble);
  const std::size_t concurrent = D <= kTransRateParallelClassDims ? std::max<std::size_t>(1, std::min<std::size_t>(C, width)) : 1;
  // The scatter stays; the whole matrix's Cholesky works on a copy; then the classes.
  const std::size_t after = D * D * kDouble + std::max(D * D * kDouble, concurrent * per_class);
  return {std::max(moments_peak_bytes(D), after) + 2 * C * D * kDouble,
          "the " + square(D) + " scatter matrix and the coding rates' Gram matrices", reduce_dims_advice(N, D)};
}

MemoryEstimate gbc_memory(std::size_t N, std::size_t D, std::size_t C) {
  (void)N;
  // Class sums, means and variances (C x D each) and a row block.
  return {(3 * C * D + kBlockRows * D + 4 * D) * kDouble, "per-class means and variances",
          "Reduce the features to fewer dimensions first."};
}

MemoryEstimate sfda_memory(std::size_t N, std::size_t D, std::size_t C) {
  // The second fit holds the scatter, the mixed features' scatter, and within the fit the
  // within-class covariance, its shrunk copy and its Cholesky factor: five D x D matrices.
  const std::size_t fits = 5 * D * D * kDouble;
  return {std::max(moments_peak_bytes(D), fits) + (8 * C * D + 4 * kBlockRows * D) * kDouble,
          "five " + square(D) + " matrices (scatters, within-class covariance, its shrunk copy and Cholesky factor)",
          reduce_dims_advice(N, D)};
}

MemoryEstimate parc_memory(std::size_t N, std::size_t D, std::size_t C, std::size_t pca_dims, std::size_t max_samples) {
  const std::size_t n = max_samples >= 2 && N > max_samples ? max_samples : N;
  const std::size_t k = std::min(D, pca_dims);
  const std::size_t pairs = n * (n - (n > 0 ? 1 : 0)) / 2;
  // The n x n correlations and the two upper triangles, then the two triangles, their ranks and a
  // sort index: max(n^2 + 2P, 5P) for P = n(n - 1)/2 pairs.
  const std::size_t pairwise = std::max(n * n + 2 * pairs, 5 * pairs) * kDouble;
  const std::size_t rows = (2 * n * D + n * k + n * C) * kDouble;  // sampled rows, centred, reduced, one-hot
  MemoryEstimate e;
  e.bytes = (D > pca_dims ? decomposition_peak_bytes(D) : 0) + rows + pairwise;
  e.what = "the pairwise dissimilarities of " + std::to_string(n) + " rows (" + std::to_string(pairs) + " pairs)";
  if (D > pca_dims) e.what += " and the " + square(D) + " scatter matrix's eigendecomposition";
  e.advice = "Lower max_samples (the pairwise matrices grow as its square)";
  e.advice += D > pca_dims && D > 4096 ? "; reduce the features to fewer dimensions first." : ".";
  return e;
}

std::size_t nleep_mixture_bytes(std::size_t N, std::size_t dims, std::size_t components, unsigned width) {
  const std::size_t concurrent = std::max<std::size_t>(1, std::min<std::size_t>(components, width));
  // The projected rows and a scaled copy for k-means; responsibilities, log-probabilities and their
  // exponential (N x K each, and k-means' distances); per component running at once, the centred
  // rows and their weighted copy; each component's covariance and Cholesky factor.
  return (N * dims * (2 + 2 * concurrent) + 4 * N * components + 3 * components * dims * dims + 6 * N) * kDouble;
}

MemoryEstimate nleep_memory(std::size_t N, std::size_t D, std::size_t C, std::size_t components_per_class, unsigned width) {
  const std::size_t components = std::min(N, C * components_per_class);
  return {decomposition_peak_bytes(D) + nleep_mixture_bytes(N, 1, components, width),
          "the " + square(D) + " scatter matrix's eigendecomposition (PCA) and the mixture", reduce_dims_advice(N, D)};
}

MemoryEstimate source_probability_memory(std::size_t N, std::size_t Cs, std::size_t C) {
  (void)N;
  // P(y, z) and P(y | z) (C x Cs each), a row block and its softmax.
  return {(2 * C * Cs + 2 * kBlockRows * Cs) * kDouble, "the joint distribution of target and source classes", "Use fewer source classes."};
}

}  // namespace caulk::rank
