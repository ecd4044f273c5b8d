// The transferability metrics against independent computations: hand-worked tiny cases for
// LEEP, NCE and N-LEEP, and for the others the textbook formula written with explicit matrices
// (explicit centring, SVD-based pseudo-inverses and PCA, determinants, a generalised eigensolver),
// on small random data and on the degenerate cases (a class with one sample, constant features,
// D > N, absent classes).
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <mutex>
#include <random>

#include "caulk/parallel.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace caulk::rank {
namespace {

Matrix random_features(int N, int D, unsigned seed, double offset = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  Matrix F(N, D);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < D; ++j) F(i, j) = normal(rng) + offset * (j + 1);
  return F;
}

std::vector<int> random_labels(int N, int C, unsigned seed) {
  std::vector<int> y(static_cast<std::size_t>(N));
  for (int i = 0; i < N; ++i) y[static_cast<std::size_t>(i)] = i % C;  // every class present
  std::shuffle(y.begin(), y.end(), std::mt19937(seed));
  return y;
}

// Rows moved towards their class's random centre, so the metrics have signal to find.
Matrix with_class_signal(Matrix F, const std::vector<int>& y, int C, double strength, unsigned seed) {
  const Matrix centres = random_features(C, static_cast<int>(F.cols()), seed + 7);
  for (Eigen::Index i = 0; i < F.rows(); ++i) F.row(i) += strength * centres.row(y[static_cast<std::size_t>(i)]);
  return F;
}

MatrixView view(const Matrix& m) { return MatrixView::borrow(m); }

double relative_error(double a, double b) { return std::abs(a - b) / std::max(1.0, std::max(std::abs(a), std::abs(b))); }

