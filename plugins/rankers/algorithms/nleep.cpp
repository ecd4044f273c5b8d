// N-LEEP: LEEP on the posterior of a Gaussian mixture fitted to the PCA-reduced features, the
// mixture's components standing in for the source head's classes. PCA, k-means++ and EM follow
// scikit-learn's PCA(n_components=0.8) and GaussianMixture(covariance_type="full",
// init_params="kmeans", reg_covar=1e-6, tol=1e-3, max_iter=100), seeded.
#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>

#include "caulk/parallel.hpp"
#include "caulk/transferability/feature_stats.hpp"
#include "rankers/algorithms/memory_estimates.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace caulk::rank {

namespace {

// Squared Euclidean distance between every row of X and every row of centers (N x K).
Matrix squared_distances(const Matrix& X, const Matrix& centers) {
  Matrix d = (-2.0 * X) * centers.transpose();
  d.colwise() += X.rowwise().squaredNorm();
  d.rowwise() += centers.rowwise().squaredNorm().transpose();
  return d.cwiseMax(0.0);
}

// k-means++ seeding with scikit-learn's greedy variant (2 + floor(ln K) candidates per centre,
// the one that lowers the potential most wins).
Matrix kmeans_plus_plus(const Matrix& X, int K, std::mt19937_64& rng) {
  const Eigen::Index N = X.rows();
  Matrix centers(K, X.cols());
  std::uniform_int_distribution<Eigen::Index> first(0, N - 1);
  centers.row(0) = X.row(first(rng));
  Vector closest = (X.rowwise() - centers.row(0)).rowwise().squaredNorm();
  const int trials = 2 + static_cast<int>(std::log(static_cast<double>(K)));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int c = 1; c < K; ++c) {
    // Candidates drawn with probability proportional to the squared distance to the nearest centre.
    std::vector<double> cumulative(static_cast<std::size_t>(N));
    double running = 0;
    for (Eigen::Index i = 0; i < N; ++i) cumulative[static_cast<std::size_t>(i)] = running += closest[i];
    Eigen::Index best = -1;
    double best_potential = std::numeric_limits<double>::infinity();
    Vector best_closest;
    for (int t = 0; t < trials; ++t) {
      const double target = unit(rng) * running;
      auto at = std::upper_bound(cumulative.begin(), cumulative.end(), target);
      const Eigen::Index candidate = std::min<Eigen::Index>(at - cumulative.begin(), N - 1);
      Vector with = (X.rowwise() - X.row(candidate)).rowwise().squaredNorm();
      with = with.cwiseMin(closest);
      const double potential = with.sum();
      if (potential < best_potential) {
        best_potential = potential;
        best = candidate;
        best_closest = std::move(with);
      }
    }
    centers.row(c) = X.row(best);
    closest = std::move(best_closest);
  }
  return centers;
}

// Lloyd's iterations from k-means++ seeds; returns the hard assignment.
std::vector<int> kmeans(const Matrix& X, int K, std::mt19937_64& rng) {
  const Eigen::Index N = X.rows();
  Matrix centers = kmeans_plus_plus(X, K, rng);
  // scikit-learn's tolerance: 1e-4 times the mean variance of the features.
  const Eigen::RowVectorXd mean = X.colwise().mean();
  const double tolerance = 1e-4 * (X.rowwise() - mean).array().square().colwise().sum().mean() / static_cast<double>(N);
  std::vector<int> assignment(static_cast<std::size_t>(N), -1);
  for (int iteration = 0; iteration < 300; ++iteration) {
    const Matrix d = squared_distances(X, centers);
    bool changed = false;
    for (Eigen::Index i = 0; i < N; ++i) {
      Eigen::Index j = 0;
      d.row(i).minCoeff(&j);
      if (assignment[static_cast<std::size_t>(i)] != static_cast<int>(j)) changed = true;
      assignment[static_cast<std::size_t>(i)] = static_cast<int>(j);
    }
    Matrix updated = Matrix::Zero(K, X.cols());
    Vector counts = Vector::Zero(K);
    for (Eigen::Index i = 0; i < N; ++i) {
      updated.row(assignment[static_cast<std::size_t>(i)]) += X.row(i);
      counts[assignment[static_cast<std::size_t>(i)]] += 1;
    }
    for (int c = 0; c < K; ++c) updated.row(c) = counts[c] > 0 ? (updated.row(c) / counts[c]).eval() : centers.row(c);
    const double shift = (updated - centers).squaredNorm();
    centers = std::move(updated);
    if (!changed || shift <= tolerance) break;
  }
  return assignment;
}

