// Simplex-constrained weights against independent solutions: enumeration of every support (the
// KKT system of each face, solved directly), fine grids over the simplex, and hand formulas.
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <cmath>
#include <limits>

#include "averagers/algorithms/simplex.hpp"
#include "caulk/error.hpp"
#include "test_support.hpp"

using namespace caulk;
using namespace caulk::avg;
using caulk::avg::testing::Draw;

namespace {

// min 0.5 w'Hw - c'w over the simplex by trying every support S: the equality-constrained optimum
// on S (KKT with sum w_S = 1), kept when non-negative; the best feasible one wins.
Vector enumerate_supports(const Matrix& H, const Vector& c) {
  const int K = static_cast<int>(c.size());
  Vector best;
  double best_value = std::numeric_limits<double>::infinity();
  for (int mask = 1; mask < (1 << K); ++mask) {
    std::vector<int> S;
    for (int k = 0; k < K; ++k)
      if (mask & (1 << k)) S.push_back(k);
    const int n = static_cast<int>(S.size());
    Matrix A = Matrix::Zero(n + 1, n + 1);
    Vector b = Vector::Zero(n + 1);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) A(i, j) = H(S[i], S[j]);
      A(i, n) = A(n, i) = 1;
      b(i) = c(S[i]);
    }
    b(n) = 1;
    Eigen::FullPivLU<Matrix> lu(A);
    if (!lu.isInvertible()) continue;
    const Vector x = lu.solve(b);
    Vector w = Vector::Zero(K);
    bool feasible = true;
    for (int i = 0; i < n; ++i) {
      w(S[i]) = x(i);
      feasible = feasible && x(i) >= -1e-12;
    }
    if (!feasible) continue;
    const double value = 0.5 * w.dot(H * w) - c.dot(w);
    if (value < best_value) {
      best_value = value;
      best = w;
    }
  }
  return best;
}

Matrix random_psd(int K, int rank, Draw& d) {
  Matrix A(rank, K);
  for (Eigen::Index i = 0; i < A.rows(); ++i)
    for (Eigen::Index j = 0; j < A.cols(); ++j) A(i, j) = d.normal();
  return A.transpose() * A;
}

TEST(Simplex, ProjectionMatchesAFineGrid) {
  Draw d(1);
  for (int trial = 0; trial < 20; ++trial) {
    Vector v(3);
    v << d.normal(), d.normal(), d.normal();
    const Vector w = project_to_simplex(v);
    EXPECT_NEAR(w.sum(), 1, 1e-14);
    EXPECT_GE(w.minCoeff(), 0);
    double best = std::numeric_limits<double>::infinity();
    for (int a = 0; a <= 400; ++a)
      for (int b = 0; a + b <= 400; ++b) {
        Vector u(3);
        u << a / 400.0, b / 400.0, (400 - a - b) / 400.0;
        best = std::min(best, (u - v).squaredNorm());
      }
    EXPECT_LE((w - v).squaredNorm(), best + 1e-12);
    EXPECT_GE((w - v).squaredNorm(), best - 1e-4);  // the grid is within 1/400 of w
  }
}

TEST(Simplex, ActiveSetMatchesEnumerationOfSupports) {
  Draw d(2);
  for (int K : {2, 3, 5, 7}) {
    for (int trial = 0; trial < 25; ++trial) {
      const Matrix H = random_psd(K, K + 2, d);
      Vector c(K);
      for (int k = 0; k < K; ++k) c(k) = 2 * d.normal();
      const Vector w = simplex_qp(H, c).w;
      const Vector expected = enumerate_supports(H, c);
      ASSERT_EQ(expected.size(), K);
      EXPECT_LE((w - expected).cwiseAbs().maxCoeff(), 1e-8) << "K " << K << " trial " << trial << "\n"
                                                            << w.transpose() << "\n"
                                                            << expected.transpose();
    }
  }
}

TEST(Simplex, CollinearModelsStillReachTheOptimalValue) {
  // Two identical models: H is singular and the optimum is a segment; the value must be optimal.
  Draw d(3);
  Matrix F(30, 3);
  Vector y(30);
  for (int i = 0; i < 30; ++i) {
    y(i) = d.normal();
    F(i, 0) = y(i) + 0.3 * d.normal();
    F(i, 1) = F(i, 0);
    F(i, 2) = y(i) + 0.5 * d.normal();
  }
  const Matrix H = 2 * F.transpose() * F;
  const Vector c = 2 * F.transpose() * y;
  const Vector w = simplex_qp(H, c).w;
  double best = std::numeric_limits<double>::infinity();
  for (int a = 0; a <= 1000; ++a) {  // models 0 and 1 are one model: a grid over (w0 + w1, w2)
    Vector u(3);
    u << a / 1000.0, 0, 1 - a / 1000.0;
    best = std::min(best, (y - F * u).squaredNorm());
  }
  EXPECT_LE((y - F * w).squaredNorm(), best + 1e-9);
  EXPECT_NEAR(w.sum(), 1, 1e-14);
}