// numpy.linalg.pinv through an SVD (cut-off relative to the largest singular value).
Matrix pinv(const Matrix& A, double rcond) {
  Eigen::JacobiSVD<Matrix> svd(A, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const Vector& s = svd.singularValues();
  Vector inv = Vector::Zero(s.size());
  for (Eigen::Index i = 0; i < s.size(); ++i)
    if (s[i] > rcond * s[0]) inv[i] = 1 / s[i];
  return svd.matrixV() * inv.asDiagonal() * svd.matrixU().transpose();
}

Matrix centred(const Matrix& X) { return X.rowwise() - X.colwise().mean(); }
Matrix np_cov(const Matrix& X) { return centred(X).transpose() * centred(X) / static_cast<double>(X.rows() - 1); }

Matrix class_mean_rows(const Matrix& F, const std::vector<int>& y, int C) {
  Matrix means = Matrix::Zero(C, F.cols());
  Vector counts = Vector::Zero(C);
  for (Eigen::Index i = 0; i < F.rows(); ++i) {
    means.row(y[static_cast<std::size_t>(i)]) += F.row(i);
    counts[y[static_cast<std::size_t>(i)]] += 1;
  }
  Matrix out(F.rows(), F.cols());
  for (Eigen::Index i = 0; i < F.rows(); ++i) {
    const int c = y[static_cast<std::size_t>(i)];
    out.row(i) = means.row(c) / counts[c];
  }
  return out;
}

// ------------------------------------------------------------------------- LEEP and NCE

TEST(Leep, HandWorkedCase) {
  // Three samples, two source classes, two target classes.
  Matrix theta(3, 2);
  theta << 0.8, 0.2,  //
      0.4, 0.6,       //
      0.1, 0.9;
  const std::vector<int> y = {0, 0, 1};
  // P(y, z) = (1/3) sum over samples of class y of theta_z:
  // P(0, .) = (1.2, 0.8) / 3, P(1, .) = (0.1, 0.9) / 3; P(z) = (1.3, 1.7) / 3.
  // P(0 | z) = (12/13, 8/17), P(1 | z) = (1/13, 9/17).
  const double p0 = 12.0 / 13, p0b = 8.0 / 17, p1 = 1.0 / 13, p1b = 9.0 / 17;
  const double expected = (std::log(0.8 * p0 + 0.2 * p0b) + std::log(0.4 * p0 + 0.6 * p0b) + std::log(0.1 * p1 + 0.9 * p1b)) / 3;
  EXPECT_NEAR(leep(view(theta), y, 2), expected, 1e-14);
}

TEST(Leep, PerfectSourceHeadScoresZero) {
  // One-hot theta equal to the labels: P(y | z) is the identity, every log is log 1.
  Matrix theta = Matrix::Zero(4, 3);
  const std::vector<int> y = {0, 2, 1, 2};
  for (int i = 0; i < 4; ++i) theta(i, y[static_cast<std::size_t>(i)]) = 1;
  EXPECT_NEAR(leep(view(theta), y, 3), 0.0, 1e-15);
}

TEST(Nce, HandWorkedCase) {
  // Hard source labels z = argmax: (0, 1, 1, 1); targets (0, 0, 1, 1).
  Matrix theta(4, 2);
  theta << 0.9, 0.1,  //
      0.3, 0.7,       //
      0.2, 0.8,       //
      0.5, 0.5000001;
  const std::vector<int> y = {0, 0, 1, 1};
  // z = 0: one sample, class 0: H = 0. z = 1: three samples, classes (0, 1, 1): H = H(1/3, 2/3).
  const double h1 = -(1.0 / 3 * std::log(1.0 / 3) + 2.0 / 3 * std::log(2.0 / 3));
  EXPECT_NEAR(nce(view(theta), y, 2), -(3.0 / 4) * h1, 1e-12);
}

TEST(Nce, TiesGoToTheFirstSourceClass) {
  Matrix theta(2, 2);
  theta << 0.5, 0.5,  //
      0.5, 0.5;
  // Both samples map to z = 0; labels differ: - H(Y | Z) = - log 2.
  EXPECT_NEAR(nce(view(theta), {0, 1}, 2), -std::log(2.0), 1e-12);
}

// Rows that are not probabilities are refused, naming the row and what is wrong: a row x7 (a
// wrong score before), logits and a zero row (a non-finite score with exit 0 before), negative
// values (passed before), NaN.
TEST(SourceRows, RowsThatAreNotProbabilitiesAreRefused) {
  const std::vector<int> y = {0, 1, 0, 1};
  Matrix good(4, 3);
  good << 0.7, 0.2, 0.1,  //
      0.1, 0.8, 0.1,      //
      0.3, 0.3, 0.4,      //
      0.25, 0.25, 0.5;
  struct Case {
    const char* name;
    Matrix theta;
    const char* message;
  };
  Matrix times7 = good;
  times7.row(2) *= 7;
  Matrix zero = good;
  zero.row(3).setZero();
  Matrix negative = good;
  negative.row(1) << 0.5, 0.7, -0.2;
  Matrix nan = good;
  nan(1, 0) = std::numeric_limits<double>::quiet_NaN();
  Matrix logits(4, 3);
  logits << 2.0, -1.0, 0.5,  //
      0.1, 3.0, -2.0,        //
      1.0, 1.0, 1.2,         //
      -0.3, 0.0, 0.9;
  for (const Case& c :
       {Case{"x7", times7, "row 2 sums to 7, not 1"}, Case{"zero row", zero, "row 3 sums to 0, not 1"},
        Case{"negative", negative, "row 1 has a negative probability (-0.2 in column 2)"}, Case{"NaN", nan, "row 1, column 0 is nan"},
        Case{"logits", logits, "row 0 has a negative probability (-1 in column 1)"}}) {
    for (auto method : {&leep, &nce}) {
      try {
        method(view(c.theta), y, 2, SourceOptions{});
        ADD_FAILURE() << c.name << ": no error";
      } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << c.name << ": " << e.what();
      }
    }
  }
  // Within the tolerance (a float16 export, say) rows pass as they are.
  Matrix close = good;
  close(0, 0) += 4e-4;
  EXPECT_NO_THROW(leep(view(close), y, 2));
  SourceOptions strict;
  strict.tolerance = 1e-6;
  EXPECT_THROW(leep(view(close), y, 2, strict), std::invalid_argument);
}

// source_logits: each row goes through a softmax, written out by hand here.
TEST(SourceRows, LogitsGoThroughASoftmax) {
  Matrix logits(5, 3);
  logits << 2.0, -1.0, 0.5,  //
      0.1, 3.0, -2.0,        //
      1.0, 1.0, 1.2,         //
      -0.3, 0.0, 0.9,        //
      800, 799, -5;          // large logits: a softmax without the max shift overflows
  const std::vector<int> y = {0, 1, 2, 2, 0};
  Matrix probs(5, 3);
  for (Eigen::Index i = 0; i < 5; ++i) {
    const double top = logits.row(i).maxCoeff();
    double sum = 0;
    for (Eigen::Index z = 0; z < 3; ++z) sum += std::exp(logits(i, z) - top);
    for (Eigen::Index z = 0; z < 3; ++z) probs(i, z) = std::exp(logits(i, z) - top) / sum;
  }
  SourceOptions as_logits;
  as_logits.kind = SourceKind::Logits;
  EXPECT_NEAR(leep(view(logits), y, 3, as_logits), leep(view(probs), y, 3), 1e-14);
  EXPECT_EQ(nce(view(logits), y, 3, as_logits), nce(view(probs), y, 3));
  Matrix bad = logits;
  bad(2, 1) = std::numeric_limits<double>::infinity();
  EXPECT_THROW(leep(view(bad), y, 3, as_logits), std::invalid_argument);
}

// ------------------------------------------------------------------------- H-scores

double hscore_explicit(const Matrix& F, const std::vector<int>& y, int C) {
  return (pinv(np_cov(F), 1e-15) * np_cov(class_mean_rows(F, y, C))).trace();
}