struct Mixture {
  Vector weights;                            // K
  Matrix means;                              // K x k
  std::vector<Eigen::LLT<Matrix>> cholesky;  // of each covariance
};

// A component's covariance that reg_covar could not make positive definite: it collapsed onto
// fewer points than dimensions, and reg_covar is an absolute ridge (as scikit-learn's), negligible
// against features of a large scale. Says so with the numbers, and what to set.
std::runtime_error singular_component(const Matrix& X, Eigen::Index component, double samples, double reg_covar) {
  const Eigen::RowVectorXd mean = X.colwise().mean();
  const double variance = (X.rowwise() - mean).array().square().colwise().sum().maxCoeff() / static_cast<double>(X.rows());
  char text[1024];
  std::snprintf(text, sizeof text,
                "N-LEEP: the covariance of mixture component %ld (about %.3g samples in %ld PCA dimensions) is not positive "
                "definite even with reg_covar = %.3g added: the component collapsed onto too few points, and reg_covar is an "
                "absolute ridge while the features' largest PCA variance is %.3g. Set reg_covar relative to that scale "
                "(e.g. reg_covar = %.3g, 1e-6 x that variance: the score of the features divided by its square root with the "
                "default reg_covar), divide the features by a constant, or lower components_per_class",
                static_cast<long>(component), samples, static_cast<long>(X.cols()), reg_covar, variance,
                std::max(1e-6 * variance, 10 * reg_covar));
  return std::runtime_error(text);
}

// M-step: weights, means and regularised full covariances from responsibilities (N x K).
Mixture maximise(const Matrix& X, const Matrix& resp, double reg_covar) {
  const Eigen::Index N = X.rows(), K = resp.cols();
  Mixture m;
  const Vector nk = resp.colwise().sum().transpose().array() + 10 * std::numeric_limits<double>::epsilon();
  m.weights = nk / static_cast<double>(N);
  m.means = (resp.transpose() * X).array().colwise() / nk.array();
  m.cholesky.resize(static_cast<std::size_t>(K));
  std::vector<bool> failed(static_cast<std::size_t>(K), false);
  parallel_for(static_cast<std::size_t>(K), [&](std::size_t j) {
    const auto c = static_cast<Eigen::Index>(j);
    const Matrix centred = X.rowwise() - m.means.row(c);
    Matrix cov = (centred.array().colwise() * resp.col(c).array()).matrix().transpose() * centred / nk[c];
    cov.diagonal().array() += reg_covar;
    m.cholesky[j].compute(cov);
    if (m.cholesky[j].info() != Eigen::Success) failed[j] = true;
  });
  for (Eigen::Index c = 0; c < K; ++c)
    if (failed[static_cast<std::size_t>(c)]) throw singular_component(X, c, nk[c], reg_covar);
  return m;
}

// E-step: log p(x, component) for every row and component (N x K).
Matrix weighted_log_prob(const Matrix& X, const Mixture& m) {
  const Eigen::Index k = X.cols(), K = m.means.rows();
  Matrix out(X.rows(), K);
  parallel_for(static_cast<std::size_t>(K), [&](std::size_t j) {
    const auto c = static_cast<Eigen::Index>(j);
    const Matrix& L = m.cholesky[j].matrixLLT();
    const double log_det = 2 * L.diagonal().array().log().sum();
    // Mahalanobis distances: || L^-1 (x - mu) ||^2 for every row at once.
    Matrix centred = (X.rowwise() - m.means.row(c)).transpose();  // k x N
    m.cholesky[j].matrixL().solveInPlace(centred);
    out.col(c) = (-0.5 * (static_cast<double>(k) * std::log(2 * std::numbers::pi) + log_det) + std::log(m.weights[c])) -
                 0.5 * centred.colwise().squaredNorm().transpose().array();
  });
  return out;
}

