#include "models/algorithms/learning_curve.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "caulk/error.hpp"

namespace caulk::curve {

namespace {

void check_points(const std::vector<double>& n, const std::vector<double>& risk) {
  if (n.empty()) throw Error("a learning curve needs at least one point");
  if (n.size() != risk.size()) throw Error(fmt::format("a learning curve has {} sample sizes but {} risks", n.size(), risk.size()));
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (!std::isfinite(n[i]) || n[i] <= 0)
      throw Error(fmt::format("learning curve point {}: the sample size must be positive and finite, found {}", i, n[i]));
    if (!std::isfinite(risk[i]))
      throw Error(fmt::format("learning curve point {} (n = {}): the risk is not finite ({})", i, n[i], risk[i]));
  }
}

// The inner problem for one exponent, on x_i = (n_i / n_ref)^-b (in (0, 1] with n_ref the smallest
// n, so that large b and n neither underflow nor make the 2x2 system badly scaled). Returns a in
// these units (a_scaled = a n_ref^-b).
struct Inner {
  double a_scaled = 0, c = 0, rss = std::numeric_limits<double>::infinity();
};

class Problem {
 public:
  Problem(const std::vector<double>& n, const std::vector<double>& risk) : n_(n), risk_(risk) {
    n_ref_ = *std::min_element(n.begin(), n.end());
    x_.resize(n.size());
  }

  double n_ref() const { return n_ref_; }

  Inner solve(double b) {
    const std::size_t m = n_.size();
    for (std::size_t i = 0; i < m; ++i) x_[i] = std::pow(n_[i] / n_ref_, -b);
    double xm = 0, rm = 0;
    for (std::size_t i = 0; i < m; ++i) {
      xm += x_[i];
      rm += risk_[i];
    }
    xm /= double(m);
    rm /= double(m);

    Inner best;
    auto consider = [&](double a, double c) {
      if (!(a >= 0) || !(c >= 0) || !std::isfinite(a) || !std::isfinite(c)) return;
      double rss = 0;
      for (std::size_t i = 0; i < m; ++i) {
        const double e = risk_[i] - a * x_[i] - c;
        rss += e * e;
      }
      if (rss < best.rss) best = {a, c, rss};
    };

    // Unconstrained: the centred normal equations (better conditioned than the raw 2x2 system).
    double sxx = 0, sxr = 0, xx = 0, xr = 0;
    for (std::size_t i = 0; i < m; ++i) {
      const double dx = x_[i] - xm;
      sxx += dx * dx;
      sxr += dx * (risk_[i] - rm);
      xx += x_[i] * x_[i];
      xr += x_[i] * risk_[i];
    }
    if (sxx > 0) {
      const double a = sxr / sxx;
      consider(a, rm - a * xm);
    }
    // The boundaries of the quadrant, each a one-dimensional least squares clamped at 0 (which
    // includes the corner a = c = 0). The objective is a convex quadratic, so when the
    // unconstrained minimum is infeasible the constrained one lies on one of these.
    consider(0, std::max(0.0, rm));
    consider(xx > 0 ? std::max(0.0, xr / xx) : 0.0, 0);
    return best;
  }

 private:
  const std::vector<double>& n_;
  const std::vector<double>& risk_;
  double n_ref_ = 1;
  std::vector<double> x_;
};

PowerLawFit to_fit(const Inner& in, double b, double n_ref) {
  PowerLawFit f;
  f.a = in.a_scaled == 0 ? 0.0 : in.a_scaled * std::pow(n_ref, b);
  f.b = b;
  f.c = in.c;
  f.rss = in.rss;
  return f;
}

bool has_three_distinct(std::vector<double> n) {
  std::sort(n.begin(), n.end());
  return std::unique(n.begin(), n.end()) - n.begin() >= 3;
}

}  // namespace

PowerLawFit fit_power_law_fixed_exponent(const std::vector<double>& n, const std::vector<double>& risk, double b) {
  check_points(n, risk);
  Problem problem(n, risk);
  PowerLawFit f = to_fit(problem.solve(b), b, problem.n_ref());
  f.well_determined = has_three_distinct(n);
  return f;
}

PowerLawFit fit_power_law(const std::vector<double>& n, const std::vector<double>& risk) {
  check_points(n, risk);
  Problem problem(n, risk);

  // Coarse: 200 log-spaced exponents over the bounds. Strict < keeps the smallest of equal ones.
  constexpr int kGrid = 200;
  const double log_lo = std::log(kMinExponent), log_hi = std::log(kMaxExponent);
  std::vector<double> grid(kGrid);
  for (int k = 0; k < kGrid; ++k) grid[k] = std::exp(log_lo + (log_hi - log_lo) * k / (kGrid - 1));
  grid.front() = kMinExponent;
  grid.back() = kMaxExponent;
  int best_k = 0;
  Inner best = problem.solve(grid[0]);
  for (int k = 1; k < kGrid; ++k) {
    const Inner in = problem.solve(grid[k]);
    if (in.rss < best.rss) {
      best = in;
      best_k = k;
    }
  }
  double best_b = grid[best_k];

  // Fine: golden-section search between the neighbours of the best grid point.
  double lo = grid[std::max(best_k - 1, 0)], hi = grid[std::min(best_k + 1, kGrid - 1)];
  const double inv_phi = (std::sqrt(5.0) - 1) / 2;
  double x1 = hi - inv_phi * (hi - lo), x2 = lo + inv_phi * (hi - lo);
  Inner f1 = problem.solve(x1), f2 = problem.solve(x2);
  for (int it = 0; it < 200 && hi - lo > 1e-13 * hi; ++it) {
    if (f1.rss <= f2.rss) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - inv_phi * (hi - lo);
      f1 = problem.solve(x1);
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + inv_phi * (hi - lo);
      f2 = problem.solve(x2);
    }
  }
  // Keep the refined point only when it is strictly better (a flat residual keeps the grid's b).
  const Inner& fine = f1.rss <= f2.rss ? f1 : f2;
  const double fine_b = f1.rss <= f2.rss ? x1 : x2;
  if (fine.rss < best.rss) {
    best = fine;
    best_b = fine_b;
  }

  PowerLawFit f = to_fit(best, best_b, problem.n_ref());
  f.well_determined = has_three_distinct(n);
  return f;
}

double samples_to_reach(const PowerLawFit& fit, double target_risk) {
  if (std::isnan(target_risk) || std::isnan(fit.a) || std::isnan(fit.b) || std::isnan(fit.c))
    return std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  if (fit.a <= 0) return fit.c <= target_risk ? 0.0 : inf;
  if (target_risk <= fit.c) return inf;
  return std::pow(fit.a / (target_risk - fit.c), 1.0 / fit.b);
}

double predict(const PowerLawFit& fit, double n) { return fit.a * std::pow(n, -fit.b) + fit.c; }

}  // namespace caulk::curve