TEST(Mallows, WeightsMatchTheDirectQuadraticProgram) {
  Draw d(4);
  const int N = 40;
  Matrix P(N, 3), Y(N, 1);
  for (int i = 0; i < N; ++i) {
    Y(i, 0) = d.normal();
    for (int k = 0; k < 3; ++k) P(i, k) = Y(i, 0) + (0.4 + 0.2 * k) * d.normal();
  }
  std::vector<Matrix> cols{P.col(0), P.col(1), P.col(2)};
  const Stack s = make_stack(TaskKind::Regression, {"a", "b", "c"}, {&cols[0], &cols[1], &cols[2]}, &Y, nullptr, "train");
  const std::vector<double> params{2, 9, 5};
  const MallowsFit fit = mallows_weights(s, params);
  // sigma^2 from the largest model (b, 9 parameters): RSS / (N - 9).
  EXPECT_EQ(fit.largest, 1u);
  EXPECT_NEAR(fit.sigma2, (Y.col(0) - P.col(1)).squaredNorm() / (N - 9), 1e-14);
  // ||y - P w||^2 + 2 sigma^2 k'w = w'(P'P)w - 2 (P'y - sigma^2 k)'w + const.
  Vector k(3);
  k << 2, 9, 5;
  const Vector expected = enumerate_supports(2 * P.transpose() * P, 2 * (P.transpose() * Y.col(0) - fit.sigma2 * k));
  EXPECT_LE((fit.w - expected).cwiseAbs().maxCoeff(), 1e-9);
  // The penalty matters: the criterion at the Mallows weights beats the least-squares weights.
  const Vector ls = enumerate_supports(2 * P.transpose() * P, 2 * P.transpose() * Y.col(0));
  auto criterion = [&](const Vector& w) { return (Y.col(0) - P * w).squaredNorm() + 2 * fit.sigma2 * k.dot(w); };
  EXPECT_LE(criterion(fit.w), criterion(ls) + 1e-12);
  EXPECT_THROW(mallows_weights(s, {1, 2}), caulk::Error);
  EXPECT_THROW(mallows_weights(s, {1, 40, 2}), caulk::Error);  // N - p_M = 0: no sigma^2
}

TEST(Jackknife, WeightsMatchTheDirectQuadraticProgramOverTwoOutputs) {
  const Stack s = avg::testing::random_regression(35, 4, 2, 5);
  // With two outputs the criterion sums over both: H = 2 sum_c F_c'F_c.
  Matrix H = Matrix::Zero(4, 4);
  Vector c = Vector::Zero(4);
  for (int col = 0; col < 2; ++col) {
    Matrix Fc(35, 4);
    for (int k = 0; k < 4; ++k) Fc.col(k) = s.model(k).col(col);
    H += 2 * Fc.transpose() * Fc;
    c += 2 * Fc.transpose() * s.Y.col(col);
  }
  EXPECT_LE((jackknife_weights(s) - enumerate_supports(H, c)).cwiseAbs().maxCoeff(), 1e-9);
}

// The best constant weights by a grid of step 1/steps over the 3-simplex.
double grid_minimum(const Stack& s, const Loss& loss, int steps) {
  double best = std::numeric_limits<double>::infinity();
  for (int a = 0; a <= steps; ++a)
    for (int b = 0; a + b <= steps; ++b) {
      Vector w(3);
      w << double(a) / steps, double(b) / steps, double(steps - a - b) / steps;
      best = std::min(best, mean_loss(s, combine_constant(s, w), loss));
    }
  return best;
}

TEST(GlobalWeights, EveryLossReachesTheGridMinimum) {
  const Stack reg = avg::testing::random_regression(150, 3, 1, 6);
  const Stack cls = avg::testing::random_classification(150, 3, 3, 7);
  for (LossKind k : {LossKind::Squared, LossKind::Absolute, LossKind::Huber, LossKind::Pinball, LossKind::CrossEntropy}) {
    Loss loss;
    loss.kind = k;
    loss.tau = 0.7;
    const Stack& s = k == LossKind::CrossEntropy ? cls : reg;
    const ConstantFit fit = fit_constant_weights(s, loss);
    EXPECT_NEAR(fit.w.sum(), 1, 1e-12);
    EXPECT_GE(fit.w.minCoeff(), 0);
    EXPECT_NEAR(fit.risk, mean_loss(s, combine_constant(s, fit.w), loss), 1e-14);
    const double grid = grid_minimum(s, loss, 200);
    EXPECT_LE(fit.risk, grid + 1e-9) << loss_name(k);
    EXPECT_GE(fit.risk, grid - 3e-3 * grid) << loss_name(k);  // a grid point lies within 1/200 of the optimum
  }
}

}  // namespace
