// L-BFGS (LBFGSpp) that keeps the best point it evaluated.
//
// LBFGSpp throws when its line search cannot decrease the objective any more (std::runtime_error),
// or finds the search direction no longer descends (std::logic_error): both happen at the optimum
// to rounding, and on a non-smooth kink. Every smooth fit in caulk
// wants the same answer then: the best point evaluated so far, not an exception. Errors of caulk's
// own (thrown by the objective) still propagate.
#pragma once
#include <limits>
#include <stdexcept>

#include <Eigen/Core>
#include <LBFGS.h>

#include "caulk/error.hpp"

namespace caulk {

struct LbfgsOutcome {
  int iterations = 0;    // as LBFGSpp counts them; param.max_iterations when it gave up
  bool gave_up = false;  // the line search could not improve further
  double value = 0;      // the objective at the returned point
};

// Minimises `objective(x, gradient) -> value` from `x`, which receives the best point evaluated.
template <class Objective>
LbfgsOutcome minimize_lbfgs(Objective&& objective, Eigen::VectorXd& x, const LBFGSpp::LBFGSParam<double>& param) {
  LBFGSpp::LBFGSSolver<double> solver(param);
  Eigen::VectorXd best = x;
  double best_value = std::numeric_limits<double>::infinity();
  auto tracked = [&](const Eigen::VectorXd& at, Eigen::VectorXd& gradient) {
    const double f = objective(at, gradient);
    if (f < best_value) {
      best_value = f;
      best = at;
    }
    return f;
  };
  LbfgsOutcome outcome;
  double value = 0;
  try {
    outcome.iterations = solver.minimize(tracked, x, value);
  } catch (const Error&) {
    throw;
  } catch (const std::invalid_argument&) {
    throw;  // bad parameters: a programming error, not a stalled search
  } catch (const std::runtime_error&) {
    outcome.iterations = param.max_iterations;
    outcome.gave_up = true;
  } catch (const std::logic_error&) {
    outcome.iterations = param.max_iterations;
    outcome.gave_up = true;
  }
  x = best;
  outcome.value = best_value;
  return outcome;
}

}  // namespace caulk