// Row-wise log-sum-exp; turns `log_prob` into log responsibilities in place.
Vector normalise_rows(Matrix& log_prob) {
  Vector lse(log_prob.rows());
  for (Eigen::Index i = 0; i < log_prob.rows(); ++i) {
    const double top = log_prob.row(i).maxCoeff();
    lse[i] = top + std::log((log_prob.row(i).array() - top).exp().sum());
    log_prob.row(i).array() -= lse[i];
  }
  return lse;
}

}  // namespace

NLeepResult nleep(const FeatureStats& stats, const std::vector<int>& labels, int num_classes, const NLeepOptions& options) {
  const MatrixView& F = stats.features();
  check_labels(F, labels, num_classes, "N-LEEP");
  if (!(options.variance_kept > 0 && options.variance_kept <= 1)) throw std::invalid_argument("N-LEEP: variance_kept must be in (0, 1]");
  if (options.components_per_class < 1) throw std::invalid_argument("N-LEEP: components_per_class must be at least 1");
  if (!(options.reg_covar >= 0)) throw std::invalid_argument("N-LEEP: reg_covar must be non-negative");
  const std::size_t N = F.rows();
  if (N < 2) throw std::invalid_argument("N-LEEP needs at least two rows");

  // PCA: the fewest leading components whose explained variance ratio sums to more than the
  // threshold (scikit-learn: searchsorted(cumsum, threshold, side="right") + 1).
  const SymmetricEigen& e = stats.scatter_eigen();
  const Eigen::Index D = e.values.size();
  const Vector variance = e.values.reverse().cwiseMax(0.0);  // descending
  const double total = variance.sum();
  Eigen::Index dims = 1;
  if (total > 0) {
    double cumulative = 0;
    Eigen::Index below = 0;  // components whose cumulative ratio is <= the threshold
    for (Eigen::Index i = 0; i < D; ++i) {
      cumulative += variance[i] / total;
      if (cumulative <= options.variance_kept) below = i + 1;
    }
    dims = std::min<Eigen::Index>(below + 1, D);
  }
  const Matrix basis = e.vectors.rightCols(dims).rowwise().reverse();
  const Matrix X = project_rows(F, stats.moments().mean, basis);

  int present = 0;
  {
    std::vector<bool> seen(static_cast<std::size_t>(num_classes), false);
    for (int y : labels) seen[static_cast<std::size_t>(y)] = true;
    for (bool s : seen) present += s ? 1 : 0;
  }
  const int K = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(options.components_per_class * present), N));

  if (options.check_memory)
    options.check_memory(nleep_mixture_bytes(N, static_cast<std::size_t>(dims), static_cast<std::size_t>(K), parallel_width()),
                         "the Gaussian mixture (" + std::to_string(K) + " components in " + std::to_string(dims) + " PCA dimensions over " +
                             std::to_string(N) + " rows)");
  std::mt19937_64 rng(options.seed);
  const std::vector<int> assignment = kmeans(X, K, rng);
  Matrix resp = Matrix::Zero(static_cast<Eigen::Index>(N), K);
  for (std::size_t i = 0; i < N; ++i) resp(static_cast<Eigen::Index>(i), assignment[i]) = 1;

  NLeepResult out;
  out.pca_dims = static_cast<std::size_t>(dims);
  out.components = K;
  Mixture mixture = maximise(X, resp, options.reg_covar);
  double lower_bound = -std::numeric_limits<double>::infinity();
  for (int iteration = 1; iteration <= options.max_iterations; ++iteration) {
    Matrix log_resp = weighted_log_prob(X, mixture);
    const double previous = lower_bound;
    lower_bound = normalise_rows(log_resp).mean();
    mixture = maximise(X, log_resp.array().exp().matrix(), options.reg_covar);
    out.em_iterations = iteration;
    if (std::abs(lower_bound - previous) < options.tolerance) {
      out.converged = true;
      break;
    }
  }
  // The posterior of the final mixture plays theta, the source head's probabilities.
  Matrix theta = weighted_log_prob(X, mixture);
  normalise_rows(theta);
  theta = theta.array().exp().matrix();
  out.score = leep(MatrixView::borrow(theta), labels, num_classes);
  return out;
}

}  // namespace caulk::rank
