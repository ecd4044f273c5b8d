// Transferability metrics other than LogME (methods.md §1). Each takes a model's features F
// (N x D, any float type, read in float64 blocks; as FeatureStats so that rankers share the
// covariance and its eigendecomposition) and class labels in [0, num_classes); classes absent
// from the labels are ignored. Plain functions: no graph, no files.
#pragma once
#include <cstdint>
#include <vector>

#include "caulk/matrix.hpp"
#include "caulk/transferability/feature_stats.hpp"

namespace caulk::rank {

// LEEP (Nguyen et al. 2020) from the source head's class probabilities theta (N x Cs).
double leep(const MatrixView& source_probs, const std::vector<int>& labels, int num_classes);
// NCE (Tran et al. 2019): - H(Y | Z) with z = argmax theta (first maximum on ties).
double nce(const MatrixView& source_probs, const std::vector<int>& labels, int num_classes);

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

// TransRate (Huang et al. 2022): coding rate of F minus the mean coding rate of its classes.
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
};
NLeepResult nleep(const FeatureStats& F, const std::vector<int>& labels, int num_classes, const NLeepOptions& options);

}  // namespace caulk::rank
