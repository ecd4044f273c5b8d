// Fitting localized model averaging (docs/averaging.md): a weight function w(z) minimising the
// penalised empirical loss of the combination on the fitting rows, the penalty (or the kernel's
// bandwidth) chosen by K-fold cross-validation on those rows.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "averagers/algorithms/weight_function.hpp"

namespace caulk::avg {

struct LocalOptions {
  WeightFunctionKind function = WeightFunctionKind::SoftmaxLinear;
  BasisKind basis = BasisKind::Raw;
  int knots = 4;                 // spline: interior knots per covariate
  int features = 32;             // fourier: number of random features
  double fourier_bandwidth = 1;  // fourier: on the standardised scale
  int hidden = 8;                // mlp: hidden width
  Loss loss;
  // Ridge strength; negative: chosen by cross-validation over penalty_grid.
  double penalty = -1;
  std::vector<double> penalty_grid{1, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6};
  // Kernel bandwidth on the standardised scale; 0: chosen by cross-validation over bandwidth_grid.
  double bandwidth = 0;
  std::vector<double> bandwidth_grid{0.05, 0.1, 0.2, 0.4, 0.8, 1.6};
  int folds = 5;
  double intercept_penalty = 1e-6;  // lambda0
  int max_iterations = 1000;        // L-BFGS iterations per fit (per smoothing stage)
  double tolerance = 1e-8;          // L-BFGS: gradient norm relative to max(1, ||theta||)
  std::uint64_t seed = 0;           // folds, Fourier features, the MLP's initialisation
};

struct CvPoint {
  double value = 0;  // a penalty or a bandwidth
  double risk = 0;   // mean held-out loss over every fold
};

struct LocalFit {
  WeightFunction function;
  std::vector<CvPoint> cv;  // empty when the value was given
  double chosen = 0;        // the penalty (parametric) or bandwidth (kernel) used
  int iterations = 0;       // L-BFGS iterations of the final fit (all stages)
  double fit_risk = 0;      // exact mean loss on the fitting rows
};

// Runs the cross-validation's folds: given their number, each fold's held-out loss totals at
// every grid value (see cross_validation_fold). The default runs them on the current pool; a
// distributed run hands each fold to a process, which calls cross_validation_fold.
using FoldRunner = std::function<std::vector<std::vector<double>>(std::size_t folds)>;

// z: the fitting rows' covariates (N x Q). Throws Error on shapes that differ, too few rows for
// the folds, or non-finite covariates.
LocalFit fit_local_average(const Stack& s, const Matrix& z, const LocalOptions& o, const FoldRunner& run_folds = {});

// Whether fit_local_average cross-validates with these options (a penalty or bandwidth not given).
bool cross_validates(const LocalOptions& o);

// One fold of fit_local_average's cross-validation, from the same arguments alone: the total
// held-out loss of fold `fold` at every grid value (penalties from the largest down; bandwidths
// in the grid's order). The same numbers fit_local_average computes for that fold.
std::vector<double> cross_validation_fold(const Stack& s, const Matrix& z, const LocalOptions& o, std::size_t fold);

// One penalised fit of a parametric weight function from `theta` (warm start), along the
// smoothing schedule mu_j = mu0 10^-j (j = 0..6) when the loss needs one, each stage warm-started
// from the last. `objective(theta, gradient, loss)` evaluates the objective under a (possibly
// smoothed) loss. Exposed for the benchmark.
struct LbfgsStats {
  int iterations = 0;
  int evaluations = 0;
};
template <class Objective>
LbfgsStats minimise_smoothed(const Objective& objective, const Loss& loss, double mu0, Vector& theta, int max_iterations, double tolerance);
// The starting smoothing width mu_0 of a stack: a tenth of the equal-weight combination's mean
// absolute residual (floored at 1e-12); the schedule is mu_j = mu_0 10^-j, j = 0..6.
double initial_smoothing(const Stack& s);

}  // namespace caulk::avg

#include "averagers/algorithms/local_average_impl.hpp"