double hscore_shrinkage_explicit(const Matrix& F, const std::vector<int>& y, int C) {
  const double N = static_cast<double>(F.rows()), D = static_cast<double>(F.cols());
  const Matrix X = centred(F);
  const Matrix S = X.transpose() * X / N;
  const double mu = S.trace() / D;
  const Matrix XtX = X.transpose() * X;
  const double d2 = XtX.array().square().sum() / (N * N);
  const Matrix X2 = X.array().square().matrix();
  double b = ((X2.transpose() * X2).sum() / N - d2) / (D * N);
  const double d = (d2 - 2 * mu * S.trace() + D * mu * mu) / D;
  b = std::min(b, d);
  const double a = b == 0 ? 0 : b / d;
  const Matrix cov = (1 - a) * S + a * mu * Matrix::Identity(F.cols(), F.cols());
  return (pinv(cov, 1e-15) * (1 - a) * np_cov(class_mean_rows(F, y, C))).trace();
}

struct Shape {
  int N, D, C;
};

class CovarianceMetrics : public ::testing::TestWithParam<Shape> {};

TEST_P(CovarianceMetrics, MatchExplicitFormulas) {
  const auto [N, D, C] = GetParam();
  const std::vector<int> y = random_labels(N, C, 11);
  const Matrix F = with_class_signal(random_features(N, D, 3, 2.0), y, C, 1.5, 5);
  EXPECT_LT(relative_error(hscore(view(F), y, C), hscore_explicit(F, y, C)), 1e-8);
  EXPECT_LT(relative_error(hscore_shrinkage(view(F), y, C).score, hscore_shrinkage_explicit(F, y, C)), 1e-8);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CovarianceMetrics, ::testing::Values(Shape{60, 5, 3}, Shape{200, 12, 4}, Shape{15, 40, 3} /* D > N */));

TEST(HScore, ShrinkageCoefficientIsLedoitWolf) {
  // For D > N the shrinkage must be strictly between 0 and 1, and it grows as N shrinks.
  const std::vector<int> y = random_labels(12, 3, 2);
  const Matrix F = random_features(12, 30, 4);
  const double a = hscore_shrinkage(view(F), y, 3).shrinkage;
  EXPECT_GT(a, 0.0);
  EXPECT_LT(a, 1.0);
}

// ------------------------------------------------------------------------- GBC

double gbc_explicit(const Matrix& F, const std::vector<int>& y, int C, bool spherical) {
  const Eigen::Index D = F.cols();
  std::vector<Vector> mean(static_cast<std::size_t>(C)), var(static_cast<std::size_t>(C));
  for (int c = 0; c < C; ++c) {
    std::vector<Eigen::Index> rows;
    for (Eigen::Index i = 0; i < F.rows(); ++i)
      if (y[static_cast<std::size_t>(i)] == c) rows.push_back(i);
    Vector m = Vector::Zero(D), v = Vector::Zero(D);
    for (auto i : rows) m += F.row(i).transpose();
    m /= static_cast<double>(rows.size());
    for (auto i : rows) v += (F.row(i).transpose() - m).array().square().matrix();
    v /= static_cast<double>(rows.size());
    for (Eigen::Index j = 0; j < D; ++j) v[j] = std::max(v[j], 1e-4);
    if (spherical) v.setConstant(v.mean());
    mean[static_cast<std::size_t>(c)] = m;
    var[static_cast<std::size_t>(c)] = v;
  }
  double total = 0;
  for (int c = 0; c < C; ++c)
    for (int k = 0; k < C; ++k) {
      if (c == k) continue;
      double quad = 0, logs = 0;
      for (Eigen::Index j = 0; j < D; ++j) {
        const double s = (var[c][j] + var[k][j]) / 2;
        quad += std::pow(mean[c][j] - mean[k][j], 2) / s;
        logs += std::log(s) - 0.5 * std::log(var[c][j]) - 0.5 * std::log(var[k][j]);
      }
      total += std::exp(-(quad / 8 + logs / 2));
    }
  return -total;
}

TEST(Gbc, DiagonalAndSphericalMatchExplicitFormula) {
  for (auto [N, D, C] : {Shape{80, 6, 3}, Shape{30, 50, 4}}) {
    const std::vector<int> y = random_labels(N, C, 21);
    const Matrix F = with_class_signal(random_features(N, D, 8), y, C, 0.7, 9);
    EXPECT_LT(relative_error(gbc(view(F), y, C, GaussianKind::Diagonal), gbc_explicit(F, y, C, false)), 1e-10);
    EXPECT_LT(relative_error(gbc(view(F), y, C, GaussianKind::Spherical), gbc_explicit(F, y, C, true)), 1e-10);
  }
}

// ------------------------------------------------------------------------- TransRate

