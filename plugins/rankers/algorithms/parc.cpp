// PARC: do samples that look alike to the model share labels? Spearman correlation of the two
// pairwise dissimilarity matrices, on a seeded subsample.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

#include "caulk/statistics.hpp"
#include "caulk/transferability/feature_stats.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace caulk::rank {

namespace {

// Rows standardised to zero mean and unit norm, so that row_i . row_j is their Pearson
// correlation. A constant row has no correlation with anything: it stays zero.
Matrix rows_for_correlation(Matrix X) {
  X.colwise() -= X.rowwise().mean();
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    const double norm = X.row(i).norm();
    if (norm > 0) X.row(i) /= norm;
  }
  return X;
}

// The strict upper triangle of 1 - X X^T, row by row.
std::vector<double> upper_dissimilarities(const Matrix& X) {
  const Eigen::Index n = X.rows();
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(n * (n - 1) / 2));
  const Matrix corr = X * X.transpose();
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = i + 1; j < n; ++j) out.push_back(1.0 - corr(i, j));
  return out;
}

}  // namespace

ParcResult parc(const FeatureStats& stats, const std::vector<int>& labels, int num_classes, int pca_dims, std::size_t max_samples,
                std::uint64_t seed) {
  const MatrixView& F = stats.features();
  check_labels(F, labels, num_classes, "PARC");
  if (pca_dims < 1) throw std::invalid_argument("PARC: pca_dims must be at least 1");
  const std::size_t N = F.rows(), D = F.cols();
  // The rows to use: all, or a seeded sample in ascending order.
  std::vector<std::size_t> rows(N);
  std::iota(rows.begin(), rows.end(), std::size_t{0});
  if (max_samples >= 2 && N > max_samples) {
    std::mt19937_64 rng(seed);
    std::shuffle(rows.begin(), rows.end(), rng);
    rows.resize(max_samples);
    std::sort(rows.begin(), rows.end());
  }
  // Exact PCA on all rows, then the sampled rows' top components.
  Matrix reduced;
  if (D <= static_cast<std::size_t>(pca_dims)) {
    reduced = F.gather_rows(rows);
  } else {
    const SymmetricEigen& e = stats.scatter_eigen();
    Matrix top = e.vectors.rightCols(pca_dims).rowwise().reverse();  // descending variance
    // Row correlations depend on each component's sign, which an eigensolver leaves free: fix it
    // as scikit-learn's PCA does (the largest loading of each component is positive).
    for (Eigen::Index c = 0; c < top.cols(); ++c) {
      Eigen::Index largest = 0;
      top.col(c).cwiseAbs().maxCoeff(&largest);
      if (top(largest, c) < 0) top.col(c) *= -1;
    }
    Matrix sampled = F.gather_rows(rows);
    reduced = (sampled.rowwise() - stats.moments().mean.transpose()) * top;
  }
  // Standardise each column on the rows used (zero mean, unit population variance).
  const Eigen::RowVectorXd mean = reduced.colwise().mean();
  reduced.rowwise() -= mean;
  for (Eigen::Index c = 0; c < reduced.cols(); ++c) {
    const double sd = std::sqrt(reduced.col(c).squaredNorm() / static_cast<double>(reduced.rows()));
    if (sd > 0) reduced.col(c) /= sd;
  }
  const std::vector<double> feature_dist = upper_dissimilarities(rows_for_correlation(std::move(reduced)));
  // 1 - corr of two one-hot label rows is 0 for the same class and 1 + 1/(C - 1) for different
  // ones; computed through the correlation, rounding splits each value by the classes' positions
  // (numpy's corrcoef in the reference does), and the Spearman correlation then ranks those
  // splits. Only the order of the two values matters: 0 and 1, exactly.
  std::vector<double> label_dist;
  label_dist.reserve(feature_dist.size());
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = i + 1; j < rows.size(); ++j) label_dist.push_back(labels[rows[i]] == labels[rows[j]] ? 0.0 : 1.0);
  ParcResult out;
  out.samples = rows.size();
  out.dims = D <= static_cast<std::size_t>(pca_dims) ? D : static_cast<std::size_t>(pca_dims);
  // A constant side (e.g. one class only) has no correlation: score 0.
  const double rho = stats::pearson(stats::average_ranks(feature_dist), stats::average_ranks(label_dist));
  out.score = std::isnan(rho) ? 0.0 : 100.0 * rho;
  return out;
}

}  // namespace caulk::rank
