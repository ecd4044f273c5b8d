// H-score, shrinkage H-score and TransRate: metrics of the features' covariance and its classes.
#include <cblas.h>
#include <lapacke.h>

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "caulk/parallel.hpp"
#include "caulk/transferability/feature_stats.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace caulk::rank {

namespace {

// sum_c n_c (mu_c - mu)(mu_c - mu)^T: the scatter of the matrix whose rows are replaced by their
// class mean (rank <= C), as the columns of B with scatter = B B^T.
Matrix between_class_factor(const ClassMeans& cm, const Vector& mean) {
  Matrix B(mean.size(), static_cast<Eigen::Index>(cm.present.size()));
  for (std::size_t j = 0; j < cm.present.size(); ++j) {
    const int c = cm.present[j];
    B.col(static_cast<Eigen::Index>(j)) = std::sqrt(cm.counts[c]) * (cm.means.row(c).transpose() - mean);
  }
  return B;
}

// tr(pinv(S) B B^T / denominator) from S's eigenvalues and eigenvectors, with numpy's pinv cut-off.
double trace_pinv_times(const SymmetricEigen& e, const Matrix& vectors, double rcond, const Matrix& B, double denominator) {
  const double largest = e.values.size() ? e.values.cwiseAbs().maxCoeff() : 0.0;
  const Matrix projected = vectors.transpose() * B;  // D x k
  double total = 0;
  for (Eigen::Index i = 0; i < e.values.size(); ++i)
    if (std::abs(e.values[i]) > rcond * largest) total += projected.row(i).squaredNorm() / e.values[i];
  return total / denominator;
}

double trace_pinv_times(const SymmetricEigen& e, double rcond, const Matrix& B, double denominator) {
  return trace_pinv_times(e, e.vectors, rcond, B, denominator);
}

// 1/2 logdet(I + scale G) for a symmetric positive semi-definite G, by a Cholesky factorisation
// (LAPACK dpotrf: I + scale G is positive definite). 1/2 logdet = sum log diag(L).
double half_logdet_identity_plus(Matrix G, double scale) {
  G *= scale;
  G.diagonal().array() += 1.0;
  const int n = static_cast<int>(G.rows());
  const int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', n, G.data(), n);
  if (info != 0) throw std::runtime_error("TransRate: Cholesky factorisation failed (LAPACK dpotrf info " + std::to_string(info) + ")");
  return G.diagonal().array().log().sum();
}

// 1/2 logdet(I + Z^T Z / (n eps)) for the rows `index` of F centred by `mean`, through whichever
// of the D x D or n x n Gram matrices is smaller (their determinants agree).
double coding_rate(const MatrixView& F, const std::vector<std::size_t>& index, const Vector& mean, double eps) {
  const std::size_t n = index.size(), D = F.cols();
  if (n == 0) return 0;
  const double scale = 1.0 / (static_cast<double>(n) * eps);
  Matrix gram;
  if (n <= D) {
    Matrix Z = F.gather_rows(index);
    Z.rowwise() -= mean.transpose();
    gram = Z * Z.transpose();
  } else {
    gram.setZero(static_cast<Eigen::Index>(D), static_cast<Eigen::Index>(D));
    constexpr std::size_t kChunk = 512;
    for (std::size_t at = 0; at < n; at += kChunk) {
      std::vector<std::size_t> chunk(index.begin() + static_cast<std::ptrdiff_t>(at),
                                     index.begin() + static_cast<std::ptrdiff_t>(std::min(n, at + kChunk)));
      Matrix Z = F.gather_rows(chunk);  // chunk x D
      Z.rowwise() -= mean.transpose();
      cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, static_cast<int>(D), static_cast<int>(Z.rows()), 1.0, Z.data(),
                  static_cast<int>(Z.rows()), 1.0, gram.data(), static_cast<int>(D));
    }
    gram.triangularView<Eigen::StrictlyLower>() = gram.transpose();
  }
  return half_logdet_identity_plus(std::move(gram), scale);
}

}  // namespace