double coding_rate_explicit(const Matrix& Z, double eps) {
  const double n = static_cast<double>(Z.rows());
  const Matrix A = Matrix::Identity(Z.cols(), Z.cols()) + Z.transpose() * Z / (n * eps);
  return 0.5 * std::log(A.determinant());
}

double transrate_explicit(const Matrix& F, const std::vector<int>& y, int C, double eps) {
  const Matrix Z = centred(F);
  double classes = 0;
  int present = 0;
  for (int c = 0; c < C; ++c) {
    std::vector<Eigen::Index> rows;
    for (Eigen::Index i = 0; i < Z.rows(); ++i)
      if (y[static_cast<std::size_t>(i)] == c) rows.push_back(i);
    if (rows.empty()) continue;
    Matrix Zc(static_cast<Eigen::Index>(rows.size()), Z.cols());
    for (std::size_t r = 0; r < rows.size(); ++r) Zc.row(static_cast<Eigen::Index>(r)) = Z.row(rows[r]);
    classes += coding_rate_explicit(Zc, eps);
    ++present;
  }
  return coding_rate_explicit(Z, eps) - classes / present;
}

TEST(TransRate, MatchesExplicitDeterminants) {
  // D = 6: a class of 30 rows uses the D x D Gram; D = 25 with 10-row classes uses the n x n one.
  for (auto [N, D, C] : {Shape{90, 6, 3}, Shape{30, 25, 3}}) {
    const std::vector<int> y = random_labels(N, C, 31);
    const Matrix F = with_class_signal(random_features(N, D, 12, 0.5), y, C, 0.2, 13);
    for (double eps : {1e-4, 0.5})
      EXPECT_LT(relative_error(transrate(view(F), y, C, eps), transrate_explicit(F, y, C, eps)), 1e-9) << "eps " << eps;
  }
}

// ------------------------------------------------------------------------- PARC

std::vector<double> ranks_with_ties(const std::vector<double>& v) {
  // Naive O(n^2): rank = 1 + (number smaller) + (number equal - 1) / 2.
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    double smaller = 0, equal = 0;
    for (double w : v) {
      smaller += w < v[i];
      equal += w == v[i];
    }
    r[i] = 1 + smaller + (equal - 1) / 2;
  }
  return r;
}

double parc_explicit(const Matrix& F, const std::vector<int>& y, int C, int pca_dims) {
  Matrix X = centred(F);
  if (F.cols() > pca_dims) {
    Eigen::JacobiSVD<Matrix> svd(X, Eigen::ComputeThinV);
    Matrix V = svd.matrixV().leftCols(pca_dims);
    for (Eigen::Index c = 0; c < V.cols(); ++c) {  // scikit-learn's sign: largest loading positive
      Eigen::Index at = 0;
      V.col(c).cwiseAbs().maxCoeff(&at);
      if (V(at, c) < 0) V.col(c) *= -1;
    }
    X = X * V;
  }
  X = centred(X);
  for (Eigen::Index c = 0; c < X.cols(); ++c) X.col(c) /= std::sqrt(X.col(c).squaredNorm() / static_cast<double>(X.rows()));
  Matrix onehot = Matrix::Zero(F.rows(), C);
  for (Eigen::Index i = 0; i < F.rows(); ++i) onehot(i, y[static_cast<std::size_t>(i)]) = 1;
  auto corr = [](const Eigen::RowVectorXd& a, const Eigen::RowVectorXd& b) {
    const Eigen::RowVectorXd ca = a.array() - a.mean(), cb = b.array() - b.mean();
    return ca.dot(cb) / std::sqrt(ca.squaredNorm() * cb.squaredNorm());
  };
  std::vector<double> fd, ld;
  for (Eigen::Index i = 0; i < F.rows(); ++i)
    for (Eigen::Index j = i + 1; j < F.rows(); ++j) {
      fd.push_back(1 - corr(X.row(i), X.row(j)));
      ld.push_back(1 - corr(onehot.row(i), onehot.row(j)));
    }
  const std::vector<double> a = ranks_with_ties(fd), b = ranks_with_ties(ld);
  Eigen::Map<const Vector> va(a.data(), static_cast<Eigen::Index>(a.size())), vb(b.data(), static_cast<Eigen::Index>(b.size()));
  return 100 * corr(va.transpose(), vb.transpose());
}

TEST(Parc, MatchesExplicitPairwiseSpearman) {
  const std::vector<int> y = random_labels(40, 3, 41);
  const Matrix F = with_class_signal(random_features(40, 8, 14), y, 3, 1.0, 15);
  // PCA kept (D <= pca_dims) and reduced to 3 components.
  for (int dims : {32, 3}) {
    const ParcResult r = parc(view(F), y, 3, dims, 5000, 0);
    EXPECT_EQ(r.samples, 40u);
    EXPECT_LT(relative_error(r.score, parc_explicit(F, y, 3, dims)), 1e-9) << "pca_dims " << dims;
  }
}

