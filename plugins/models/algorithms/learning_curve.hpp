// Learning curves for sample-complexity studies (docs/models.md): the power law
//   risk(n) = a n^(-b) + c
// fitted by constrained least squares, and the sample size n at which a fitted curve reaches a
// target risk. Plain functions over std::vector, no node knowledge.
#pragma once
#include <vector>

namespace caulk::curve {

// Bounds on the exponent: b = 0 would make a and c indistinguishable, and beyond 5 the curve is a
// step that no grid of sample sizes can resolve.
inline constexpr double kMinExponent = 0.01;
inline constexpr double kMaxExponent = 5.0;

struct PowerLawFit {
  double a = 0;    // >= 0: the part of the risk that more samples remove
  double b = 0;    // in [kMinExponent, kMaxExponent]: how fast it goes
  double c = 0;    // >= 0: the floor (irreducible risk of this model with this tuning)
  double rss = 0;  // residual sum of squares sum_i (risk_i - a n_i^-b - c)^2 at the fit
  // True when the points have at least 3 distinct n (three parameters). With fewer, the returned
  // parameters are a least-squares solution among many equally good ones.
  bool well_determined = false;
};

// Least squares fit of risk_i ~ a n_i^(-b) + c subject to a >= 0, b in [kMinExponent,
// kMaxExponent], c >= 0 (a risk that does not fall with n gets a = 0; a risk never below 0 gets a
// floor c >= 0). Repeated n are allowed (e.g. one point per repetition; the fit then equals the fit
// to the per-n means, with a larger rss).
//
// Method: for a fixed b the problem is linear least squares in (a, c) over the quadrant a, c >= 0,
// solved exactly: the unconstrained solution of the 2x2 normal equations when it is feasible, else
// the best of the boundary solutions (a = 0, c = max(0, mean risk); c = 0, a = max(0, least
// squares through the origin)). The residual, a continuous function of b, is minimised by a grid
// of 200 log-spaced b in the bounds, then golden-section search between the best grid point's
// neighbours. When a = 0 the residual does not depend on b; the smallest best b is returned.
//
// Throws caulk::Error when the vectors are empty or of different sizes, or a value is not finite,
// or an n is not positive.
PowerLawFit fit_power_law(const std::vector<double>& n, const std::vector<double>& risk);

// The residual sum of squares and the best feasible (a, c) for a fixed exponent b (the inner
// problem above; exposed for tests and diagnostics). Same preconditions as fit_power_law.
PowerLawFit fit_power_law_fixed_exponent(const std::vector<double>& n, const std::vector<double>& risk, double b);

// The sample size at which the fitted curve reaches `target_risk`:
//   a > 0 and target > c:  n = (a / (target - c))^(1/b)   (may be below 1 when the curve starts
//                          under the target; may overflow to +infinity)
//   a > 0 and target <= c: +infinity (the floor c is at or above the target: unreachable)
//   a = 0 and c <= target: 0 (the curve is flat at or under the target: any n reaches it)
//   a = 0 and c > target:  +infinity
// NaN when the target or a parameter is NaN.
double samples_to_reach(const PowerLawFit& fit, double target_risk);

// The fitted curve at n: a n^(-b) + c.
double predict(const PowerLawFit& fit, double n);

}  // namespace caulk::curve
