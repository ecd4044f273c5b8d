#include "caulk/transferability/logme.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>

#include "caulk/number_format.hpp"
#include "caulk/parallel.hpp"

namespace caulk::rank {

namespace {

// F^T Y is summed over a fixed number of row lanes, each with its own accumulator, then added in
// lane order: the result does not depend on how many threads ran the lanes.
constexpr std::size_t kLanes = 4;
constexpr double kEpsilon = std::numeric_limits<double>::epsilon();
// The fixed point's +1e-5 terms, its start at alpha = beta = 1 and its 11 iterations make it
// depend on the scale of the features and targets, although the maximised evidence transforms
// exactly under scaling (docs/rankers.md, "LogME and scale"). Features or a regression target whose
// root-mean-square value lies outside [2^-20, 2^20] are multiplied by the power of two that brings
// it nearest 1 (an exact operation), and the evidence is corrected by the exact law; inside, the
// reference's numbers are kept as they are.
constexpr int kScaleWindowExponent = 20;

// The power of two 2^j that brings `rms` nearest 1 when it is outside the window; 0 otherwise.
int rescale_exponent(double rms) {
  if (!(rms > 0) || !std::isfinite(rms)) return 0;
  const double log2_rms = std::log2(rms);
  if (std::abs(log2_rms) <= kScaleWindowExponent) return 0;
  return -static_cast<int>(std::lround(log2_rms));
}

void check_shape(const MatrixView& features, std::size_t target_rows) {
  if (features.empty()) throw std::invalid_argument("LogME needs at least one row and one feature column");
  if (features.rows() != target_rows)
    throw std::invalid_argument("LogME: the features have " + std::to_string(features.rows()) + " rows but the targets have " +
                                std::to_string(target_rows));
}

std::string number(double v) { return format_number(v, 4); }

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

// What every target column's evidence is computed from: the spectrum, p = V^T F^T y per column
// (k x T, rows in the spectrum's order) and how to turn per-column coefficients into D-vectors.
struct Route {
  LogMESpectrum spectrum;
  Matrix P;
  std::size_t rank = 0;
  bool thin = false;
  int feature_exponent = 0;                      // the spectrum is that of 2^feature_exponent F
  std::function<Matrix(const Matrix&)> weights;  // k x T coefficients -> D x T weights
};

// Multiplies the spectrum by 4^j and p by 2^j, as if F were 2^j F, when the features' RMS
// sqrt(trace(F^T F) / (N D)) is outside the window.
void rescale_features(Route& r, double trace) {
  const double rms = std::sqrt(trace / (static_cast<double>(r.spectrum.rows) * static_cast<double>(r.spectrum.dims)));
  const int j = rescale_exponent(rms);
  if (j == 0) return;
  r.feature_exponent = j;
  r.spectrum.sigma = r.spectrum.sigma.unaryExpr([j](double v) { return std::ldexp(v, 2 * j); });
  r.P = r.P.unaryExpr([j](double v) { return std::ldexp(v, j); });
}

// N > D: all D eigenvalues of F^T F (shared through `stats`), clipped at 0, descending. A zero
// eigenvalue (an exact-zero or dependent column) has no data: its p is zero up to rounding, and it
// adds log(alpha) to the log-determinant, consistent with D/2 log(alpha): the true evidence, which
// does not depend on which rounding-noise eigenvalues a cut-off would keep.
Route route_from_gram(const FeatureStats& stats, const Matrix& fty) {
  const MatrixView& F = stats.features();
  const Moments& m = stats.moments();
  if (!m.scatter.allFinite() || !m.mean.allFinite() || !fty.allFinite())
    throw std::invalid_argument("LogME: F^T F overflows float64 (feature values near 1e150 or beyond); divide the features by a constant");
  const SymmetricEigen& e = stats.gram_eigen();
  const Eigen::Index D = e.values.size();
  Route r;
  r.spectrum.rows = F.rows();
  r.spectrum.dims = F.cols();
  r.spectrum.sigma = e.values.reverse().cwiseMax(0.0);
  r.P = (e.vectors.transpose() * fty).colwise().reverse();
  // The numerical rank of F^T F as numpy's matrix_rank gives it (eigenvalues above D eps lambda_max):
  // eigenvalues of a Gram matrix carry rounding noise near eps lambda_max, so a cut on their square
  // roots would count dependent columns.
  const double largest = r.spectrum.sigma.size() ? r.spectrum.sigma[0] : 0.0;
  const double tolerance = static_cast<double>(D) * kEpsilon * largest;
  for (Eigen::Index i = 0; i < D; ++i)
    if (r.spectrum.sigma[i] > tolerance) ++r.rank;
  const double trace = r.spectrum.sigma.sum();
  if (trace > 0 && trace < 1e-290)
    throw std::invalid_argument(
        "LogME: the features are too small for float64 (F^T F underflows: values near 1e-145 or below); "
        "multiply the features by a constant");
  rescale_features(r, trace);
  r.weights = [&e](const Matrix& coefficients) { return Matrix(e.vectors * coefficients.colwise().reverse()); };
  return r;
}

// N <= D: the thin SVD of F, keeping singular values above max(N, D) eps s_max (numpy's
// matrix_rank tolerance): which directions are kept does not depend on the features' scale, and
// with full row rank all N are, as with the reference's 1e-10 cut.
Route route_from_svd(const MatrixView& F, const Matrix& Y) {
  Matrix f = F.to_double();  // N x D with N <= D: no larger than the D x D Gram matrix
  // Rescaled before the SVD (exact: a power of two), so that squares of tiny singular values cannot underflow.
  const int j = rescale_exponent(f.stableNorm() / std::sqrt(static_cast<double>(f.size())));
  if (j != 0) f = f.unaryExpr([j](double v) { return std::ldexp(v, j); });
  ThinSvd svd = thin_svd(f);
  f = Matrix();
  const Vector& singular = svd.s;
  const double tolerance = singular.size() ? static_cast<double>(std::max(F.rows(), F.cols())) * kEpsilon * singular[0] : 0.0;
  Eigen::Index k = 0;
  while (k < singular.size() && singular[k] > tolerance) ++k;
  Route r;
  r.thin = true;
  r.rank = static_cast<std::size_t>(k);
  r.feature_exponent = j;
  r.spectrum.rows = F.rows();
  r.spectrum.dims = F.cols();
  r.spectrum.sigma = singular.head(k).array().square();
  // p = V^T F^T y = diag(s) U^T y.
  r.P = singular.head(k).asDiagonal() * (svd.U.leftCols(k).transpose() * Y);
  auto vt = std::make_shared<const Matrix>(k == svd.Vt.rows() ? std::move(svd.Vt) : Matrix(svd.Vt.topRows(k)));
  r.weights = [vt](const Matrix& coefficients) { return Matrix(vt->transpose() * coefficients); };
  return r;
}

// Solves every column; `names[c]` says which target column c is, for errors.
LogMEResult solve_columns(const Route& route, const Vector& y_norms, const LogMEOptions& options,
                          const std::function<std::string(Eigen::Index)>& name) {
  LogMEResult result;
  const Eigen::Index T = route.P.cols();
  const std::size_t k = static_cast<std::size_t>(route.spectrum.sigma.size());
  const std::size_t missing = route.thin && options.formula == LogMEFormula::Exact ? route.spectrum.dims - k : 0;
  Matrix coefficients(static_cast<Eigen::Index>(k), T);
  double sum = 0;
  for (Eigen::Index c = 0; c < T; ++c) {
    LogMEColumn col = logme_column(route.spectrum, route.P.col(c), y_norms[c], missing);
    if (!std::isfinite(col.evidence)) {
      const double largest = route.spectrum.sigma.size() ? std::ldexp(std::sqrt(route.spectrum.sigma[0]), -route.feature_exponent) : 0.0;
      throw std::invalid_argument(
          "LogME: the evidence of " + name(c) + " is not finite (alpha = " + number(col.alpha) + ", beta = " + number(col.beta) +
          "); the features' largest singular value is " + number(largest) +
          (largest == 0 ? " (every feature is zero)"
                        : ", a scale the fixed point cannot handle; multiply the features by a constant that brings their values near 1"));
    }
    // Features rescaled by c = 2^j: the reference's thin-SVD evidence of c F is that of F plus
    // (D - k)/N log c (its D/2 log alpha has no matching log-determinant terms); the evidence over
    // all D directions does not change.
    if (route.feature_exponent != 0 && route.thin && missing == 0)
      col.evidence -= static_cast<double>(route.spectrum.dims - k) / static_cast<double>(route.spectrum.rows) * route.feature_exponent *
                      std::numbers::ln2;
    result.evidence.push_back(col.evidence);
    result.alpha.push_back(std::ldexp(col.alpha, -2 * route.feature_exponent));
    result.beta.push_back(col.beta);
    result.iterations.push_back(col.iterations);
    coefficients.col(c) = col.coefficients;
    sum += col.evidence;
  }
  Matrix weights = route.weights(coefficients);  // D x T
  if (route.feature_exponent != 0) weights = weights.unaryExpr([e = route.feature_exponent](double v) { return std::ldexp(v, e); });
  result.weights = weights.transpose();
  result.score = sum / static_cast<double>(T);
  result.rank = route.rank;
  result.directions = k;
  result.thin_svd = route.thin;
  return result;
}

// `fty` computes F^T Y (only called when N > D); `targets` forms Y (only when N <= D).
LogMEResult logme(const FeatureStats& stats, const std::function<Matrix()>& fty, const std::function<Matrix()>& targets,
                  const Vector& y_norms, const LogMEOptions& options, const std::function<std::string(Eigen::Index)>& name) {
  const MatrixView& F = stats.features();
  if (F.rows() > F.cols()) {
    const Matrix product = fty();
    return solve_columns(route_from_gram(stats, product), y_norms, options, name);
  }
  return solve_columns(route_from_svd(F, targets()), y_norms, options, name);
}

}  // namespace

LogMEColumn logme_column(const LogMESpectrum& spectrum, const Vector& p, double y_squared_norm, std::size_t missing_directions) {
  const double N = static_cast<double>(spectrum.rows), D = static_cast<double>(spectrum.dims);
  const Eigen::ArrayXd sigma = spectrum.sigma.array();
  const Eigen::ArrayXd p2 = p.array().square();

  double alpha = 1, beta = 1, t = 1, m2 = 0, res2 = 0;
  int iterations = 0;
  for (int it = 0; it < 11; ++it) {
    ++iterations;
    t = alpha / beta;
    const Eigen::ArrayXd shifted = sigma + t;
    const double gamma = (sigma / shifted).sum();
    // With x = U^T y = p / s: m2 = sum sigma x^2 / (t + sigma)^2 and
    // res2 = ||y||^2 - sum x^2 + sum x^2 / (1 + sigma / t)^2, written with p so that a zero
    // sigma (no data in that direction) needs no division by it.
    m2 = (p2 / shifted.square()).sum();
    res2 = y_squared_norm - (p2 * (sigma + 2 * t) / shifted.square()).sum();
    alpha = gamma / (m2 + 1e-5);
    beta = (N - gamma) / (res2 + 1e-5);
    if (std::abs(alpha / beta - t) / t <= 1e-3) break;
  }
  LogMEColumn col;
  col.alpha = alpha;
  col.beta = beta;
  col.iterations = iterations;
  const double log_det = (alpha + beta * sigma).log().sum() + static_cast<double>(missing_directions) * std::log(alpha);
  col.evidence = (D / 2 * std::log(alpha) + N / 2 * std::log(beta) - 0.5 * log_det - beta / 2 * res2 - alpha / 2 * m2 -
                  N / 2 * std::log(2 * std::numbers::pi)) /
                 N;
  // Posterior mean V diag(s / (t + sigma)) x = V (p / (t + sigma)), with the t of the last
  // iteration, as the reference.
  col.coefficients = (p.array() / (sigma + t)).matrix();
  return col;
}

LogMEResult logme_classification(const FeatureStats& stats, const std::vector<int>& labels, int num_classes, const LogMEOptions& options) {
  const MatrixView& features = stats.features();
  check_shape(features, labels.size());
  if (num_classes < 1) throw std::invalid_argument("LogME: a classification task needs at least one class");
  for (int y : labels)
    if (y < 0 || y >= num_classes)
      throw std::invalid_argument("LogME: label " + std::to_string(y) + " is outside [0, " + std::to_string(num_classes) + ")");
  // Only the classes present in these rows are targets.
  std::vector<int> column_of(static_cast<std::size_t>(num_classes), -1);
  std::vector<int> present;
  for (int y : labels)
    if (column_of[static_cast<std::size_t>(y)] < 0) column_of[static_cast<std::size_t>(y)] = 0;
  for (int c = 0; c < num_classes; ++c)
    if (column_of[static_cast<std::size_t>(c)] == 0) {
      column_of[static_cast<std::size_t>(c)] = static_cast<int>(present.size());
      present.push_back(c);
    }
  const auto T = static_cast<Eigen::Index>(present.size());
  Vector counts = Vector::Zero(T);
  for (int y : labels) counts[column_of[static_cast<std::size_t>(y)]] += 1;
  // F^T y_c for the one-hot column of class c is the sum of the class's rows.
  auto fty = [&] {
    const ClassMeans cm = class_means(features, labels, num_classes);
    Matrix out(static_cast<Eigen::Index>(features.cols()), T);
    for (Eigen::Index j = 0; j < T; ++j) out.col(j) = cm.sums.row(present[static_cast<std::size_t>(j)]).transpose();
    return out;
  };
  auto one_hot = [&] {
    Matrix Y = Matrix::Zero(static_cast<Eigen::Index>(labels.size()), T);
    for (std::size_t i = 0; i < labels.size(); ++i) Y(static_cast<Eigen::Index>(i), column_of[static_cast<std::size_t>(labels[i])]) = 1;
    return Y;
  };
  LogMEResult r = logme(stats, fty, one_hot, counts, options,
                        [&](Eigen::Index j) { return "class " + std::to_string(present[static_cast<std::size_t>(j)]); });
  // One row of weights per class; an absent class keeps the zero posterior mean of an all-zero target.
  Matrix weights = Matrix::Zero(num_classes, static_cast<Eigen::Index>(features.cols()));
  for (Eigen::Index j = 0; j < T; ++j) weights.row(present[static_cast<std::size_t>(j)]) = r.weights.row(j);
  r.weights = std::move(weights);
  r.columns = std::move(present);
  return r;
}

LogMEResult logme_regression(const FeatureStats& stats, const Matrix& targets, const LogMEOptions& options) {
  const MatrixView& features = stats.features();
  check_shape(features, static_cast<std::size_t>(targets.rows()));
  if (targets.cols() < 1) throw std::invalid_argument("LogME: regression needs at least one target column");
  // A column whose RMS is outside the window is scaled by a power of two, y' = 2^-e y. Under
  // y -> c y the maximised evidence / N moves by -log c (the density of a scaled variable); the
  // reference's thin-SVD formula by -(D + N - k)/N log c. The weights scale by c, alpha and beta
  // by 1/c^2. Unlike feature scaling, the fixed point follows this law closely: t = alpha / beta,
  // and with it every iteration, does not change.
  std::vector<int> exponent(static_cast<std::size_t>(targets.cols()), 0);
  bool rescaled = false;
  for (Eigen::Index c = 0; c < targets.cols(); ++c) {
    const double largest = targets.col(c).cwiseAbs().maxCoeff();
    if (!std::isfinite(largest)) throw std::invalid_argument("LogME: regression target " + std::to_string(c) + " is not finite");
    if (largest == 0) continue;
    // The RMS without overflow: largest * sqrt(mean((y / largest)^2)).
    const double rms = largest * std::sqrt((targets.col(c) / largest).squaredNorm() / static_cast<double>(targets.rows()));
    exponent[static_cast<std::size_t>(c)] = -rescale_exponent(rms);
    rescaled = rescaled || exponent[static_cast<std::size_t>(c)] != 0;
  }
  Matrix scaled;
  if (rescaled) {
    scaled = targets;
    for (Eigen::Index c = 0; c < targets.cols(); ++c)
      if (const int e = exponent[static_cast<std::size_t>(c)])
        scaled.col(c) = scaled.col(c).unaryExpr([e](double v) { return std::ldexp(v, -e); });
  }
  const Matrix& Y = rescaled ? scaled : targets;
  Vector norms = Y.colwise().squaredNorm().transpose();
  LogMEResult r = logme(
      stats, [&] { return features_times_targets(features, Y); }, [&] { return Y; }, norms, options,
      [](Eigen::Index c) { return "regression target " + std::to_string(c); });
  const double N = static_cast<double>(features.rows()), D = static_cast<double>(features.cols());
  const double law = r.thin_svd && options.formula == LogMEFormula::Reference ? (D + N - static_cast<double>(r.directions)) / N : 1.0;
  double sum = 0;
  for (Eigen::Index c = 0; c < targets.cols(); ++c) {
    const int e = exponent[static_cast<std::size_t>(c)];
    const auto i = static_cast<std::size_t>(c);
    if (e != 0) {
      r.evidence[i] -= law * e * std::numbers::ln2;
      r.weights.row(c) = r.weights.row(c).unaryExpr([e](double v) { return std::ldexp(v, e); });
      r.alpha[i] = std::ldexp(r.alpha[i], -2 * e);
      r.beta[i] = std::ldexp(r.beta[i], -2 * e);
    }
    sum += r.evidence[i];
  }
  r.score = sum / static_cast<double>(targets.cols());
  for (Eigen::Index c = 0; c < targets.cols(); ++c) r.columns.push_back(static_cast<int>(c));
  return r;
}

}  // namespace caulk::rank