// The label dissimilarities take two values, "same class" and "different classes". Computed as
// 1 - corr(one-hot rows), rounding splits them by the classes' positions (numpy's corrcoef does:
// with 37 classes it gives four values), which the Spearman correlation then ranks as if they
// meant something. PARC uses the exact two values: the same score as the explicit formula with
// labels compared directly.
TEST(Parc, LabelDissimilaritiesAreExactTies) {
  const int N = 120, C = 37;
  std::vector<int> y(N);
  std::mt19937 rng(43);
  for (int& c : y) c = std::uniform_int_distribution<int>(0, C - 1)(rng);
  const Matrix F = with_class_signal(random_features(N, 12, 44), y, C, 0.5, 45);
  const ParcResult r = parc(view(F), y, C, 32, 5000, 0);
  // The explicit formula, with the label side written as the indicator y_i != y_j.
  Matrix X = centred(F);
  for (Eigen::Index c = 0; c < X.cols(); ++c) X.col(c) /= std::sqrt(X.col(c).squaredNorm() / N);
  std::vector<double> fd, ld;
  for (int i = 0; i < N; ++i)
    for (int j = i + 1; j < N; ++j) {
      const Eigen::RowVectorXd a = X.row(i).array() - X.row(i).mean(), b = X.row(j).array() - X.row(j).mean();
      fd.push_back(1 - a.dot(b) / std::sqrt(a.squaredNorm() * b.squaredNorm()));
      ld.push_back(y[static_cast<std::size_t>(i)] == y[static_cast<std::size_t>(j)] ? 0.0 : 1.0);
    }
  const std::vector<double> ra = ranks_with_ties(fd), rb = ranks_with_ties(ld);
  const Vector va = Eigen::Map<const Vector>(ra.data(), static_cast<Eigen::Index>(ra.size()));
  const Vector vb = Eigen::Map<const Vector>(rb.data(), static_cast<Eigen::Index>(rb.size()));
  const double expected = 100 * (va.array() - va.mean()).matrix().dot((vb.array() - vb.mean()).matrix()) /
                          std::sqrt((va.array() - va.mean()).square().sum() * (vb.array() - vb.mean()).square().sum());
  EXPECT_LT(relative_error(r.score, expected), 1e-9);
}

TEST(Parc, SubsampleIsSeededAndReported) {
  const std::vector<int> y = random_labels(300, 4, 42);
  const Matrix F = with_class_signal(random_features(300, 6, 16), y, 4, 1.0, 17);
  const ParcResult a = parc(view(F), y, 4, 32, 100, 7), b = parc(view(F), y, 4, 32, 100, 7), c = parc(view(F), y, 4, 32, 100, 8);
  EXPECT_EQ(a.samples, 100u);
  EXPECT_EQ(a.score, b.score);
  EXPECT_NE(a.score, c.score);
}

// ------------------------------------------------------------------------- SFDA

// The reference's two fits written with explicit covariances and a generalised symmetric
// eigensolver (S_b v = e S_w v, V^T S_w V = I, coef = M V V^T).
struct ExplicitLda {
  Matrix coef;
  Vector intercept;
  double lambda;
};

Matrix shrink(const Matrix& S, double lambda) {
  return (1 - lambda) * S + lambda * S.trace() / static_cast<double>(S.rows()) * Matrix::Identity(S.rows(), S.cols());
}

ExplicitLda lda_explicit(const Matrix& X, const std::vector<int>& y, int C, double lambda) {
  const double N = static_cast<double>(X.rows());
  Matrix means = Matrix::Zero(C, X.cols());
  Vector counts = Vector::Zero(C);
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    means.row(y[static_cast<std::size_t>(i)]) += X.row(i);
    counts[y[static_cast<std::size_t>(i)]] += 1;
  }
  for (int c = 0; c < C; ++c) means.row(c) /= counts[c];
  Matrix Sw = Matrix::Zero(X.cols(), X.cols());
  for (int c = 0; c < C; ++c) {
    Matrix Xc(static_cast<Eigen::Index>(counts[c]), X.cols());
    Eigen::Index r = 0;
    for (Eigen::Index i = 0; i < X.rows(); ++i)
      if (y[static_cast<std::size_t>(i)] == c) Xc.row(r++) = X.row(i);
    const Matrix Cc = centred(Xc);
    Sw += (counts[c] / N) * (Cc.transpose() * Cc / counts[c]);
  }
  if (lambda < 0) {
    Vector x = Sw.rowwise().sum(), v = x;
    for (int k = 0; k < 3; ++k) {
      Vector t = Sw * x;
      v = t / t.norm();
      t = Sw * v;
      x = t / t.norm();
    }
    lambda = std::max(std::exp(-5 * x.dot(Sw * v)), 1e-10);
  }
  const Matrix St = shrink(centred(X).transpose() * centred(X) / N, lambda);
  const Matrix Sws = shrink(Sw, lambda);
  Eigen::GeneralizedSelfAdjointEigenSolver<Matrix> ges(St - Sws, Sws);
  const Matrix& V = ges.eigenvectors();
  ExplicitLda out{means * V * V.transpose(), Vector(C), lambda};
  for (int c = 0; c < C; ++c) out.intercept[c] = -0.5 * means.row(c).dot(out.coef.row(c)) + std::log(counts[c] / N);
  return out;
}

