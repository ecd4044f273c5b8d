// LogME against an independent computation: the MacKay fixed point and the evidence written
// straight from their definitions with explicit inverses and log-determinants of
// A = alpha I + beta F^T F (no SVD, no eigendecomposition), on small problems.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <numbers>
#include <random>

#include "caulk/parallel.hpp"
#include "caulk/transferability/logme.hpp"

namespace caulk::rank {
namespace {

struct BruteForce {
  double evidence = 0;
  Vector weights;
};

// One target column, following methods.md §1 with matrices: t = alpha / beta,
// m = (F^T F + t I)^-1 F^T y, gamma = D - t tr((F^T F + t I)^-1), m2 = ||m||^2,
// res2 = ||y - F m||^2, then alpha, beta updated; the evidence uses the last m2, res2 and
// the new alpha, beta. `log_det_over_rows` uses log det(alpha I_N + beta F F^T) (the reference's
// N <= D convention: only the N non-zero eigenvalues of F^T F count).
BruteForce brute_force(const Matrix& F, const Vector& y, bool log_det_over_rows) {
  const double N = static_cast<double>(F.rows()), D = static_cast<double>(F.cols());
  const Matrix FtF = F.transpose() * F;
  const Matrix I = Matrix::Identity(F.cols(), F.cols());
  double alpha = 1, beta = 1, t = 1, m2 = 0, res2 = 0;
  Vector m;
  for (int it = 0; it < 11; ++it) {
    t = alpha / beta;
    const Matrix inv = (FtF + t * I).inverse();
    m = inv * F.transpose() * y;
    const double gamma = D - t * inv.trace();
    m2 = m.squaredNorm();
    res2 = (y - F * m).squaredNorm();
    alpha = gamma / (m2 + 1e-5);
    beta = (N - gamma) / (res2 + 1e-5);
    if (std::abs(alpha / beta - t) / t <= 1e-3) break;
  }
  double log_det;
  if (log_det_over_rows) {
    const Matrix A = alpha * Matrix::Identity(F.rows(), F.rows()) + beta * F * F.transpose();
    log_det = std::log(A.determinant());
  } else {
    const Matrix A = alpha * I + beta * FtF;
    log_det = std::log(A.determinant());
  }
  BruteForce out;
  out.evidence = (D / 2 * std::log(alpha) + N / 2 * std::log(beta) - 0.5 * log_det - beta / 2 * res2 - alpha / 2 * m2 -
                  N / 2 * std::log(2 * std::numbers::pi)) /
                 N;
  out.weights = m;
  return out;
}

Matrix random_features(int rows, int cols, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Matrix F(rows, cols);
  for (int c = 0; c < cols; ++c)
    for (int r = 0; r < rows; ++r) F(r, c) = normal(rng);
  return F;
}

// Labels that depend on the features, so the evidence is not trivial.
std::vector<int> labels_for(const Matrix& F, int classes, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 0.5);
  std::vector<int> y(static_cast<std::size_t>(F.rows()));
  for (Eigen::Index i = 0; i < F.rows(); ++i) {
    const double v = F(i, 0) + 0.5 * F(i, 1 % F.cols()) + noise(rng);
    y[static_cast<std::size_t>(i)] = std::clamp(static_cast<int>(std::floor(v + classes / 2.0)), 0, classes - 1);
  }
  return y;
}

void expect_matches_brute_force(const Matrix& F, const std::vector<int>& y, int classes, bool log_det_over_rows) {
  const LogMEResult r = logme_classification(MatrixView::borrow(F), y, classes);
  ASSERT_EQ(r.evidence.size(), static_cast<std::size_t>(classes));
  double mean = 0;
  for (int c = 0; c < classes; ++c) {
    Vector yc(F.rows());
    for (Eigen::Index i = 0; i < F.rows(); ++i) yc[i] = y[static_cast<std::size_t>(i)] == c ? 1.0 : 0.0;
    const BruteForce b = brute_force(F, yc, log_det_over_rows);
    EXPECT_NEAR(r.evidence[static_cast<std::size_t>(c)], b.evidence, 1e-8 * std::abs(b.evidence)) << "class " << c;
    EXPECT_LE((r.weights.row(c).transpose() - b.weights).norm(), 1e-7 * (1 + b.weights.norm())) << "class " << c;
    mean += b.evidence;
  }
  EXPECT_NEAR(r.score, mean / classes, 1e-8 * std::abs(mean / classes));
}

TEST(LogME, MatchesExplicitEvidenceWhenRowsExceedDimensions) {
  const Matrix F = random_features(80, 7, 1);
  expect_matches_brute_force(F, labels_for(F, 3, 2), 3, false);
}

TEST(LogME, MatchesExplicitEvidenceWhenDimensionsExceedRows) {
  // N <= D: the thin SVD route; the log-determinant covers the N non-zero eigenvalues only.
  const Matrix F = random_features(12, 30, 3);
  expect_matches_brute_force(F, labels_for(F, 2, 4), 2, true);
}

TEST(LogME, RankDeficientFeaturesKeepNumericallyZeroEigenvalues) {
  // Column 5 = column 0 + column 1 and column 6 = 2 * column 2: F^T F is singular; each zero
  // eigenvalue contributes log(alpha) to the log-determinant, as the explicit formula does.
  Matrix F = random_features(90, 7, 5);
  F.col(5) = F.col(0) + F.col(1);
  F.col(6) = 2 * F.col(2);
  const std::vector<int> y = labels_for(F, 3, 6);
  const LogMEResult r = logme_classification(MatrixView::borrow(F), y, 3);
  for (int c = 0; c < 3; ++c) {
    Vector yc(F.rows());
    for (Eigen::Index i = 0; i < F.rows(); ++i) yc[i] = y[static_cast<std::size_t>(i)] == c ? 1.0 : 0.0;
    // det(alpha I + beta F^T F) is well conditioned (alpha > 0), so the brute force stays exact.
    const BruteForce b = brute_force(F, yc, false);
    EXPECT_NEAR(r.evidence[static_cast<std::size_t>(c)], b.evidence, 1e-7 * std::abs(b.evidence)) << "class " << c;
    EXPECT_TRUE(std::isfinite(r.evidence[static_cast<std::size_t>(c)]));
  }
}

TEST(LogME, Float32FeaturesAreReadWithoutLoss) {
  const Matrix F = random_features(70, 6, 7);
  RowMatrixF f32 = F.cast<float>();
  const Matrix rounded = f32.cast<double>();
  const std::vector<int> y = labels_for(rounded, 3, 8);
  const LogMEResult r32 = logme_classification(MatrixView::borrow(f32), y, 3);
  const LogMEResult r64 = logme_classification(MatrixView::borrow(rounded), y, 3);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(r32.evidence[c], r64.evidence[c], 1e-12 * std::abs(r64.evidence[c]));
  expect_matches_brute_force(rounded, y, 3, false);
}

TEST(LogME, RegressionWithSeveralTargets) {
  const Matrix F = random_features(100, 5, 9);
  Matrix Y(100, 3);
  std::mt19937_64 rng(10);
  std::normal_distribution<double> noise(0, 0.3);
  for (int i = 0; i < 100; ++i) {
    Y(i, 0) = 2 * F(i, 0) - F(i, 3) + noise(rng);
    Y(i, 1) = F(i, 1) * 0.1 + noise(rng);
    Y(i, 2) = noise(rng);
  }
  const LogMEResult r = logme_regression(MatrixView::borrow(F), Y);
  ASSERT_EQ(r.weights.rows(), 3);
  ASSERT_EQ(r.weights.cols(), 5);
  double mean = 0;
  for (int c = 0; c < 3; ++c) {
    const BruteForce b = brute_force(F, Y.col(c), false);
    EXPECT_NEAR(r.evidence[c], b.evidence, 1e-8 * std::abs(b.evidence));
    EXPECT_LE((r.weights.row(c).transpose() - b.weights).norm(), 1e-7 * (1 + b.weights.norm()));
    mean += b.evidence;
  }
  EXPECT_NEAR(r.score, mean / 3, 1e-8 * std::abs(mean));
}

TEST(LogME, ManyBlocksAndAnyPoolWidthGiveIdenticalBits) {
  // More rows than lanes x block rows, so every lane sums several blocks.
  const Matrix F = random_features(5000, 12, 11);
  RowMatrixF f32 = F.cast<float>();
  const std::vector<int> y = labels_for(F, 4, 12);
  const LogMEResult serial = logme_classification(MatrixView::borrow(f32), y, 4);
  ThreadPool pool(2);
  ScopedPool scoped(&pool);
  const LogMEResult parallel = logme_classification(MatrixView::borrow(f32), y, 4);
  EXPECT_EQ(serial.score, parallel.score);
  EXPECT_EQ(serial.weights, parallel.weights);
  expect_matches_brute_force(f32.cast<double>(), y, 4, false);
}

TEST(LogME, BetterFeaturesScoreHigher) {
  // Features that contain the label beat features of pure noise.
  const int N = 400;
  std::mt19937_64 rng(13);
  std::normal_distribution<double> normal;
  std::vector<int> y(N);
  Matrix good(N, 4), noise(N, 4);
  for (int i = 0; i < N; ++i) {
    y[i] = i % 3;
    for (int d = 0; d < 4; ++d) {
      good(i, d) = (d == y[i] ? 3.0 : 0.0) + normal(rng);
      noise(i, d) = normal(rng);
    }
  }
  EXPECT_GT(logme_classification(MatrixView::borrow(good), y, 3).score,
            logme_classification(MatrixView::borrow(noise), y, 3).score);
}

TEST(LogME, RejectsBadLabelsAndShapes) {
  const Matrix F = random_features(10, 3, 14);
  std::vector<int> y(10, 0);
  y[3] = 5;
  EXPECT_THROW(logme_classification(MatrixView::borrow(F), y, 3), std::invalid_argument);
  EXPECT_THROW(logme_classification(MatrixView::borrow(F), std::vector<int>(9, 0), 3), std::invalid_argument);
  EXPECT_THROW(logme_regression(MatrixView::borrow(F), Matrix(10, 0)), std::invalid_argument);
}

}  // namespace
}  // namespace caulk::rank
