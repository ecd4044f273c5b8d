#include "averagers/algorithms/local_average.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "averagers/algorithms/simplex.hpp"
#include "averagers/algorithms/streams.hpp"
#include "caulk/parallel.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::avg {

double initial_smoothing(const Stack& s) {
  if (s.kind != TaskKind::Regression) return 0;
  Loss absolute;
  absolute.kind = LossKind::Absolute;
  const double scale = mean_loss(s, combine_constant(s, Vector::Constant(s.K, 1.0 / s.K)), absolute);
  return 0.1 * std::max(scale, 1e-12);
}

namespace {

Loss exact(Loss l) {
  l.smoothing = 0;
  return l;
}

// Held-out rows of each fold: a seeded shuffle dealt round-robin, each fold's rows sorted.
std::vector<std::vector<std::size_t>> make_folds(std::size_t N, int folds, std::uint64_t seed) {
  const std::vector<std::size_t> order = seeding::seeded_order(N, seeding::derive_seed(seed, kFoldShuffle));
  std::vector<std::vector<std::size_t>> out(static_cast<std::size_t>(folds));
  for (std::size_t j = 0; j < N; ++j) out[j % static_cast<std::size_t>(folds)].push_back(order[j]);
  for (auto& f : out) std::sort(f.begin(), f.end());
  return out;
}

std::vector<std::size_t> complement(std::size_t N, const std::vector<std::size_t>& held_out) {
  std::vector<std::size_t> out;
  std::size_t j = 0;
  for (std::size_t i = 0; i < N; ++i) {
    if (j < held_out.size() && held_out[j] == i) {
      ++j;
      continue;
    }
    out.push_back(i);
  }
  return out;
}

template <class M>
M gather(const M& m, const std::vector<std::size_t>& rows) {
  M out(static_cast<Eigen::Index>(rows.size()), m.cols());
  for (std::size_t j = 0; j < rows.size(); ++j) out.row(static_cast<Eigen::Index>(j)) = m.row(static_cast<Eigen::Index>(rows[j]));
  return out;
}

// A parametric weight function's problem on a set of rows.
struct Problem {
  WeightFunctionKind kind;
  Stack stack;
  RowMatrix phi;                              // softmax_linear: n x B
  Matrix ut;                                  // mlp: Q x n
  const mlp::Model<double>* shape = nullptr;  // mlp
  double lambda0 = 0;