Matrix softmax_rows(Matrix z) {
  for (Eigen::Index i = 0; i < z.rows(); ++i) {
    z.row(i) = (z.row(i).array() - z.row(i).maxCoeff()).exp().matrix();
    z.row(i) /= z.row(i).sum();
  }
  return z;
}

double sfda_explicit(const Matrix& X, const std::vector<int>& y, int C) {
  const ExplicitLda first = lda_explicit(X, y, C, -1);
  Matrix logits = X * first.coef.transpose();
  logits.rowwise() += first.intercept.transpose();
  const Matrix q = softmax_rows(softmax_rows(logits));  // softmax of the probabilities
  Matrix means = Matrix::Zero(C, X.cols());
  Vector counts = Vector::Zero(C);
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    means.row(y[static_cast<std::size_t>(i)]) += X.row(i);
    counts[y[static_cast<std::size_t>(i)]] += 1;
  }
  for (int c = 0; c < C; ++c) means.row(c) /= counts[c];
  Matrix mixed = X;
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    const int c = y[static_cast<std::size_t>(i)];
    const Eigen::RowVectorXd others = (means.colwise().sum() - means.row(c)) / (C - 1);
    mixed.row(i) = q(i, c) * X.row(i) + (1 - q(i, c)) * others;
  }
  const ExplicitLda second = lda_explicit(mixed, y, C, first.lambda);
  Matrix logits2 = mixed * second.coef.transpose();
  logits2.rowwise() += second.intercept.transpose();
  const Matrix p = softmax_rows(logits2);
  double total = 0;
  for (Eigen::Index i = 0; i < X.rows(); ++i) total += p(i, y[static_cast<std::size_t>(i)]);
  return total / static_cast<double>(X.rows());
}

TEST(Sfda, MatchesGeneralisedEigenproblemFormulation) {
  for (auto [N, D, C] : {Shape{90, 5, 3}, Shape{60, 10, 4}, Shape{20, 30, 2} /* D > N */}) {
    const std::vector<int> y = random_labels(N, C, 51);
    const Matrix F = with_class_signal(random_features(N, D, 18, 0.3), y, C, 0.4, 19);
    EXPECT_LT(relative_error(sfda(view(F), y, C), sfda_explicit(F, y, C)), 1e-7) << N << "x" << D;
  }
}

// ------------------------------------------------------------------------- N-LEEP

// Three tight, far-apart clusters; clusters A and B carry classes 0 and 1, cluster C is half
// class 2 and half class 0. With one component per class the mixture's components are the
// clusters, theta is one-hot up to exp(-huge), and LEEP = (n_C / N) log(1/2) by hand.
TEST(NLeep, HandWorkedClusters) {
  const int per = 20;
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0.0, 0.05);
  Matrix F(3 * per, 4);
  std::vector<int> y;
  const double centres[3][4] = {{10, 0, 0, 0}, {0, 10, 0, 0}, {0, 0, 10, 3}};
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < per; ++i) {
      for (int j = 0; j < 4; ++j) F(k * per + i, j) = centres[k][j] + noise(rng);
      y.push_back(k == 0 ? 0 : k == 1 ? 1 : (i % 2 == 0 ? 2 : 0));
    }
  NLeepOptions o;
  o.components_per_class = 1;
  o.seed = 5;
  const NLeepResult r = nleep(view(F), y, 3, o);
  EXPECT_EQ(r.components, 3);
  EXPECT_TRUE(r.converged);
  EXPECT_NEAR(r.score, (1.0 / 3) * std::log(0.5), 1e-9);
}

// PCA keeps the fewest components whose explained variance ratio exceeds 0.8, checked against
// an explicit SVD; the mixture's score then equals LEEP on the posterior of the fitted mixture
// written out with explicit Gaussian densities.
TEST(NLeep, PcaDimensionsFollowExplainedVariance) {
  const std::vector<int> y = random_labels(120, 2, 61);
  Matrix F = random_features(120, 6, 20);
  F.col(0) *= 5;
  F.col(1) *= 3;  // variances about 25, 9, 1, 1, 1, 1: 25 / 38 < 0.8 < 34 / 38 -> 2 components
  Eigen::JacobiSVD<Matrix> svd(centred(F));
  const Vector s2 = svd.singularValues().array().square();
  double cumulative = 0;
  std::size_t expected = 0;
  while (cumulative <= 0.8) cumulative += s2[static_cast<Eigen::Index>(expected++)] / s2.sum();
  NLeepOptions o;
  o.components_per_class = 2;
  const NLeepResult r = nleep(view(F), y, 2, o);
  EXPECT_EQ(r.pca_dims, expected);
  EXPECT_EQ(expected, 2u);
  EXPECT_EQ(r.components, 4);
  EXPECT_TRUE(std::isfinite(r.score));
  EXPECT_LE(r.score, 0.0);
}

