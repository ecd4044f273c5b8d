#include "averagers/algorithms/simplex.hpp"

#include <fmt/format.h>

#include <Eigen/LU>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "caulk/error.hpp"

namespace caulk::avg {

Vector project_to_simplex(const Vector& v) {
  // Held, Wolfe and Crowder / Duchi et al.: w = max(v - theta, 0) with theta from the sorted values.
  std::vector<double> u(v.data(), v.data() + v.size());
  std::sort(u.begin(), u.end(), std::greater<>());
  double cumulative = 0, theta = 0;
  for (std::size_t j = 0; j < u.size(); ++j) {
    cumulative += u[j];
    const double t = (cumulative - 1) / static_cast<double>(j + 1);
    if (u[j] - t > 0) theta = t;
  }
  return (v.array() - theta).max(0.0).matrix();
}

QpResult simplex_qp(const Matrix& H_in, const Vector& c) {
  const Eigen::Index K = c.size();
  if (H_in.rows() != K || H_in.cols() != K) throw Error("internal: simplex_qp shapes differ");
  for (Eigen::Index i = 0; i < K; ++i)
    for (Eigen::Index j = 0; j < K; ++j)
      if (!std::isfinite(H_in(i, j)) || !std::isfinite(c(i))) throw Error("simplex_qp: the problem has non-finite entries");
  Matrix H = 0.5 * (H_in + H_in.transpose());
  const double mean_diagonal = std::max(H.diagonal().mean(), std::numeric_limits<double>::min());
  H.diagonal().array() += 1e-12 * mean_diagonal;
  const double scale = H.cwiseAbs().maxCoeff() + c.cwiseAbs().maxCoeff() + 1e-300;
  const double tol = 1e-12 * scale;

  // The best vertex.
  Eigen::Index start = 0;
  (0.5 * H.diagonal() - c).minCoeff(&start);
  Vector w = Vector::Zero(K);
  w(start) = 1;
  std::vector<bool> free(static_cast<std::size_t>(K), false);
  free[static_cast<std::size_t>(start)] = true;

  QpResult out;
  const int limit = 50 * static_cast<int>(K) + 100;
  // After a full step the iterate is the face's optimum by construction: the multipliers are
  // checked then instead of re-solving, since roundoff in a nearly singular face would otherwise
  // show up as tiny steps forever.
  bool at_face_optimum = false;
  for (out.iterations = 1; out.iterations <= limit; ++out.iterations) {
    const Vector g = H * w - c;
    std::vector<Eigen::Index> F;
    for (Eigen::Index i = 0; i < K; ++i)
      if (free[static_cast<std::size_t>(i)]) F.push_back(i);
    const auto nF = static_cast<Eigen::Index>(F.size());
    // [H_FF 1; 1' 0] [p; nu] = [-g_F; 0]: the best step within the face, keeping sum w = 1.
    Matrix kkt = Matrix::Zero(nF + 1, nF + 1);
    Vector rhs = Vector::Zero(nF + 1);
    for (Eigen::Index a = 0; a < nF; ++a) {
      for (Eigen::Index b = 0; b < nF; ++b) kkt(a, b) = H(F[a], F[b]);
      kkt(a, nF) = kkt(nF, a) = 1;
      rhs(a) = -g(F[a]);
    }
    Vector p = Vector::Zero(K);
    if (!at_face_optimum) {
      const Vector sol = kkt.fullPivLu().solve(rhs);
      for (Eigen::Index a = 0; a < nF; ++a) p(F[a]) = sol(a);
    }

    if (at_face_optimum || p.cwiseAbs().maxCoeff() <= 1e-13) {
      // At the face's optimum: multipliers of the bound coordinates, lambda_i = g_i - mu with
      // mu the common gradient on the free ones.
      double mu = 0;
      for (Eigen::Index i : F) mu += g(i);
      mu /= static_cast<double>(nF);
      Eigen::Index entering = -1;
      double most_negative = -tol;
      for (Eigen::Index i = 0; i < K; ++i)
        if (!free[static_cast<std::size_t>(i)] && g(i) - mu < most_negative) {
          most_negative = g(i) - mu;
          entering = i;
        }
      if (entering < 0) break;
      free[static_cast<std::size_t>(entering)] = true;
      at_face_optimum = false;
      continue;
    }
    double alpha = 1;
    Eigen::Index blocking = -1;
    for (Eigen::Index i : F)
      if (p(i) < 0 && -w(i) / p(i) < alpha) {
        alpha = -w(i) / p(i);
        blocking = i;
      }
    w += alpha * p;
    if (blocking >= 0) {
      w(blocking) = 0;
      free[static_cast<std::size_t>(blocking)] = false;
    } else {
      at_face_optimum = true;
    }
  }
  if (out.iterations > limit) throw Error("simplex_qp: the active-set method did not converge");
  w = w.cwiseMax(0.0);
  out.w = w / w.sum();
  return out;
}

void gram(const Stack& s, const Vector& row_weights, Matrix& G, Vector& b) {
  G = Matrix::Zero(s.K, s.K);
  b = Vector::Zero(s.K);
  for (int c = 0; c < s.C; ++c) {
    Matrix Fc(s.F.rows(), s.K);
    for (int k = 0; k < s.K; ++k) Fc.col(k) = s.F.col(static_cast<Eigen::Index>(k) * s.C + c);
    if (row_weights.size() == 0) {
      G.noalias() += Fc.transpose() * Fc;
      b.noalias() += Fc.transpose() * s.Y.col(c);
    } else {
      G.noalias() += Fc.transpose() * row_weights.asDiagonal() * Fc;
      b.noalias() += Fc.transpose() * row_weights.cwiseProduct(s.Y.col(c));
    }
  }
}

namespace {

// Projected Newton on the simplex for a convex objective: each step minimises the quadratic model
// g'd + d'Hd/2 over the simplex exactly (simplex_qp), then backtracks along d until the Armijo
// condition holds. The direction is one of descent whenever w is not optimal, so the iterates
// converge to the minimum for any convex objective (Bertsekas, Nonlinear Programming, 2.3); near
// it, with curvature, the steps are Newton's.
template <class Objective, class Hessian>
Vector projected_newton(const Objective& objective, const Hessian& hessian, Vector w, int& iterations, int max_iterations = 500) {
  Vector g;
  double f = objective(w, &g);
  for (int it = 0; it < max_iterations; ++it, ++iterations) {
    const Matrix H = hessian(w);
    const Vector d = simplex_qp(H, H * w - g).w - w;
    const double slope = g.dot(d);
    if (slope >= -1e-15 * (1 + std::abs(f))) break;  // no descent left: optimal
    double t = 1, next = 0;
    Vector candidate;
    int halvings = 0;
    for (; halvings < 60; ++halvings, t *= 0.5) {
      candidate = w + t * d;
      next = objective(candidate, nullptr);
      if (next <= f + 1e-4 * t * slope) break;
    }
    if (halvings == 60) break;          // no decrease even at a tiny step: at the optimum to rounding
    w = project_to_simplex(candidate);  // removes rounding off the simplex
    f = objective(w, &g);
  }
  return w;
}

}  // namespace

ConstantFit fit_constant_weights(const Stack& s, const Loss& loss_in, const Vector& row_weights_in) {
  const Vector row_weights = row_weights_in.size() ? row_weights_in : Vector::Ones(static_cast<Eigen::Index>(s.rows()));
  ConstantFit out;
  if (loss_in.kind == LossKind::Squared && s.kind == TaskKind::Regression) {
    Matrix G;
    Vector b;
    gram(s, row_weights, G, b);
    const double n = row_weights.sum() * s.C;
    const QpResult qp = simplex_qp(2 * G / n, 2 * b / n);
    out.w = qp.w;
    out.iterations = qp.iterations;
  } else {
    Loss loss = loss_in;
    Vector w = Vector::Constant(s.K, 1.0 / s.K);
    std::vector<double> schedule{0};
    if (loss.needs_smoothing()) {
      // mu_0 a tenth of the equal-weight combination's mean absolute residual; six decades down.
      Loss absolute;
      absolute.kind = LossKind::Absolute;
      const double scale = std::max(weighted_constant_loss(s, row_weights, w, absolute, nullptr), 1e-12);
      schedule.clear();
      for (int j = 0; j < 7; ++j) schedule.push_back(0.1 * scale * std::pow(10.0, -j));
    }
    for (double mu : schedule) {
      loss.smoothing = mu;
      auto objective = [&](const Vector& x, Vector* g) { return weighted_constant_loss(s, row_weights, x, loss, g); };
      auto hessian = [&](const Vector& x) { return weighted_constant_hessian(s, row_weights, x, loss); };
      w = projected_newton(objective, hessian, w, out.iterations);
    }
    out.w = w;
  }
  out.risk = weighted_constant_loss(s, row_weights, out.w,
                                    loss_in.needs_smoothing() ? Loss{loss_in.kind, loss_in.delta, loss_in.tau, 0} : loss_in, nullptr);
  return out;
}

MallowsFit mallows_weights(const Stack& s, const std::vector<double>& parameters) {
  if (s.kind != TaskKind::Regression) throw Error("Mallows model averaging is for regression");
  if (parameters.size() != static_cast<std::size_t>(s.K))
    throw Error(
        fmt::format("Mallows model averaging needs one parameter count per model: {} counts for {} models", parameters.size(), s.K));
  MallowsFit out;
  for (std::size_t k = 0; k < parameters.size(); ++k) {
    if (!(parameters[k] >= 0)) throw Error(fmt::format("model '{}' has a negative parameter count ({})", s.models[k], parameters[k]));
    if (parameters[k] > parameters[out.largest]) out.largest = k;
  }
  const double dof = static_cast<double>(s.rows()) * s.C - parameters[out.largest];
  if (dof <= 0)
    throw Error(
        fmt::format("Mallows model averaging estimates sigma^2 from the largest model '{}' ({} parameters), which needs more than {} "
                    "values to fit on",
                    s.models[out.largest], parameters[out.largest], s.rows() * static_cast<std::size_t>(s.C)));
  out.sigma2 = (s.model(static_cast<int>(out.largest)) - s.Y).squaredNorm() / dof;
  Matrix G;
  Vector b;
  gram(s, Vector(), G, b);
  const Vector p = Eigen::Map<const Vector>(parameters.data(), s.K);
  out.w = simplex_qp(2 * G, 2 * b - 2 * out.sigma2 * p).w;
  return out;
}

Vector jackknife_weights(const Stack& leave_one_out) {
  if (leave_one_out.kind != TaskKind::Regression) throw Error("jackknife model averaging is for regression");
  Matrix G;
  Vector b;
  gram(leave_one_out, Vector(), G, b);
  return simplex_qp(2 * G, 2 * b).w;
}

}  // namespace caulk::avg
