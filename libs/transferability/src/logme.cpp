#include "caulk/transferability/logme.hpp"


#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <stdexcept>
#include <string>

#include "caulk/parallel.hpp"

namespace caulk::rank {

namespace {

// F^T Y is summed over a fixed number of row lanes, each with its own accumulator, then added in
// lane order: the result does not depend on how many threads ran the lanes.
constexpr std::size_t kLanes = 4;
// The reference drops singular values at or below this.
constexpr double kSingularCutoff = 1e-10;

void check_shape(const MatrixView& features, std::size_t target_rows) {
  if (features.empty()) throw std::invalid_argument("LogME needs at least one row and one feature column");
  if (features.rows() != target_rows)
    throw std::invalid_argument("LogME: the features have " + std::to_string(features.rows()) + " rows but the targets have " +
                                std::to_string(target_rows));
}

// N > D: the spectrum from the (shared) eigendecomposition of F^T F.
LogMESpectrum spectrum_from_gram(const FeatureStats& stats) {
  const MatrixView& F = stats.features();
  const SymmetricEigen& e = stats.gram_eigen();
  // Descending order, as the reference's SVD gives; the reference keeps sqrt(|lambda|) > 1e-10.
  std::vector<Eigen::Index> kept;
  for (Eigen::Index i = e.values.size() - 1; i >= 0; --i)
    if (std::sqrt(std::abs(e.values[i])) > kSingularCutoff) kept.push_back(i);
  std::stable_sort(kept.begin(), kept.end(),
                   [&](Eigen::Index a, Eigen::Index b) { return std::abs(e.values[a]) > std::abs(e.values[b]); });
  LogMESpectrum s;
  s.rows = F.rows();
  s.dims = F.cols();
  s.sigma.resize(static_cast<Eigen::Index>(kept.size()));
  s.V.resize(e.vectors.rows(), static_cast<Eigen::Index>(kept.size()));
  for (std::size_t j = 0; j < kept.size(); ++j) {
    s.sigma[static_cast<Eigen::Index>(j)] = std::abs(e.values[kept[j]]);
    s.V.col(static_cast<Eigen::Index>(j)) = e.vectors.col(kept[j]);
  }
  return s;
}

// F^T Y (D x T) by row blocks over fixed lanes.
Matrix features_times_targets(const MatrixView& F, const Matrix& Y) {
  const std::size_t N = F.rows();
  std::vector<Matrix> parts(kLanes);
  parallel_for(kLanes, [&](std::size_t lane) {
    parts[lane].setZero(static_cast<Eigen::Index>(F.cols()), Y.cols());
    for_each_row_block(F, N * lane / kLanes, N * (lane + 1) / kLanes, [&](std::size_t first, const RowMatrix& block) {
      parts[lane].noalias() += block.transpose() * Y.middleRows(static_cast<Eigen::Index>(first), block.rows());
    });
  });
  Matrix total = std::move(parts[0]);
  for (std::size_t lane = 1; lane < kLanes; ++lane) total += parts[lane];
  return total;
}

// N <= D: the thin SVD of F itself, keeping singular values > 1e-10. Returns U^T Y directly.
LogMESpectrum spectrum_from_svd(const MatrixView& F, const Matrix& Y, Matrix& x) {
  Matrix f = F.to_double();  // N x D with N <= D: no larger than the D x D Gram matrix
  Eigen::BDCSVD<Matrix> svd(f, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Vector& singular = svd.singularValues();
  Eigen::Index k = 0;
  while (k < singular.size() && singular[k] > kSingularCutoff) ++k;
  LogMESpectrum s;
  s.rows = F.rows();
  s.dims = F.cols();
  s.sigma = singular.head(k).array().square();
  s.V = svd.matrixV().leftCols(k);
  x = svd.matrixU().leftCols(k).transpose() * Y;
  return s;
}

LogMEResult solve_columns(const LogMESpectrum& spectrum, const Matrix& x, const Vector& y_norms) {
  LogMEResult result;
  const Eigen::Index C = x.cols();
  result.weights.resize(C, static_cast<Eigen::Index>(spectrum.dims));
  double sum = 0;
  for (Eigen::Index c = 0; c < C; ++c) {
    LogMEColumn col = logme_column(spectrum, x.col(c), y_norms[c]);
    result.evidence.push_back(col.evidence);
    result.alpha.push_back(col.alpha);
    result.beta.push_back(col.beta);
    result.iterations.push_back(col.iterations);
    result.weights.row(c) = col.weights.transpose();
    sum += col.evidence;
  }
  result.score = sum / static_cast<double>(C);
  return result;
}

// `fty` computes F^T Y (only called when N > D); Y is formed only when N <= D.
LogMEResult logme(const FeatureStats& stats, const std::function<Matrix()>& fty, const std::function<Matrix()>& targets,
                  const Vector& y_norms) {
  const MatrixView& F = stats.features();
  if (F.rows() > F.cols()) {
    LogMESpectrum spectrum = spectrum_from_gram(stats);
    // x = U^T y = diag(1/s) V^T F^T y: U itself is never formed.
    Vector inv_s = spectrum.sigma.array().sqrt().inverse();
    Matrix x = inv_s.asDiagonal() * (spectrum.V.transpose() * fty());
    return solve_columns(spectrum, x, y_norms);
  }
  Matrix x;
  LogMESpectrum spectrum = spectrum_from_svd(F, targets(), x);
  return solve_columns(spectrum, x, y_norms);
}

}  // namespace

LogMEColumn logme_column(const LogMESpectrum& spectrum, const Vector& x, double y_squared_norm) {
  const double N = static_cast<double>(spectrum.rows), D = static_cast<double>(spectrum.dims);
  const Eigen::ArrayXd sigma = spectrum.sigma.array();
  const Eigen::ArrayXd x2 = x.array().square();
  const double r0 = y_squared_norm - x2.sum();

  double alpha = 1, beta = 1, t = 1, m2 = 0, res2 = 0;
  int iterations = 0;
  for (int it = 0; it < 11; ++it) {
    ++iterations;
    t = alpha / beta;
    const double gamma = (sigma / (sigma + t)).sum();
    m2 = (sigma * x2 / (t + sigma).square()).sum();
    res2 = (x2 / (1.0 + sigma / t).square()).sum() + r0;
    alpha = gamma / (m2 + 1e-5);
    beta = (N - gamma) / (res2 + 1e-5);
    if (std::abs(alpha / beta - t) / t <= 1e-3) break;
  }
  LogMEColumn col;
  col.alpha = alpha;
  col.beta = beta;
  col.iterations = iterations;
  col.evidence = (D / 2 * std::log(alpha) + N / 2 * std::log(beta) - 0.5 * (alpha + beta * sigma).log().sum() - beta / 2 * res2 -
                  alpha / 2 * m2 - N / 2 * std::log(2 * std::numbers::pi)) /
                 N;
  // Posterior mean V diag(s / (t + sigma)) x, with the t of the last iteration, as the reference.
  const Eigen::ArrayXd shrink = sigma.sqrt() / (t + sigma);
  col.weights = spectrum.V * (shrink * x.array()).matrix();
  return col;
}

LogMEResult logme_classification(const FeatureStats& stats, const std::vector<int>& labels, int num_classes) {
  const MatrixView& features = stats.features();
  check_shape(features, labels.size());
  if (num_classes < 1) throw std::invalid_argument("LogME: a classification task needs at least one class");
  for (int y : labels)
    if (y < 0 || y >= num_classes)
      throw std::invalid_argument("LogME: label " + std::to_string(y) + " is outside [0, " + std::to_string(num_classes) + ")");
  const auto C = static_cast<Eigen::Index>(num_classes);
  Vector counts = Vector::Zero(C);
  for (int y : labels) counts[y] += 1;
  // F^T y_c for the one-hot column of class c is the sum of the class's rows.
  auto fty = [&] { return Matrix(class_means(features, labels, num_classes).sums.transpose()); };
  auto one_hot = [&] {
    Matrix Y = Matrix::Zero(static_cast<Eigen::Index>(labels.size()), C);
    for (std::size_t i = 0; i < labels.size(); ++i) Y(static_cast<Eigen::Index>(i), labels[i]) = 1;
    return Y;
  };
  return logme(stats, fty, one_hot, counts);
}

LogMEResult logme_regression(const FeatureStats& stats, const Matrix& targets) {
  const MatrixView& features = stats.features();
  check_shape(features, static_cast<std::size_t>(targets.rows()));
  if (targets.cols() < 1) throw std::invalid_argument("LogME: regression needs at least one target column");
  Vector norms = targets.colwise().squaredNorm().transpose();
  return logme(stats, [&] { return features_times_targets(features, targets); }, [&] { return targets; }, norms);
}

}  // namespace caulk::rank