TEST(NLeep, SameSeedSameScore) {
  const std::vector<int> y = random_labels(150, 3, 62);
  const Matrix F = with_class_signal(random_features(150, 5, 21), y, 3, 1.0, 22);
  NLeepOptions o;
  o.seed = 9;
  EXPECT_EQ(nleep(view(F), y, 3, o).score, nleep(view(F), y, 3, o).score);
}

// Features scaled by 1e8: reg_covar is an absolute ridge (scikit-learn's, whose GaussianMixture
// fails the same way), below the rounding of the covariances, so a component on a few samples is
// not positive definite. The error says so with the scale and a reg_covar to set; that reg_covar
// (1e-6 x the scale squared) gives the score of the unscaled features with the default.
TEST(NLeep, LargeFeaturesSayWhichRegCovarToSet) {
  std::mt19937 rng(1);
  std::normal_distribution<double> normal;
  const int N = 60, D = 6;
  Matrix F(N, D);
  std::vector<int> y(N);
  for (int i = 0; i < N; ++i) {
    y[static_cast<std::size_t>(i)] = i % 3;
    for (int j = 0; j < D; ++j) F(i, j) = normal(rng) + (j == i % 3 ? 2.0 : 0.0);
  }
  const Matrix large = 1e8 * F;
  try {
    nleep(view(large), y, 3, NLeepOptions{});
    FAIL() << "no error";
  } catch (const std::exception& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("is not positive definite even with reg_covar = 1e-06"), std::string::npos) << m;
    EXPECT_NE(m.find("largest PCA variance is 3.14e+16"), std::string::npos) << m;
    EXPECT_NE(m.find("Set reg_covar relative to that scale (e.g. reg_covar = 3.14e+10"), std::string::npos) << m;
  }
  NLeepOptions scaled;
  scaled.reg_covar = 1e-6 * 1e16;
  EXPECT_LT(relative_error(nleep(view(large), y, 3, scaled).score, nleep(view(F), y, 3, NLeepOptions{}).score), 1e-9);
}

// ------------------------------------------------------------------------- degenerate cases

TEST(Degenerate, AClassWithOneSample) {
  std::vector<int> y = random_labels(40, 3, 71);
  y[0] = 3;  // class 3 has exactly one sample
  const Matrix F = with_class_signal(random_features(40, 5, 23), y, 4, 0.5, 24);
  EXPECT_LT(relative_error(hscore(view(F), y, 4), hscore_explicit(F, y, 4)), 1e-8);
  EXPECT_LT(relative_error(hscore_shrinkage(view(F), y, 4).score, hscore_shrinkage_explicit(F, y, 4)), 1e-8);
  EXPECT_LT(relative_error(gbc(view(F), y, 4, GaussianKind::Diagonal), gbc_explicit(F, y, 4, false)), 1e-10);
  EXPECT_LT(relative_error(transrate(view(F), y, 4, 1e-4), transrate_explicit(F, y, 4, 1e-4)), 1e-9);
  EXPECT_LT(relative_error(sfda(view(F), y, 4), sfda_explicit(F, y, 4)), 1e-7);
  EXPECT_TRUE(std::isfinite(parc(view(F), y, 4, 32, 5000, 0).score));
  EXPECT_TRUE(std::isfinite(nleep(view(F), y, 4, NLeepOptions{}).score));
}

TEST(Degenerate, ConstantFeatureColumns) {
  const std::vector<int> y = random_labels(50, 3, 72);
  Matrix F = with_class_signal(random_features(50, 6, 25), y, 3, 0.8, 26);
  F.col(2).setConstant(1000.0);  // constant and far from zero: cancellation would show
  F.col(4).setZero();
  EXPECT_LT(relative_error(hscore(view(F), y, 3), hscore_explicit(F, y, 3)), 1e-7);
  EXPECT_LT(relative_error(hscore_shrinkage(view(F), y, 3).score, hscore_shrinkage_explicit(F, y, 3)), 1e-7);
  EXPECT_LT(relative_error(gbc(view(F), y, 3, GaussianKind::Diagonal), gbc_explicit(F, y, 3, false)), 1e-10);
  EXPECT_LT(relative_error(transrate(view(F), y, 3, 1e-4), transrate_explicit(F, y, 3, 1e-4)), 1e-8);
  EXPECT_LT(relative_error(sfda(view(F), y, 3), sfda_explicit(F, y, 3)), 1e-6);
  EXPECT_TRUE(std::isfinite(parc(view(F), y, 3, 32, 5000, 0).score));
  EXPECT_TRUE(std::isfinite(nleep(view(F), y, 3, NLeepOptions{}).score));
}

