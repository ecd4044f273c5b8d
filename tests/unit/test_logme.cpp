// LogME against an independent computation: the MacKay fixed point and the evidence written
// straight from their definitions with explicit inverses and log-determinants of
// A = alpha I + beta F^T F (no SVD, no eigendecomposition), on small problems.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <numbers>
#include <numeric>
#include <random>

#include "caulk/parallel.hpp"
#include "caulk/transferability/logme.hpp"

namespace caulk::rank {
namespace {

struct BruteForce {
  double evidence = 0;
  Vector weights;
};

// One target column, following docs/rankers.md with matrices: t = alpha / beta,
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
  // log det by a Cholesky factorisation (sum of log diag L), which neither underflows nor
  // overflows for features of any scale.
  const Matrix A =
      log_det_over_rows ? Matrix(alpha * Matrix::Identity(F.rows(), F.rows()) + beta * F * F.transpose()) : Matrix(alpha * I + beta * FtF);
  const Eigen::LLT<Matrix> llt(A);
  const double log_det = 2 * llt.matrixL().toDenseMatrix().diagonal().array().log().sum();
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
  EXPECT_GT(logme_classification(MatrixView::borrow(good), y, 3).score, logme_classification(MatrixView::borrow(noise), y, 3).score);
}

// ------------------------------------------------------------------------- absent classes

// Labels {0, 2} of three classes: class 1 has no sample in these rows. Its all-zero target column
// would add an evidence that depends on the features alone (and moved a ranking of four models);
// the score is that of the data without the column: the mean of the brute-force evidence of
// the columns of classes 0 and 2.
TEST(LogME, ClassAbsentFromTheScoredRowsIsNotATarget) {
  for (auto [rows, cols] : {std::pair{80, 6}, std::pair{14, 30}}) {
    const Matrix F = random_features(rows, cols, 21);
    std::vector<int> y = labels_for(F, 2, 22);
    for (int& c : y) c *= 2;  // classes 0 and 2 of {0, 1, 2}
    const LogMEResult r = logme_classification(MatrixView::borrow(F), y, 3);
    double mean = 0;
    for (int c : {0, 2}) {
      Vector yc(F.rows());
      for (Eigen::Index i = 0; i < F.rows(); ++i) yc[i] = y[static_cast<std::size_t>(i)] == c ? 1.0 : 0.0;
      mean += brute_force(F, yc, rows <= cols).evidence / 2;
    }
    EXPECT_NEAR(r.score, mean, 1e-8 * std::abs(mean)) << rows << " x " << cols;
    EXPECT_EQ(r.columns, (std::vector<int>{0, 2}));
    ASSERT_EQ(r.weights.rows(), 3);
    EXPECT_EQ(r.weights.row(1).norm(), 0.0);  // the posterior mean of an all-zero target
  }
}

// ------------------------------------------------------------------------- numerical conventions

double relative(double a, double b) { return std::abs(a - b) / std::max(std::abs(a), std::abs(b)); }

// Features with exact-zero columns (dead ReLU units) and N > D: the evidence runs over all D
// directions, so it is the true evidence of the brute force, and it does not depend on rounding
// noise: permuting rows or columns, or adding one more zero column, moves it by < 1e-9 relative.
// (The reference's cut at sqrt(lambda) > 1e-10 drops the zero directions' log(alpha) whenever the
// eigensolver returns them below the cut, and the score moved with them.)
TEST(LogME, ZeroFeatureColumnsGiveAStableTrueEvidence) {
  Matrix F = random_features(120, 10, 23);
  F.col(2).setZero();
  F.col(7).setZero();
  F.col(8) = F.col(0) - F.col(1);  // a dependent column too
  const std::vector<int> y = labels_for(F, 3, 24);
  const LogMEResult base = logme_classification(MatrixView::borrow(F), y, 3);
  EXPECT_EQ(base.rank, 7u);  // 10 columns, two zero, one dependent
  EXPECT_EQ(base.directions, 10u);
  for (int c = 0; c < 3; ++c) {
    Vector yc(F.rows());
    for (Eigen::Index i = 0; i < F.rows(); ++i) yc[i] = y[static_cast<std::size_t>(i)] == c ? 1.0 : 0.0;
    EXPECT_LT(relative(base.evidence[static_cast<std::size_t>(c)], brute_force(F, yc, false).evidence), 1e-8) << "class " << c;
  }

  Matrix wider(F.rows(), F.cols() + 1);
  wider << F, Vector::Zero(F.rows());
  EXPECT_LT(relative(logme_classification(MatrixView::borrow(wider), y, 3).score, base.score), 1e-9) << "one more zero column";

  std::vector<int> columns(static_cast<std::size_t>(F.cols()));
  std::iota(columns.begin(), columns.end(), 0);
  std::shuffle(columns.begin(), columns.end(), std::mt19937(25));
  Matrix permuted_cols(F.rows(), F.cols());
  for (Eigen::Index j = 0; j < F.cols(); ++j) permuted_cols.col(j) = F.col(columns[static_cast<std::size_t>(j)]);
  EXPECT_LT(relative(logme_classification(MatrixView::borrow(permuted_cols), y, 3).score, base.score), 1e-9) << "columns permuted";

  std::vector<int> rows(static_cast<std::size_t>(F.rows()));
  std::iota(rows.begin(), rows.end(), 0);
  std::shuffle(rows.begin(), rows.end(), std::mt19937(26));
  Matrix permuted_rows(F.rows(), F.cols());
  std::vector<int> y_permuted(y.size());
  for (Eigen::Index i = 0; i < F.rows(); ++i) {
    permuted_rows.row(i) = F.row(rows[static_cast<std::size_t>(i)]);
    y_permuted[static_cast<std::size_t>(i)] = y[static_cast<std::size_t>(rows[static_cast<std::size_t>(i)])];
  }
  EXPECT_LT(relative(logme_classification(MatrixView::borrow(permuted_rows), y_permuted, 3).score, base.score), 1e-9) << "rows permuted";
}

// N <= D: singular values are cut at max(N, D) eps s_max (numpy's matrix_rank), not at 1e-10, so
// which directions count does not depend on the features' scale: rank 8 of 12 rows at any scale
// (the absolute cut also kept rounding-noise singular values of large features, e.g. at 2^19),
// and all 12 of full row rank at 1e-12 (the absolute cut kept none: -inf).
TEST(LogME, ThinSvdCutIsRelativeToTheLargestSingularValue) {
  const Matrix F = random_features(12, 30, 27);
  const std::vector<int> y = labels_for(F, 2, 28);
  const Matrix tiny = 1e-12 * F;
  const LogMEResult r = logme_classification(MatrixView::borrow(tiny), y, 2);
  EXPECT_TRUE(r.thin_svd);
  EXPECT_EQ(r.rank, 12u);
  EXPECT_EQ(r.directions, 12u);
  EXPECT_TRUE(std::isfinite(r.score));

  Matrix deficient = random_features(12, 30, 29);
  for (int i = 8; i < 12; ++i) deficient.row(i) = deficient.row(i - 8) + 0.5 * deficient.row(i - 7);
  for (double scale : {1.0, std::ldexp(1.0, -19), std::ldexp(1.0, 19), 1e-12, 1e9}) {
    const Matrix G = scale * deficient;
    const LogMEResult d = logme_classification(MatrixView::borrow(G), y, 2);
    EXPECT_EQ(d.rank, 8u) << scale;
    EXPECT_EQ(d.directions, 8u) << scale;
  }
  // With its k = 8 directions the evidence is the brute force's over the 8 non-zero eigenvalues
  // of F F^T, which is log det(alpha I + beta F F^T) - 4 log alpha.
  const LogMEResult d = logme_classification(MatrixView::borrow(deficient), y, 2);
  for (int c = 0; c < 2; ++c) {
    Vector yc(12);
    for (Eigen::Index i = 0; i < 12; ++i) yc[i] = y[static_cast<std::size_t>(i)] == c ? 1.0 : 0.0;
    const BruteForce b = brute_force(deficient, yc, true);
    const double expected = b.evidence + 0.5 * 4 * std::log(d.alpha[static_cast<std::size_t>(c)]) / 12;
    EXPECT_LT(relative(d.evidence[static_cast<std::size_t>(c)], expected), 1e-7) << "class " << c;
  }
}

// formula = exact: the true evidence for N <= D as well, the brute force's D x D log-determinant
// log det(alpha I + beta F^T F) (its D - k zero eigenvalues each add log alpha).
TEST(LogME, ExactFormulaIsTheTrueEvidenceWhenDimensionsExceedRows) {
  const Matrix F = random_features(12, 30, 30);
  const std::vector<int> y = labels_for(F, 2, 31);
  LogMEOptions exact;
  exact.formula = LogMEFormula::Exact;
  const LogMEResult r = logme_classification(MatrixView::borrow(F), y, 2, exact);
  for (int c = 0; c < 2; ++c) {
    Vector yc(F.rows());
    for (Eigen::Index i = 0; i < F.rows(); ++i) yc[i] = y[static_cast<std::size_t>(i)] == c ? 1.0 : 0.0;
    EXPECT_LT(relative(r.evidence[static_cast<std::size_t>(c)], brute_force(F, yc, false).evidence), 1e-8) << "class " << c;
  }
  // N > D: both formulas are the same.
  const Matrix tall = random_features(60, 8, 32);
  const std::vector<int> yt = labels_for(tall, 3, 33);
  EXPECT_EQ(logme_classification(MatrixView::borrow(tall), yt, 3, exact).score,
            logme_classification(MatrixView::borrow(tall), yt, 3).score);
}

// Root-mean-square value of a matrix.
double rms(const Matrix& m) { return std::sqrt(m.squaredNorm() / static_cast<double>(m.size())); }

// Scaling F by c leaves the maximum evidence over all D directions (N > D) unchanged: the evidence
// of c F at (alpha c^2, beta) is that of F at (alpha, beta). Features whose RMS is outside
// [2^-20, 2^20] are multiplied by a power of two internally: features of RMS near 1 scaled by 2^-40
// (before: -inf, every direction below the 1e-10 cut) or 2^-300 score exactly as the unscaled ones;
// scaled by 1e-12 they score as the features scaled by 1e-12 x 2^40 = 1.0995, which differs from
// the unscaled score only through the reference's own dependence on the scale (its +1e-5 terms, its
// start at alpha = beta = 1 and its 11 iterations): 2e-5 relative here.
TEST(LogME, TinyFeaturesScoreAsTheUnscaledOnes) {
  const Matrix F = random_features(150, 8, 34);
  ASSERT_LT(std::abs(std::log2(rms(F))), 0.5);
  const std::vector<int> y = labels_for(F, 3, 35);
  const LogMEResult unscaled = logme_classification(MatrixView::borrow(F), y, 3);
  for (int j : {40, 100, 300}) {
    const Matrix tiny = std::ldexp(1.0, -j) * F;
    const LogMEResult r = logme_classification(MatrixView::borrow(tiny), y, 3);
    EXPECT_LT(relative(r.score, unscaled.score), 1e-12) << "2^-" << j;
    EXPECT_LT((r.weights * std::ldexp(1.0, -j) - unscaled.weights).norm(), 1e-10 * unscaled.weights.norm()) << "2^-" << j;
  }
  const Matrix small = 1e-12 * F;
  const double factor = 1e-12 * std::ldexp(1.0, 40);
  const Matrix equivalent = factor * F;
  const double score = logme_classification(MatrixView::borrow(small), y, 3).score;
  EXPECT_LT(relative(score, logme_classification(MatrixView::borrow(equivalent), y, 3).score), 1e-12);
  EXPECT_LT(relative(score, unscaled.score), 1e-4);  // 2e-5 here
}

// N <= D: the reference's thin-SVD evidence of c F is that of F plus (D - k)/N log c (its
// D/2 log alpha has only k log-determinant terms to balance it); rescaled internally, features
// scaled by 2^-40 (before: -inf) follow that law exactly; the exact formula does not move.
TEST(LogME, TinyFeaturesWithFewerRowsFollowTheReferenceLaw) {
  const Matrix F = random_features(12, 30, 41);
  ASSERT_LT(std::abs(std::log2(rms(F))), 0.5);
  const std::vector<int> y = labels_for(F, 2, 42);
  const Matrix tiny = std::ldexp(1.0, -40) * F;
  const double expected = logme_classification(MatrixView::borrow(F), y, 2).score + (30.0 - 12.0) / 12.0 * std::log(std::ldexp(1.0, -40));
  EXPECT_LT(relative(logme_classification(MatrixView::borrow(tiny), y, 2).score, expected), 1e-12);
  LogMEOptions exact;
  exact.formula = LogMEFormula::Exact;
  EXPECT_LT(relative(logme_classification(MatrixView::borrow(tiny), y, 2, exact).score,
                     logme_classification(MatrixView::borrow(F), y, 2, exact).score),
            1e-12);
}

// Regression targets scaled by c: the maximum evidence / N moves by -log c (the density of a
// scaled variable), the reference's thin-SVD formula by -(D + N - k)/N log c; the weights scale by
// c. Targets near 1e200 (before: NaN, their squares overflow) are multiplied by a power of two
// internally: a target of RMS near 1 scaled by 2^600 follows the law exactly, and scaled by 1e200
// it follows it within the fixed point's own (small) dependence on the targets' scale.
TEST(LogME, HugeRegressionTargetsShiftTheEvidenceByTheirScale) {
  for (auto [rows, cols] : {std::pair{100, 5}, std::pair{10, 20}}) {
    const Matrix F = random_features(rows, cols, 36);
    Vector y(rows);
    std::mt19937_64 rng(37);
    std::normal_distribution<double> noise(0, 0.3);
    for (int i = 0; i < rows; ++i) y[i] = 0.5 * F(i, 0) - 0.3 * F(i, 3) + noise(rng);
    y /= rms(y);
    ASSERT_LT(std::abs(std::log2(rms(y))), 0.5);
    const double law = rows > cols ? 1.0 : (cols + rows - rows) / static_cast<double>(rows);  // k = N for full row rank
    const LogMEResult unscaled = logme_regression(MatrixView::borrow(F), Matrix(y));
    const BruteForce b = brute_force(F, y, rows <= cols);
    EXPECT_LT(relative(unscaled.score, b.evidence), 1e-8);
    const double c = std::ldexp(1.0, 600);
    const LogMEResult huge = logme_regression(MatrixView::borrow(F), Matrix(y * c));
    EXPECT_LT(relative(huge.score, unscaled.score - law * std::log(c)), 1e-13) << rows << " x " << cols;
    EXPECT_LT((huge.weights / c - unscaled.weights).norm(), 1e-12 * unscaled.weights.norm());
    const LogMEResult decimal = logme_regression(MatrixView::borrow(F), Matrix(y * 1e200));
    EXPECT_LT(std::abs(decimal.score - (unscaled.score - law * std::log(1e200))), 1e-4) << rows << " x " << cols;
  }
}

TEST(LogME, FeaturesTooLargeForFloat64AreAClearError) {
  const Matrix F = 1e160 * random_features(50, 4, 39);
  try {
    logme_classification(MatrixView::borrow(F), labels_for(random_features(50, 4, 39), 2, 40), 2);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("overflows float64"), std::string::npos) << e.what();
  }
  const Matrix zero = Matrix::Zero(20, 3);
  try {
    logme_classification(MatrixView::borrow(zero), std::vector<int>(20, 0), 1);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("every feature is zero"), std::string::npos) << e.what();
  }
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
