#include "logme.hpp"

#include <cblas.h>
#include <lapacke.h>

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

// F^T F is summed over a fixed number of row lanes, each with its own accumulator, then added in
// lane order: the result does not depend on how many threads ran the lanes.
constexpr std::size_t kLanes = 4;
constexpr std::size_t kBlockRows = 512;
// The reference drops singular values at or below this.
constexpr double kSingularCutoff = 1e-10;

void check_shape(const MatrixView& features, std::size_t target_rows) {
  if (features.empty()) throw std::invalid_argument("LogME needs at least one row and one feature column");
  if (features.rows() != target_rows)
    throw std::invalid_argument("LogME: the features have " + std::to_string(features.rows()) + " rows but the targets have " +
                                std::to_string(target_rows));
}

// Adds block^T * targets(rows) to fty; `targets` fills one block's N x C target rows.
using TargetRows = std::function<void(std::size_t first, std::size_t count, Matrix& out)>;

// N > D: F^T F in float64 by blocks (never a float64 copy of F), then one symmetric
// eigendecomposition. Returns the spectrum and F^T Y.
LogMESpectrum spectrum_from_gram(const MatrixView& F, std::size_t num_targets, const TargetRows& target_rows, Matrix& fty) {
  const std::size_t N = F.rows(), D = F.cols();
  std::vector<Matrix> grams(kLanes), ftys(kLanes);
  parallel_for(kLanes, [&](std::size_t lane) {
    const std::size_t begin = N * lane / kLanes, end = N * (lane + 1) / kLanes;
    Matrix& gram = grams[lane];
    Matrix& lane_fty = ftys[lane];
    gram.setZero(D, D);
    lane_fty.setZero(D, num_targets);
    RowMatrix block;
    Matrix targets;
    for (std::size_t first = begin; first < end; first += kBlockRows) {
      const std::size_t count = std::min(kBlockRows, end - first);
      F.rows_to(first, count, block);
      // A row-major count x D block is the column-major D x count matrix A; gram += A A^T.
      cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, static_cast<int>(D), static_cast<int>(count), 1.0, block.data(),
                  static_cast<int>(D), 1.0, gram.data(), static_cast<int>(D));
      target_rows(first, count, targets);
      Eigen::Map<const Matrix> a(block.data(), static_cast<Eigen::Index>(D), static_cast<Eigen::Index>(count));
      lane_fty.noalias() += a * targets;
    }
  });
  Matrix gram = std::move(grams[0]);
  fty = std::move(ftys[0]);
  for (std::size_t lane = 1; lane < kLanes; ++lane) {
    gram += grams[lane];
    fty += ftys[lane];
    grams[lane] = Matrix();
  }

  Vector eigenvalues(static_cast<Eigen::Index>(D));
  const int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', static_cast<int>(D), gram.data(), static_cast<int>(D),
                                  eigenvalues.data());
  if (info != 0) throw std::runtime_error("LogME: the eigendecomposition of F^T F failed (LAPACK dsyevd info " + std::to_string(info) + ")");

  // Descending order, as the reference's SVD gives; the reference keeps sqrt(|lambda|) > 1e-10.
  std::vector<Eigen::Index> kept;
  for (Eigen::Index i = static_cast<Eigen::Index>(D) - 1; i >= 0; --i)
    if (std::sqrt(std::abs(eigenvalues[i])) > kSingularCutoff) kept.push_back(i);
  std::stable_sort(kept.begin(), kept.end(),
                   [&](Eigen::Index a, Eigen::Index b) { return std::abs(eigenvalues[a]) > std::abs(eigenvalues[b]); });
  LogMESpectrum s;
  s.rows = N;
  s.dims = D;
  s.sigma.resize(static_cast<Eigen::Index>(kept.size()));
  s.V.resize(static_cast<Eigen::Index>(D), static_cast<Eigen::Index>(kept.size()));
  for (std::size_t j = 0; j < kept.size(); ++j) {
    s.sigma[static_cast<Eigen::Index>(j)] = std::abs(eigenvalues[kept[j]]);
    s.V.col(static_cast<Eigen::Index>(j)) = gram.col(kept[j]);
  }
  return s;
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

LogMEResult logme(const MatrixView& F, std::size_t num_targets, const TargetRows& target_rows, const Vector& y_norms) {
  const std::size_t N = F.rows();
  if (N > F.cols()) {
    Matrix fty;
    LogMESpectrum spectrum = spectrum_from_gram(F, num_targets, target_rows, fty);
    // x = U^T y = diag(1/s) V^T F^T y: U itself is never formed.
    Vector inv_s = spectrum.sigma.array().sqrt().inverse();
    Matrix x = inv_s.asDiagonal() * (spectrum.V.transpose() * fty);
    return solve_columns(spectrum, x, y_norms);
  }
  Matrix Y;
  target_rows(0, N, Y);
  Matrix x;
  LogMESpectrum spectrum = spectrum_from_svd(F, Y, x);
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

LogMEResult logme_classification(const MatrixView& features, const std::vector<int>& labels, int num_classes) {
  check_shape(features, labels.size());
  if (num_classes < 1) throw std::invalid_argument("LogME: a classification task needs at least one class");
  for (int y : labels)
    if (y < 0 || y >= num_classes)
      throw std::invalid_argument("LogME: label " + std::to_string(y) + " is outside [0, " + std::to_string(num_classes) + ")");
  const auto C = static_cast<Eigen::Index>(num_classes);
  Vector counts = Vector::Zero(C);
  for (int y : labels) counts[y] += 1;
  auto one_hot = [&](std::size_t first, std::size_t count, Matrix& out) {
    out.setZero(static_cast<Eigen::Index>(count), C);
    for (std::size_t i = 0; i < count; ++i) out(static_cast<Eigen::Index>(i), labels[first + i]) = 1;
  };
  return logme(features, static_cast<std::size_t>(num_classes), one_hot, counts);
}

LogMEResult logme_regression(const MatrixView& features, const Matrix& targets) {
  check_shape(features, static_cast<std::size_t>(targets.rows()));
  if (targets.cols() < 1) throw std::invalid_argument("LogME: regression needs at least one target column");
  Vector norms = targets.colwise().squaredNorm().transpose();
  auto rows = [&](std::size_t first, std::size_t count, Matrix& out) {
    out = targets.middleRows(static_cast<Eigen::Index>(first), static_cast<Eigen::Index>(count));
  };
  return logme(features, static_cast<std::size_t>(targets.cols()), rows, norms);
}

}  // namespace caulk::rank
