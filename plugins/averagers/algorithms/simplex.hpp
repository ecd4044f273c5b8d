// Constant weights on the simplex: the quadratic programs of Mallows and jackknife model averaging,
// and stacking (global model averaging) under any loss.
#pragma once
#include <vector>

#include "averagers/algorithms/combination.hpp"

namespace caulk::avg {

// The Euclidean projection of v onto the simplex {w >= 0, sum w = 1} (sort-based, exact).
Vector project_to_simplex(const Vector& v);

struct QpResult {
  Vector w;
  int iterations = 0;
};
// Minimises 0.5 w' H w - c' w over the simplex (H symmetric positive semi-definite) with a primal
// active-set method: from the best vertex, each step solves the equality-constrained problem on
// the free coordinates (a KKT system), moves as far as feasibility allows, frees the coordinate
// with the most negative multiplier at a face's optimum, and stops when every multiplier is >= 0.
// H gets a ridge of 1e-12 times its mean diagonal so that each face's problem has one solution
// (collinear models); that moves the optimum by that relative amount at most.
QpResult simplex_qp(const Matrix& H, const Vector& c);

// The Gram matrix G_kl = sum_i r_i <F_ik, F_il> and b_k = sum_i r_i <F_ik, y_i> of a regression
// stack (r = row weights; all ones when empty), so that sum_i r_i ||sum_k w_k F_ik - y_i||^2 =
// w'Gw - 2 b'w + const.
void gram(const Stack& s, const Vector& row_weights, Matrix& G, Vector& b);

struct ConstantFit {
  Vector w;            // on the simplex
  double risk = 0;     // the exact (unsmoothed) weighted mean loss at w
  int iterations = 0;  // QP steps, or gradient steps over every smoothing stage
};
// Constant simplex weights minimising the row-weighted mean loss (row_weights empty: all 1),
// a convex problem. Squared loss: the exact QP (simplex_qp). Other losses: projected Newton (each
// step the exact minimiser of the quadratic model over the simplex, then an Armijo line search)
// until no descent direction is left; absolute and pinball along the smoothing schedule
// mu_j = mu_0 10^-j (docs/averaging.md), each stage warm-started from the last.
ConstantFit fit_constant_weights(const Stack& s, const Loss& loss, const Vector& row_weights = Vector());

// Mallows model averaging (Hansen 2007) for regression: minimises ||Y - sum_k w_k F_k||^2 +
// 2 sigma^2 sum_k w_k p_k over the simplex, p_k the number of parameters of model k and
// sigma^2 = ||Y - F_M||^2 / (N C - p_M) from the model M with the most parameters (the first of
// them on ties). Throws Error when N C <= p_M or a count is negative.
struct MallowsFit {
  Vector w;
  double sigma2 = 0;
  std::size_t largest = 0;  // M
};
MallowsFit mallows_weights(const Stack& s, const std::vector<double>& parameters);

// Jackknife model averaging (Hansen & Racine 2012): minimises ||Y - sum_k w_k F~_k||^2 over the
// simplex with F~_k model k's leave-one-out predictions (the stack holds those).
Vector jackknife_weights(const Stack& leave_one_out);

}  // namespace caulk::avg
