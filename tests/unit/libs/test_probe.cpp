// The linear probe behind the demo's ground truth (libs/probe): its gradient against finite
// differences, and a fit that separates separable classes and reaches a stationary point.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "caulk/probe/linear_probe.hpp"

namespace caulk::probe {
namespace {

TEST(LinearProbe, GradientMatchesFiniteDifferences) {
  std::mt19937 rng(4);
  std::normal_distribution<double> normal;
  Matrix X(30, 4);
  for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = normal(rng);
  std::vector<int> y(30);
  for (int i = 0; i < 30; ++i) y[static_cast<std::size_t>(i)] = i % 3;
  Vector p(3 * 4 + 3);
  for (Eigen::Index i = 0; i < p.size(); ++i) p[i] = 0.3 * normal(rng);
  Vector g;
  linear_probe_objective(X, y, 3, 0.05, p, g);
  for (Eigen::Index k = 0; k < p.size(); ++k) {
    Vector plus = p, minus = p, unused;
    plus[k] += 1e-6;
    minus[k] -= 1e-6;
    const double numeric =
        (linear_probe_objective(X, y, 3, 0.05, plus, unused) - linear_probe_objective(X, y, 3, 0.05, minus, unused)) / 2e-6;
    EXPECT_NEAR(g[k], numeric, 1e-7) << "parameter " << k;
  }
}

TEST(LinearProbe, FitsSeparableClassesAndReachesTheOptimum) {
  // Three well separated blobs: the probe classifies them all, and its gradient vanishes.
  Matrix F(60, 2);
  std::vector<int> y(60);
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0.0, 0.3);
  const double centres[3][2] = {{3, 0}, {-3, 0}, {0, 4}};
  for (int i = 0; i < 60; ++i) {
    const int c = i % 3;
    y[static_cast<std::size_t>(i)] = c;
    F(i, 0) = centres[c][0] + noise(rng);
    F(i, 1) = centres[c][1] + noise(rng);
  }
  const LinearProbe probe = fit_linear_probe(MatrixView::borrow(F), y, 3);
  EXPECT_DOUBLE_EQ(probe.accuracy(MatrixView::borrow(F), y), 1.0);
  Vector packed(3 * 2 + 3), g;
  Eigen::Map<Matrix>(packed.data(), 3, 2) = probe.weights;
  packed.tail(3) = probe.bias;
  linear_probe_objective(F, y, 3, 1e-3, packed, g);
  EXPECT_LT(g.norm(), 1e-6);
}

}  // namespace
}  // namespace caulk::probe
