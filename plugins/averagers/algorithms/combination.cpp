#include "averagers/algorithms/combination.hpp"

#include <fmt/format.h>

#include <cmath>

#include "caulk/error.hpp"

namespace caulk::avg {

namespace {

const std::vector<std::pair<LossKind, std::string>>& loss_names() {
  static const std::vector<std::pair<LossKind, std::string>> names{{LossKind::Squared, "squared"},
                                                                   {LossKind::Absolute, "absolute"},
                                                                   {LossKind::Huber, "huber"},
                                                                   {LossKind::Pinball, "pinball"},
                                                                   {LossKind::CrossEntropy, "cross_entropy"}};
  return names;
}

// Huber smoothing of |u| with width mu (mu > 0), and its derivative.
double smoothed_abs(double u, double mu, double* derivative) {
  if (std::abs(u) <= mu) {
    if (derivative) *derivative = u / mu;
    return u * u / (2 * mu);
  }
  if (derivative) *derivative = u > 0 ? 1.0 : -1.0;
  return std::abs(u) - mu / 2;
}

double exact_abs(double u, double* derivative) {
  // A subgradient at 0 (the smoothing schedule never relies on it).
  if (derivative) *derivative = u > 0 ? 1.0 : (u < 0 ? -1.0 : 0.0);
  return std::abs(u);
}

}  // namespace

LossKind parse_loss(const std::string& name) {
  std::string known;
  for (const auto& [k, n] : loss_names()) {
    if (n == name) return k;
    known += (known.empty() ? "" : ", ") + n;
  }
  throw Error(fmt::format("unknown loss '{}' (known: {})", name, known));
}

std::string loss_name(LossKind k) {
  for (const auto& [kind, n] : loss_names())
    if (kind == k) return n;
  return "?";
}

double Loss::value(double f, double y, double* derivative) const {
  switch (kind) {
    case LossKind::Squared: {
      const double r = f - y;
      if (derivative) *derivative = 2 * r;
      return r * r;
    }
    case LossKind::Absolute:
      return smoothing > 0 ? smoothed_abs(f - y, smoothing, derivative) : exact_abs(f - y, derivative);
    case LossKind::Huber: {
      const double r = f - y;
      if (std::abs(r) <= delta) {
        if (derivative) *derivative = r;
        return 0.5 * r * r;
      }
      if (derivative) *derivative = r > 0 ? delta : -delta;
      return delta * (std::abs(r) - 0.5 * delta);
    }
    case LossKind::Pinball: {
      // rho_tau(u) = (tau - 1/2) u + |u| / 2 with u = y - f; the |u| part is what gets smoothed.
      const double u = y - f;
      double d_abs = 0;
      const double a =
          smoothing > 0 ? smoothed_abs(u, smoothing, derivative ? &d_abs : nullptr) : exact_abs(u, derivative ? &d_abs : nullptr);
      if (derivative) *derivative = -((tau - 0.5) + 0.5 * d_abs);
      return (tau - 0.5) * u + 0.5 * a;
    }
    case LossKind::CrossEntropy:
      break;
  }
  throw Error("cross_entropy is a loss of class probabilities, not of regression values");
}

double Loss::curvature(double f, double y) const {
  switch (kind) {
    case LossKind::Squared:
      return 2;
    case LossKind::Huber:
      return std::abs(f - y) <= delta ? 1 : 0;
    case LossKind::Absolute:
      return smoothing > 0 && std::abs(f - y) <= smoothing ? 1 / smoothing : 0;
    case LossKind::Pinball:
      return smoothing > 0 && std::abs(f - y) <= smoothing ? 0.5 / smoothing : 0;
    case LossKind::CrossEntropy:
      break;
  }
  throw Error("cross_entropy is a loss of class probabilities, not of regression values");
}

double Loss::row(const double* f, const double* y, int cls, int C, double* gradient) const {
  if (kind == LossKind::CrossEntropy) {
    if (gradient)
      for (int c = 0; c < C; ++c) gradient[c] = 0;
    const double p = f[cls];
    if (p <= kProbabilityFloor) return -std::log(kProbabilityFloor);  // clipped: flat there
    if (gradient) gradient[cls] = -1 / p;
    return -std::log(p);
  }
  // Regression losses on class probabilities (squared: the Brier score) compare with the one-hot truth.
  double total = 0;
  for (int c = 0; c < C; ++c) {
    double d = 0;
    const double truth = y ? y[c] : (c == cls ? 1.0 : 0.0);
    total += value(f[c], truth, gradient ? &d : nullptr);
    if (gradient) gradient[c] = d / C;
  }
  return total / C;
}

double Loss::smoothing_gap() const {
  if (smoothing <= 0) return 0;
  if (kind == LossKind::Absolute) return smoothing / 2;
  if (kind == LossKind::Pinball) return smoothing / 4;
  return 0;
}

Loss Loss::for_scale(double scale) const {
  Loss out = *this;
  if (kind == LossKind::Huber) out.delta = delta / scale;
  if (out.smoothing > 0) out.smoothing = smoothing / scale;
  return out;
}

double Loss::in_given_units(double risk, double scale) const {
  switch (kind) {
    case LossKind::Squared:
    case LossKind::Huber:
      return risk * scale * scale;
    case LossKind::Absolute:
    case LossKind::Pinball:
      return risk * scale;
    case LossKind::CrossEntropy:
      break;
  }
  return risk;
}

Magnitudes magnitudes(const Stack& s) {
  Magnitudes m;
  if (s.kind != TaskKind::Regression) return m;
  auto source = [&](const auto& values, int index) {
    Eigen::Index r = 0, c = 0;
    const double largest = values.size() ? values.cwiseAbs().maxCoeff(&r, &c) : 0.0;
    if (largest > m.largest) m.largest = largest, m.largest_source = index, m.row = r, m.column = c;
    if (largest > 0 && (m.smallest == 0 || largest < m.smallest)) m.smallest = largest, m.smallest_source = index;
  };
  source(s.Y, -1);
  for (int k = 0; k < s.K; ++k) source(s.model(k), k);
  if (m.largest == 0 || (m.largest <= kLargestMagnitude && m.largest >= kSmallestMagnitude)) return m;
  // Divided so that the largest is about 1, the smallest source would have to stay above the floor.
  m.range = m.smallest / m.largest >= kSmallestMagnitude ? Magnitudes::Range::Rescalable : Magnitudes::Range::TooSpread;
  return m;
}

void rescale(Stack& s, const Magnitudes& m) {
  if (!(m.largest > 0)) return;
  const int e = std::ilogb(m.largest) + 1;  // largest / 2^e in [0.5, 1)
  const double factor = std::ldexp(1.0, -e);
  s.F *= factor;
  s.Y *= factor;
  s.scale *= std::ldexp(1.0, e);
}

Stack Stack::subset(const std::vector<std::size_t>& index) const {
  Stack out;
  out.kind = kind;
  out.K = K;
  out.C = C;
  out.scale = scale;
  out.models = models;
  out.F.resize(static_cast<Eigen::Index>(index.size()), F.cols());
  if (kind == TaskKind::Regression) out.Y.resize(out.F.rows(), Y.cols());
  for (std::size_t j = 0; j < index.size(); ++j) {
    const auto i = static_cast<Eigen::Index>(index[j]);
    out.F.row(static_cast<Eigen::Index>(j)) = F.row(i);
    if (kind == TaskKind::Regression)
      out.Y.row(static_cast<Eigen::Index>(j)) = Y.row(i);
    else
      out.classes.push_back(classes[index[j]]);
  }
  return out;
}

Matrix Stack::model(int k) const { return F.middleCols(static_cast<Eigen::Index>(k) * C, C); }

Stack make_stack(TaskKind kind, const std::vector<std::string>& names, const std::vector<const Matrix*>& predictions, const Matrix* targets,
                 const std::vector<int>* classes, const std::string& what) {
  if (predictions.empty()) throw Error("no models to combine");
  if (names.size() != predictions.size()) throw Error("internal: model names and predictions differ in number");
  const std::size_t N = kind == TaskKind::Regression ? static_cast<std::size_t>(targets->rows()) : classes->size();
  const Eigen::Index C = predictions.front()->cols();
  if (N == 0) throw Error(fmt::format("{} has no rows", what));
  if (kind == TaskKind::Regression && targets->cols() != C)
    throw Error(fmt::format("model '{}' predicts {} values per row on {} but the targets have {} columns", names.front(), C, what,
                            targets->cols()));
  Stack s;
  s.kind = kind;
  s.K = static_cast<int>(predictions.size());
  s.C = static_cast<int>(C);
  s.models = names;
  s.F.resize(static_cast<Eigen::Index>(N), s.K * C);
  for (std::size_t k = 0; k < predictions.size(); ++k) {
    const Matrix& P = *predictions[k];
    if (static_cast<std::size_t>(P.rows()) != N)
      throw Error(
          fmt::format("model '{}' has {} rows of predictions on {} but the labels there have {} rows", names[k], P.rows(), what, N));
    if (P.cols() != C)
      throw Error(
          fmt::format("model '{}' has {} columns of predictions on {} but model '{}' has {}", names[k], P.cols(), what, names.front(), C));
    for (Eigen::Index i = 0; i < P.rows(); ++i) {
      double sum = 0;
      for (Eigen::Index c = 0; c < C; ++c) {
        const double v = P(i, c);
        if (!std::isfinite(v))
          throw Error(fmt::format("model '{}' has a non-finite prediction ({}) on {} at row {}, column {}", names[k], v, what, i, c));
        if (kind == TaskKind::Classification && v < 0)
          throw Error(fmt::format("model '{}' has a negative probability ({}) on {} at row {}, column {}", names[k], v, what, i, c));
        sum += v;
      }
      if (kind == TaskKind::Classification && std::abs(sum - 1) > 1e-6)
        throw Error(fmt::format("model '{}': the probabilities of row {} on {} sum to {}, not 1", names[k], i, what, sum));
    }
    s.F.middleCols(static_cast<Eigen::Index>(k) * C, C) = P;
  }
  if (kind == TaskKind::Regression) {
    s.Y = *targets;
    for (Eigen::Index i = 0; i < s.Y.rows(); ++i)
      for (Eigen::Index c = 0; c < s.Y.cols(); ++c)
        if (!std::isfinite(s.Y(i, c))) throw Error(fmt::format("the target on {} at row {}, column {} is not finite", what, i, c));
  } else {
    s.classes = *classes;
    for (std::size_t i = 0; i < N; ++i)
      if (s.classes[i] < 0 || s.classes[i] >= C)
        throw Error(fmt::format("the label of row {} on {} is class {}, but the models predict {} classes", i, what, s.classes[i], C));
  }
  return s;
}

Matrix combine(const Stack& s, const Matrix& W) {
  Matrix out = Matrix::Zero(s.F.rows(), s.C);
  for (Eigen::Index i = 0; i < s.F.rows(); ++i)
    for (int k = 0; k < s.K; ++k) out.row(i) += W(i, k) * s.F.row(i).segment(static_cast<Eigen::Index>(k) * s.C, s.C);
  return out;
}

Matrix combine_constant(const Stack& s, const Vector& w) {
  Matrix out = Matrix::Zero(s.F.rows(), s.C);
  for (int k = 0; k < s.K; ++k) out += w(k) * s.model(k);
  return out;
}

double mean_loss(const Stack& s, const Matrix& combined, const Loss& loss) {
  double total = 0;
  Vector f(s.C);
  for (Eigen::Index i = 0; i < combined.rows(); ++i) {
    f = combined.row(i).transpose();
    const double* y = s.kind == TaskKind::Regression ? s.Y.row(i).data() : nullptr;
    const int cls = s.kind == TaskKind::Classification ? s.classes[static_cast<std::size_t>(i)] : 0;
    total += loss.row(f.data(), y, cls, s.C, nullptr);
  }
  return total / static_cast<double>(combined.rows());
}

Vector model_risks(const Stack& s, const Loss& loss) {
  Vector out(s.K);
  for (int k = 0; k < s.K; ++k) out(k) = mean_loss(s, s.model(k), loss);
  return out;
}

double weighted_constant_loss(const Stack& s, const Vector& row_weights, const Vector& w, const Loss& loss, Vector* gradient) {
  double total = 0, weight_sum = 0;
  Vector f(s.C), g(s.C);
  if (gradient) *gradient = Vector::Zero(s.K);
  for (Eigen::Index i = 0; i < s.F.rows(); ++i) {
    const double r = row_weights(i);
    if (r == 0) continue;
    f.setZero();
    for (int k = 0; k < s.K; ++k) f += w(k) * s.F.row(i).segment(static_cast<Eigen::Index>(k) * s.C, s.C).transpose();
    const double* y = s.kind == TaskKind::Regression ? s.Y.row(i).data() : nullptr;
    const int cls = s.kind == TaskKind::Classification ? s.classes[static_cast<std::size_t>(i)] : 0;
    total += r * loss.row(f.data(), y, cls, s.C, gradient ? g.data() : nullptr);
    weight_sum += r;
    if (gradient)
      for (int k = 0; k < s.K; ++k) (*gradient)(k) += r * g.dot(s.F.row(i).segment(static_cast<Eigen::Index>(k) * s.C, s.C));
  }
  if (weight_sum <= 0) throw Error("internal: row weights sum to zero");
  if (gradient) *gradient /= weight_sum;
  return total / weight_sum;
}

Matrix weighted_constant_hessian(const Stack& s, const Vector& row_weights, const Vector& w, const Loss& loss) {
  Matrix H = Matrix::Zero(s.K, s.K);
  double weight_sum = 0;
  Vector column(s.K);
  for (Eigen::Index i = 0; i < s.F.rows(); ++i) {
    const double r = row_weights(i);
    if (r == 0) continue;
    weight_sum += r;
    const double* Fi = s.F.row(i).data();
    if (loss.kind == LossKind::CrossEntropy) {
      // -log(sum_k w_k p_k,y): Hessian p_y p_y' / (w'p_y)^2 (0 where the clip holds it flat).
      const int y = s.classes[static_cast<std::size_t>(i)];
      for (int k = 0; k < s.K; ++k) column(k) = Fi[k * s.C + y];
      const double p = w.dot(column);
      if (p > kProbabilityFloor) H.noalias() += (r / (p * p)) * column * column.transpose();
      continue;
    }
    for (int c = 0; c < s.C; ++c) {
      double f = 0;
      for (int k = 0; k < s.K; ++k) f += w(k) * (column(k) = Fi[k * s.C + c]);
      const double truth = s.kind == TaskKind::Regression ? s.Y(i, c) : (c == s.classes[static_cast<std::size_t>(i)] ? 1.0 : 0.0);
      const double h = loss.curvature(f, truth);
      if (h != 0) H.noalias() += (r * h / s.C) * column * column.transpose();
    }
  }
  return H / weight_sum;
}

}  // namespace caulk::avg
