// SFDA: a regularised Fisher discriminant fitted twice, the second time on features pulled
// towards the other classes (the "self-challenge"), as the authors' implementation does.
#include <Eigen/Cholesky>
#include <cmath>
#include <stdexcept>

#include "caulk/transferability/feature_stats.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace caulk::rank {

namespace {

struct Discriminant {
  Matrix coef;       // C x D over the present classes
  Vector intercept;  // C
  double lambda = 0;
};

// Shrinks S towards a multiple of the identity: (1 - lambda) S + lambda tr(S)/D I.
Matrix shrink(const Matrix& S, double lambda) {
  Matrix out = (1 - lambda) * S;
  out.diagonal().array() += lambda * S.trace() / static_cast<double>(S.rows());
  return out;
}

// The reference's estimate of the largest eigenvalue of S_w: three power-iteration rounds.
double largest_eigenvalue_estimate(const Matrix& Sw) {
  Vector x = Sw.rowwise().sum();
  Vector y = x;
  for (int round = 0; round < 3; ++round) {
    Vector t = Sw * x;
    y = t / t.norm();
    t = Sw * y;
    x = t / t.norm();
  }
  return x.dot(Sw * y);
}

// Fit from the sufficient statistics: the scatter S about a shift s close to the data's mean
// (S = sum_i (x_i - s)(x_i - s)^T; the shift keeps the subtractions below free of cancellation),
// class sums and counts.
Discriminant fit(const Matrix& S, const Vector& shift, const Matrix& class_sums, const Vector& counts, double lambda_or_negative) {
  const double N = counts.sum();
  const Eigen::Index C = counts.size(), D = S.rows();
  Matrix means(C, D);
  for (Eigen::Index c = 0; c < C; ++c) means.row(c) = class_sums.row(c) / counts[c];
  // S_w = sum_c pi_c cov_c = (S - sum_c n_c (mu_c - s)(mu_c - s)^T) / N. (S_t is not needed:
  // see below.)
  Matrix Sw = S;
  for (Eigen::Index c = 0; c < C; ++c) {
    const Vector d = means.row(c).transpose() - shift;
    Sw.noalias() -= counts[c] * d * d.transpose();
  }
  Sw /= N;
  if (!(Sw.trace() > 0))
    throw std::invalid_argument("SFDA: the features do not vary within any class (every within-class variance is zero)");

  Discriminant d;
  d.lambda = lambda_or_negative >= 0 ? lambda_or_negative : std::max(std::exp(-5 * largest_eigenvalue_estimate(Sw)), 1e-10);
  const Matrix Sw_shrunk = shrink(Sw, d.lambda);
  // With every generalised eigenvector kept (S_b v = e S_w v, V^T S_w V = I), V V^T = S_w^-1,
  // so the reference's coef = M V V^T is M S_w^-1 (S_b cancels).
  Eigen::LLT<Matrix> llt(Sw_shrunk);
  if (llt.info() != Eigen::Success)
    throw std::invalid_argument("SFDA: the within-class covariance is singular even after shrinkage (are all features constant?)");
  d.coef = llt.solve(means.transpose()).transpose();
  d.intercept.resize(C);
  for (Eigen::Index c = 0; c < C; ++c) d.intercept[c] = -0.5 * means.row(c).dot(d.coef.row(c)) + std::log(counts[c] / N);
  return d;
}

// p(y | x) for the rows of a block: softmax(coef x + intercept).
Matrix posterior(const Discriminant& d, const RowMatrix& block) {
  Matrix logits = block * d.coef.transpose();
  logits.rowwise() += d.intercept.transpose();
  Eigen::VectorXd max = logits.rowwise().maxCoeff();
  logits.colwise() -= max;
  logits = logits.array().exp().matrix();
  Eigen::VectorXd sum = logits.rowwise().sum();
  for (Eigen::Index i = 0; i < logits.rows(); ++i) logits.row(i) /= sum[i];
  return logits;
}

}  // namespace

double sfda(const FeatureStats& stats, const std::vector<int>& labels, int num_classes) {
  const MatrixView& F = stats.features();
  check_labels(F, labels, num_classes, "SFDA");
  // Work over the present classes only.
  const ClassMeans cm = class_means(F, labels, num_classes);
  std::vector<int> slot(static_cast<std::size_t>(num_classes), -1);
  for (std::size_t j = 0; j < cm.present.size(); ++j) slot[static_cast<std::size_t>(cm.present[j])] = static_cast<int>(j);
  const auto C = static_cast<Eigen::Index>(cm.present.size());
  const auto D = static_cast<Eigen::Index>(F.cols());
  std::vector<int> y(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) y[i] = slot[static_cast<std::size_t>(labels[i])];
  Vector counts(C);
  Matrix sums(C, D);
  for (Eigen::Index j = 0; j < C; ++j) {
    counts[j] = cm.counts[cm.present[static_cast<std::size_t>(j)]];
    sums.row(j) = cm.sums.row(cm.present[static_cast<std::size_t>(j)]);
  }
  const Moments& m = stats.moments();
  const Discriminant first = fit(m.scatter, m.mean, sums, counts, -1);

  // mbar_c: the mean of the other classes' means.
  Matrix means(C, D);
  for (Eigen::Index c = 0; c < C; ++c) means.row(c) = sums.row(c) / counts[c];
  Matrix others(C, D);
  for (Eigen::Index c = 0; c < C; ++c)
    others.row(c) = C > 1 ? ((means.colwise().sum() - means.row(c)) / static_cast<double>(C - 1)).eval() : means.row(c);

  // Each sample moves towards the other classes by 1 - q, q = softmax of its class probabilities.
  Vector keep(static_cast<Eigen::Index>(F.rows()));
  auto mixed_block = [&](std::size_t first_row, const RowMatrix& block) {
    RowMatrix out = block;
    for (Eigen::Index i = 0; i < block.rows(); ++i) {
      const int c = y[first_row + static_cast<std::size_t>(i)];
      const double q = keep[static_cast<Eigen::Index>(first_row) + i];
      out.row(i) = q * block.row(i) + (1 - q) * others.row(c);
    }
    return out;
  };
  Matrix G2 = Matrix::Zero(D, D), sums2 = Matrix::Zero(C, D);
  for_each_row_block(F, 0, F.rows(), [&](std::size_t first_row, const RowMatrix& block) {
    const Matrix p = posterior(first, block);
    for (Eigen::Index i = 0; i < block.rows(); ++i) {
      const Eigen::RowVectorXd soft = (p.row(i).array() - p.row(i).maxCoeff()).exp().matrix();
      keep[static_cast<Eigen::Index>(first_row) + i] = soft[y[first_row + static_cast<std::size_t>(i)]] / soft.sum();
    }
    const RowMatrix mixed = mixed_block(first_row, block);
    const RowMatrix shifted = mixed.rowwise() - m.mean.transpose();
    G2.noalias() += shifted.transpose() * shifted;
    for (Eigen::Index i = 0; i < mixed.rows(); ++i) sums2.row(y[first_row + static_cast<std::size_t>(i)]) += mixed.row(i);
  });
  const Discriminant second = fit(G2, m.mean, sums2, counts, first.lambda);

  double total = 0;
  for_each_row_block(F, 0, F.rows(), [&](std::size_t first_row, const RowMatrix& block) {
    const Matrix p = posterior(second, mixed_block(first_row, block));
    for (Eigen::Index i = 0; i < p.rows(); ++i) total += p(i, y[first_row + static_cast<std::size_t>(i)]);
  });
  return total / static_cast<double>(F.rows());
}

}  // namespace caulk::rank
