// Transferability metrics other than LogME (methods.md §1). Each takes a model's features F
// (N x D, any float type, read in float64 blocks; as FeatureStats so that rankers share the
// covariance and its eigendecomposition) and class labels in [0, num_classes); classes absent
// from the labels are ignored. Plain functions: no graph, no files.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "caulk/matrix.hpp"
#include "caulk/transferability/feature_stats.hpp"

namespace caulk::rank {

// What the source head's file holds, for LEEP and NCE.
enum class SourceKind {
  Probabilities,  // rows checked: finite, non-negative, summing to 1 within `tolerance`
  Logits,         // rows checked finite; a softmax turns each into probabilities
};
struct SourceOptions {
  SourceKind kind = SourceKind::Probabilities;
  double tolerance = 1e-3;  // on |row sum - 1|: float32 and float16 exports of a softmax pass, x7 or a zero row do not
};
// Throws std::invalid_argument naming the first row (counting from 0) of `source` that does not
// fit `options` and what is wrong with it.
void check_source_rows(const MatrixView& source, const SourceOptions& options);

// LEEP (Nguyen et al. 2020) from the source head's class probabilities theta (N x Cs).
double leep(const MatrixView& source, const std::vector<int>& labels, int num_classes, const SourceOptions& options = {});
// NCE (Tran et al. 2019): - H(Y | Z) with z = argmax theta (first maximum on ties). Only the
// classes y present in the labels enter the sum.
double nce(const MatrixView& source, const std::vector<int>& labels, int num_classes, const SourceOptions& options = {});

// H-score (Bao et al. 2019): tr( pinv(cov F) cov(E[F | y]) ).
double hscore(const FeatureStats& F, const std::vector<int>& labels, int num_classes);
// Shrinkage H-score (Ibrahim et al. 2022) with the Ledoit-Wolf coefficient as scikit-learn computes it.
struct ShrinkageHScore {
  double score = 0, shrinkage = 0;
};
ShrinkageHScore hscore_shrinkage(const FeatureStats& F, const std::vector<int>& labels, int num_classes);

// GBC (Pandy et al. 2022): minus the sum over ordered class pairs of the Bhattacharyya coefficient.
enum class GaussianKind { Diagonal, Spherical };
double gbc(const FeatureStats& F, const std::vector<int>& labels, int num_classes, GaussianKind kind);

// TransRate (Huang et al. 2022): coding rate of F minus the mean coding rate of its classes. The
// classes' coding rates run concurrently only up to this many feature columns (each holds a Gram
// matrix of up to D x D); beyond, one after the other.
inline constexpr std::size_t kTransRateParallelClassDims = 256;
double transrate(const FeatureStats& F, const std::vector<int>& labels, int num_classes, double eps);

// PARC (Bolya et al. 2021): 100 x Spearman correlation between the feature and label
// dissimilarity matrices (1 - Pearson correlation between samples), on the top `pca_dims`
// principal components and a seeded subsample of at most `max_samples` rows.
struct ParcResult {
  double score = 0;
  std::size_t samples = 0;  // rows used
  std::size_t dims = 0;     // columns after PCA
};
ParcResult parc(const FeatureStats& F, const std::vector<int>& labels, int num_classes, int pca_dims, std::size_t max_samples,
                std::uint64_t seed);

// SFDA (Shao et al. 2022): self-challenging Fisher discriminant analysis, as the authors' code.
double sfda(const FeatureStats& F, const std::vector<int>& labels, int num_classes);

// N-LEEP (Li et al. 2021): LEEP (with the log) on the posterior of a Gaussian mixture with
// components_per_class x C full-covariance components, fitted by EM on the PCA-reduced features.
struct NLeepResult {
  double score = 0;
  std::size_t pca_dims = 0;
  int components = 0;
  int em_iterations = 0;
  bool converged = false;
};
struct NLeepOptions {
  double variance_kept = 0.8;
  int components_per_class = 5;
  int max_iterations = 100;
  double tolerance = 1e-3;  // on the change of the mean log-likelihood per sample
  double reg_covar = 1e-6;
  std::uint64_t seed = 0;
  // Called with the mixture's memory estimate (nleep_mixture_bytes) once the PCA dimensions are
  // known, before the mixture is fitted; may throw to refuse. Optional.
  std::function<void(std::size_t bytes, const std::string& what)> check_memory;
};
NLeepResult nleep(const FeatureStats& F, const std::vector<int>& labels, int num_classes, const NLeepOptions& options);

}  // namespace caulk::rank
