// The L-BFGS driver with the smoothing schedule (a template: each weight function passes its own
// objective). Included by local_average.hpp.
#pragma once
#include "caulk/lbfgs.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "caulk/error.hpp"

namespace caulk::avg {

template <class Objective>
LbfgsStats minimise_smoothed(const Objective& objective, const Loss& loss_in, double mu0, Vector& theta, int max_iterations,
                             double tolerance) {
  LbfgsStats stats;
  std::vector<double> schedule{0};
  if (loss_in.needs_smoothing()) {
    schedule.clear();
    for (int j = 0; j < 7; ++j) schedule.push_back(mu0 * std::pow(10.0, -j));
  }
  Loss loss = loss_in;
  for (double mu : schedule) {
    loss.smoothing = mu;
    LBFGSpp::LBFGSParam<double> param;
    param.epsilon = tolerance;
    param.epsilon_rel = tolerance;
    param.max_iterations = max_iterations;
    param.max_linesearch = 40;
    // Stop also when the objective no longer moves (relative 1e-12 over 5 iterations): the
    // gradient test alone can stall in a flat valley at rounding level.
    param.past = 5;
    param.delta = 1e-12;
    auto counted = [&](const Vector& x, Vector& g) {
      ++stats.evaluations;
      return objective(x, &g, loss);
    };
    // When the line search gives up (at the optimum to rounding, or on a non-smooth kink) the
    // best point evaluated is kept.
    const LbfgsOutcome outcome = minimize_lbfgs(counted, theta, param);
    if (!outcome.gave_up) stats.iterations += outcome.iterations;
  }
  return stats;
}

}  // namespace caulk::avg