  double objective(const Vector& theta, Vector* g, const Loss& loss, double lambda) const {
    if (kind == WeightFunctionKind::SoftmaxLinear) return softmax_linear_objective(stack, phi, loss, lambda, lambda0, theta, g);
    return mlp_objective(stack, ut, loss, lambda, lambda0, *shape, theta, g);
  }
  Matrix weights(const Vector& theta) const {
    if (kind == WeightFunctionKind::SoftmaxLinear) {
      const Eigen::Map<const Matrix> Theta(theta.data(), stack.K, phi.cols());
      return softmax_rows(phi * Theta.transpose());
    }
    mlp::Model<double> net = *shape;
    unflatten(theta, net);
    return mlp::forward<double>(net, ut).transpose();
  }
  Problem subset(const std::vector<std::size_t>& rows) const {
    Problem p = *this;
    p.stack = stack.subset(rows);
    if (kind == WeightFunctionKind::SoftmaxLinear) {
      p.phi = gather(phi, rows);
    } else {
      const Matrix u = gather(Matrix(ut.transpose()), rows);
      p.ut = u.transpose();
    }
    return p;
  }
};

// Fits along `path` (penalties, descending), each warm-started from the previous; returns the
// parameters at each penalty.
std::vector<Vector> fit_path(const Problem& p, const std::vector<double>& path, Vector theta, const LocalOptions& o, double mu0,
                             int* iterations) {
  std::vector<Vector> out;
  for (double lambda : path) {
    auto objective = [&](const Vector& x, Vector* g, const Loss& loss) { return p.objective(x, g, loss, lambda); };
    const LbfgsStats stats = minimise_smoothed(objective, o.loss, mu0, theta, o.max_iterations, o.tolerance);
    if (iterations) *iterations += stats.iterations;
    out.push_back(theta);
  }
  return out;
}

double held_out_total(const Stack& s, const Matrix& W, const Loss& loss) {
  return mean_loss(s, combine(s, W), exact(loss)) * static_cast<double>(s.rows());
}

void check_inputs(const Stack& s, const Matrix& z, const LocalOptions& o) {
  if (static_cast<std::size_t>(z.rows()) != s.rows())
    throw Error(fmt::format("the covariates have {} rows but the predictions have {}", z.rows(), s.rows()));
  if (z.cols() == 0) throw Error("the covariates have no columns");
  for (Eigen::Index i = 0; i < z.rows(); ++i)
    for (Eigen::Index q = 0; q < z.cols(); ++q)
      if (!std::isfinite(z(i, q))) throw Error(fmt::format("the covariates are not finite at row {}, column {}", i, q));
  const bool cv = o.function == WeightFunctionKind::Kernel ? o.bandwidth <= 0 : o.penalty < 0;
  if (cv && (o.folds < 2 || static_cast<std::size_t>(o.folds) * 2 > s.rows()))
    throw Error(
        fmt::format("cross-validation with {} folds needs at least {} fitting rows (there are {})", o.folds, 2 * o.folds, s.rows()));
  if (o.loss.kind == LossKind::CrossEntropy && s.kind != TaskKind::Classification)
    throw Error("cross_entropy needs class probabilities (a classification task)");
  if (o.loss.kind != LossKind::CrossEntropy && s.kind == TaskKind::Classification && o.loss.kind != LossKind::Squared)
    throw Error(fmt::format("loss '{}' is for regression values; combine class probabilities with cross_entropy or squared (Brier)",
                            loss_name(o.loss.kind)));
}

// The value minimising the cross-validated risk (the first, i.e. the most regularised, on ties).
std::size_t best_point(const std::vector<CvPoint>& cv) {
  std::size_t best = 0;
  for (std::size_t g = 1; g < cv.size(); ++g)
    if (cv[g].risk < cv[best].risk) best = g;
  return best;
}

// The covariates standardised (their mean and scale kept in w).
Matrix standardised(const Matrix& z, WeightFunction& w) {
  standardisation(z, w.mean, w.scale);
  Matrix u(z.rows(), z.cols());
  for (Eigen::Index q = 0; q < z.cols(); ++q) u.col(q) = (z.col(q).array() - w.mean(q)) / w.scale(q);
  return u;
}

// Kernel: fold f's held-out loss totals at every bandwidth of the grid.
std::vector<double> kernel_fold(const Stack& s, const Matrix& u, const std::vector<std::vector<std::size_t>>& folds, std::size_t f,
                                const LocalOptions& o) {
  const auto& held = folds[f];
  const auto train = complement(s.rows(), held);
  const Stack ho = s.subset(held), tr = s.subset(train);
  const Matrix u_train = gather(u, train), u_held = gather(u, held);
  std::vector<double> out;
  for (double h : o.bandwidth_grid) out.push_back(held_out_total(ho, kernel_weights(tr, u_train, u_held, h, o.loss), o.loss));
  return out;
}

// A parametric weight function's whole problem: the basis (or network) built from every fitting
// row, the starting point, the smoothing start and the penalty grid from the largest down.
struct Parametric {
  Problem full;
  Vector theta0;
  double mu0 = 0;
  std::vector<double> grid;
};

// Fills w's basis (softmax_linear) or standardisation and network (mlp); `full.shape` points at w.net.
Parametric parametric_problem(const Stack& s, const Matrix& z, const LocalOptions& o, WeightFunction& w) {
  Parametric p;
  p.full.kind = o.function;
  p.full.stack = s;
  p.full.lambda0 = o.intercept_penalty;
  if (o.function == WeightFunctionKind::SoftmaxLinear) {
    w.basis = fit_basis(o.basis, z, o.knots, o.features, o.fourier_bandwidth, o.seed);
    p.full.phi = w.basis.expand(z);
    p.theta0 = Vector::Zero(static_cast<Eigen::Index>(s.K) * p.full.phi.cols());
  } else {
    p.full.ut = standardised(z, w).transpose();
    w.net = make_weight_net(static_cast<int>(z.cols()), o.hidden, s.K, o.seed);
    p.full.shape = &w.net;
    p.theta0 = flatten(w.net);
  }
  p.mu0 = initial_smoothing(s);
  p.grid = o.penalty_grid;
  std::sort(p.grid.begin(), p.grid.end(), std::greater<>());
  return p;
}

// Parametric: fold f's held-out loss totals along the penalty path (warm-started, largest first).
std::vector<double> parametric_fold(const Parametric& p, const std::vector<std::vector<std::size_t>>& folds, std::size_t f,
                                    const LocalOptions& o) {
  const Problem train = p.full.subset(complement(p.full.stack.rows(), folds[f])), held = p.full.subset(folds[f]);
  std::vector<double> out;
  for (const Vector& theta : fit_path(train, p.grid, p.theta0, o, p.mu0, nullptr))
    out.push_back(held_out_total(held.stack, held.weights(theta), o.loss));
  return out;
}

// The mean held-out risk at each grid value: the folds' totals summed in fold order, over N.
std::vector<CvPoint> cv_points(const std::vector<double>& values, const std::vector<std::vector<double>>& totals, std::size_t folds,
                               std::size_t rows) {
  if (totals.size() != folds) throw Error(fmt::format("internal: {} fold results for {} folds", totals.size(), folds));
  std::vector<CvPoint> out;
  for (std::size_t g = 0; g < values.size(); ++g) {
    double total = 0;
    for (const auto& t : totals) {
      if (t.size() != values.size())
        throw Error(fmt::format("internal: a fold result has {} values for a grid of {}", t.size(), values.size()));
      total += t[g];
    }
    out.push_back({values[g], total / static_cast<double>(rows)});
  }
  return out;
}

template <class Fold>
std::vector<std::vector<double>> run_locally(std::size_t folds, const Fold& fold) {
  std::vector<std::vector<double>> totals(folds);
  caulk::parallel_for(folds, [&](std::size_t f) { totals[f] = fold(f); });
  return totals;
}

}  // namespace