double hscore(const FeatureStats& stats, const std::vector<int>& labels, int num_classes) {
  const MatrixView& F = stats.features();
  check_labels(F, labels, num_classes, "H-score");
  const Moments& m = stats.moments();
  const ClassMeans cm = class_means(F, labels, num_classes);
  // Both covariances share one normalisation, which cancels: tr(pinv(scatter) B B^T).
  return trace_pinv_times(stats.scatter_eigen(), 1e-15, between_class_factor(cm, m.mean), 1.0);
}

ShrinkageHScore hscore_shrinkage(const FeatureStats& stats, const std::vector<int>& labels, int num_classes) {
  const MatrixView& F = stats.features();
  check_labels(F, labels, num_classes, "shrinkage H-score");
  const Moments& m = stats.moments();
  const ClassMeans cm = class_means(F, labels, num_classes);
  const double N = static_cast<double>(m.rows), D = static_cast<double>(F.cols());
  const Vector mean = m.mean;
  // S = X^T X / N with X = F - mean, known through its eigenvalues: tr(S) and sum(S^2) follow.
  const SymmetricEigen& scatter = stats.scatter_eigen();
  const Vector s_values = scatter.values / N;
  // sum((X o X)^T (X o X)) = sum_i ||x_i||^4 over the centred rows.
  double fourth = 0;
  for_each_row_block(F, 0, F.rows(), [&](std::size_t, const RowMatrix& block) {
    fourth += ((block.rowwise() - mean.transpose()).rowwise().squaredNorm().array().square()).sum();
  });
  const double trace = s_values.sum();
  const double mu = trace / D;
  const double d2 = s_values.squaredNorm();  // sum((X^T X)^2) / N^2 = ||S||_F^2
  double b = (fourth / N - d2) / (D * N);
  const double d = (d2 - 2 * mu * trace + D * mu * mu) / D;
  b = std::min(b, d);
  ShrinkageHScore out;
  out.shrinkage = b == 0 ? 0.0 : b / d;
  const double a = out.shrinkage;
  // cov_a = (1 - a) S + a mu I has S's eigenvectors and eigenvalues (1 - a) s + a mu.
  SymmetricEigen shrunk{((1 - a) * s_values.array() + a * mu).matrix(), Matrix()};
  // G with 1/(N - 1), as np.cov of the class-mean matrix; the reference mixes 1/N and 1/(N - 1).
  out.score = (1 - a) * trace_pinv_times(shrunk, scatter.vectors, 1e-15, between_class_factor(cm, mean), N - 1);
  return out;
}

double transrate(const FeatureStats& stats, const std::vector<int>& labels, int num_classes, double eps) {
  const MatrixView& F = stats.features();
  check_labels(F, labels, num_classes, "TransRate");
  if (!(eps > 0)) throw std::invalid_argument("TransRate: eps must be positive");
  const Moments& m = stats.moments();
  const Vector mean = m.mean;
  const double N = static_cast<double>(m.rows);
  // The whole matrix: 1/2 logdet(I + Z^T Z / (N eps)) from the (shared) scatter, by Cholesky: no
  // eigendecomposition needed.
  const double whole = half_logdet_identity_plus(m.scatter, 1.0 / (N * eps));
  // Each class: its rows of the globally centred F (not re-centred).
  std::vector<std::vector<std::size_t>> rows_of(static_cast<std::size_t>(num_classes));
  for (std::size_t i = 0; i < labels.size(); ++i) rows_of[static_cast<std::size_t>(labels[i])].push_back(i);
  std::vector<int> present;
  for (int c = 0; c < num_classes; ++c)
    if (!rows_of[static_cast<std::size_t>(c)].empty()) present.push_back(c);
  std::vector<double> rates(present.size());
  auto rate = [&](std::size_t j) { rates[j] = coding_rate(F, rows_of[static_cast<std::size_t>(present[j])], mean, eps); };
  // Each class may hold a D x D Gram matrix: concurrently only while those are small.
  if (F.cols() <= kTransRateParallelClassDims) {
    parallel_for(present.size(), rate);
  } else {
    for (std::size_t j = 0; j < present.size(); ++j) rate(j);
  }
  const double class_mean = std::accumulate(rates.begin(), rates.end(), 0.0) / static_cast<double>(present.size());
  return whole - class_mean;
}

}  // namespace caulk::rank