TEST(Degenerate, AllFeaturesConstant) {
  const std::vector<int> y = random_labels(20, 2, 73);
  const Matrix F = Matrix::Constant(20, 4, 3.0);
  EXPECT_EQ(hscore(view(F), y, 2), 0.0);  // nothing to separate the classes
  EXPECT_NEAR(transrate(view(F), y, 2, 1e-4), 0.0, 1e-12);
  EXPECT_THROW(sfda(view(F), y, 2), std::invalid_argument);  // a clear error, not NaN
}

// Labels with gaps (class 1 never used) score as the compacted labels do: absent classes are
// ignored by every metric here.
TEST(Degenerate, AbsentClassesAreIgnored) {
  const std::vector<int> compact = random_labels(60, 3, 74);
  std::vector<int> gapped = compact;
  for (int& c : gapped) c = c == 0 ? 0 : c + 1;  // classes {0, 2, 3} of 4
  const Matrix F = with_class_signal(random_features(60, 5, 27), compact, 3, 0.8, 28);
  EXPECT_NEAR(hscore(view(F), gapped, 4), hscore(view(F), compact, 3), 1e-9);
  EXPECT_NEAR(hscore_shrinkage(view(F), gapped, 4).score, hscore_shrinkage(view(F), compact, 3).score, 1e-9);
  EXPECT_NEAR(gbc(view(F), gapped, 4, GaussianKind::Diagonal), gbc(view(F), compact, 3, GaussianKind::Diagonal), 1e-12);
  EXPECT_NEAR(transrate(view(F), gapped, 4, 1e-4), transrate(view(F), compact, 3, 1e-4), 1e-9);
  EXPECT_NEAR(sfda(view(F), gapped, 4), sfda(view(F), compact, 3), 1e-9);
  EXPECT_NEAR(parc(view(F), gapped, 4, 32, 5000, 0).score, parc(view(F), compact, 3, 32, 5000, 0).score, 1e-9);
  EXPECT_NEAR(nleep(view(F), gapped, 4, NLeepOptions{}).score, nleep(view(F), compact, 3, NLeepOptions{}).score, 1e-9);
  // The source-probability rankers: the same source head, the labels with a gap.
  Matrix theta = F.leftCols(4).array().exp().matrix();
  for (Eigen::Index i = 0; i < theta.rows(); ++i) theta.row(i) /= theta.row(i).sum();
  EXPECT_EQ(leep(view(theta), gapped, 4), leep(view(theta), compact, 3));
  EXPECT_EQ(nce(view(theta), gapped, 4), nce(view(theta), compact, 3));
}

TEST(Degenerate, LabelOutsideTheClassesIsAClearError) {
  const Matrix F = random_features(5, 2, 29);
  try {
    hscore(view(F), {0, 1, 2, 1, 0}, 2);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("label 2 is outside [0, 2)"), std::string::npos);
  }
}

// Beyond kLaneScatterMaxDims columns the scatter is one D x D accumulator filled by column panels
// (not one D x D copy per lane): the same bits with any pool width, and the explicit centred X^T X.
TEST(SharedStats, WideScatterIsTheSameForAnyPoolWidth) {
  const int N = 60, D = static_cast<int>(kLaneScatterMaxDims) + 52;
  const Matrix F = random_features(N, D, 32, 0.5);
  const Moments serial = moments(view(F));
  ThreadPool pool(2);
  ScopedPool scoped(&pool);
  std::size_t rows_reported = 0;
  std::mutex m;
  RowProgress progress;
  progress.rows = [&](std::size_t n) {
    std::lock_guard lock(m);
    rows_reported += n;
  };
  const Moments wide = moments(view(F), progress);
  EXPECT_EQ(serial.scatter, wide.scatter);
  EXPECT_EQ(rows_reported, static_cast<std::size_t>(N));
  const Matrix X = centred(F);
  EXPECT_LT((wide.scatter - X.transpose() * X).norm(), 1e-12 * (X.transpose() * X).norm());
}

// Shared decompositions give the same numbers as computing them alone.
TEST(SharedStats, SharingChangesNothing) {
  const std::vector<int> y = random_labels(80, 3, 75);
  const Matrix F = with_class_signal(random_features(80, 7, 30), y, 3, 0.8, 31);
  const FeatureStats shared(view(F));
  const double h = hscore(shared, y, 3), t = transrate(shared, y, 3, 1e-4), s = hscore_shrinkage(shared, y, 3).score;
  EXPECT_EQ(h, hscore(view(F), y, 3));
  EXPECT_EQ(t, transrate(view(F), y, 3, 1e-4));
  EXPECT_EQ(s, hscore_shrinkage(view(F), y, 3).score);
}

}  // namespace
}  // namespace caulk::rank