bool cross_validates(const LocalOptions& o) { return o.function == WeightFunctionKind::Kernel ? o.bandwidth <= 0 : o.penalty < 0; }

LocalFit fit_local_average(const Stack& s, const Matrix& z, const LocalOptions& o, const FoldRunner& run_folds) {
  check_inputs(s, z, o);
  LocalFit out;
  WeightFunction& w = out.function;
  const bool cv = cross_validates(o);
  const auto folds = cv ? make_folds(s.rows(), o.folds, o.seed) : std::vector<std::vector<std::size_t>>{};
  if (o.function == WeightFunctionKind::Kernel) {
    const Matrix u = standardised(z, w);
    out.chosen = o.bandwidth;
    if (cv) {
      const auto totals =
          run_folds ? run_folds(folds.size()) : run_locally(folds.size(), [&](std::size_t f) { return kernel_fold(s, u, folds, f, o); });
      out.cv = cv_points(o.bandwidth_grid, totals, folds.size(), s.rows());
      out.chosen = out.cv[best_point(out.cv)].value;
    }
    w.bandwidth = out.chosen;
    w.fit_u = u;
    w.fit_stack = s;
    out.fit_risk = held_out_total(s, kernel_weights(s, u, u, w.bandwidth, o.loss), o.loss) / static_cast<double>(s.rows());
  } else {
    const Parametric p = parametric_problem(s, z, o, w);
    std::vector<double> path{o.penalty};
    if (cv) {
      const auto totals =
          run_folds ? run_folds(folds.size()) : run_locally(folds.size(), [&](std::size_t f) { return parametric_fold(p, folds, f, o); });
      out.cv = cv_points(p.grid, totals, folds.size(), s.rows());
      const std::size_t best = best_point(out.cv);
      path.assign(p.grid.begin(), p.grid.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    out.chosen = path.back();
    const Vector theta = fit_path(p.full, path, p.theta0, o, p.mu0, &out.iterations).back();
    if (o.function == WeightFunctionKind::SoftmaxLinear)
      w.theta = Eigen::Map<const Matrix>(theta.data(), s.K, p.full.phi.cols());
    else
      unflatten(theta, w.net);
    out.fit_risk = held_out_total(s, p.full.weights(theta), o.loss) / static_cast<double>(s.rows());
  }
  w.kind = o.function;
  w.models = s.models;
  w.task = s.kind;
  w.outputs = s.C;
  w.loss = exact(o.loss);
  w.penalty = out.chosen;
  return out;
}

std::vector<double> cross_validation_fold(const Stack& s, const Matrix& z, const LocalOptions& o, std::size_t fold) {
  check_inputs(s, z, o);
  if (!cross_validates(o)) throw Error("these options give the penalty (or bandwidth): there is no cross-validation to run");
  const auto folds = make_folds(s.rows(), o.folds, o.seed);
  if (fold >= folds.size()) throw Error(fmt::format("fold {} of a {}-fold cross-validation", fold, folds.size()));
  WeightFunction w;
  if (o.function == WeightFunctionKind::Kernel) return kernel_fold(s, standardised(z, w), folds, fold, o);
  return parametric_fold(parametric_problem(s, z, o, w), folds, fold, o);
}

}  // namespace caulk::avg
