// Losses, bases and weight functions against independent computations: hand-worked values,
// textbook formulas and central finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "averagers/algorithms/basis.hpp"
#include "test_support.hpp"
#include "averagers/algorithms/weight_function.hpp"

using namespace caulk;
using namespace caulk::avg;
using caulk::avg::testing::Draw;

namespace {

Loss make_loss(LossKind k, double smoothing = 0) {
  Loss l;
  l.kind = k;
  l.delta = 0.7;
  l.tau = 0.8;
  l.smoothing = smoothing;
  return l;
}

TEST(Losses, HandWorkedValues) {
  EXPECT_DOUBLE_EQ(make_loss(LossKind::Squared).value(3, 1, nullptr), 4);
  EXPECT_DOUBLE_EQ(make_loss(LossKind::Absolute).value(-1, 1.5, nullptr), 2.5);
  // Huber with delta 0.7: quadratic 0.5 r^2 inside, 0.7 (|r| - 0.35) outside.
  EXPECT_DOUBLE_EQ(make_loss(LossKind::Huber).value(1.5, 1, nullptr), 0.125);
  EXPECT_DOUBLE_EQ(make_loss(LossKind::Huber).value(3, 1, nullptr), 0.7 * (2 - 0.35));
  // Pinball with tau 0.8 on u = y - f: 0.8 u above, 0.2 |u| below.
  EXPECT_NEAR(make_loss(LossKind::Pinball).value(1, 3, nullptr), 1.6, 1e-15);
  EXPECT_NEAR(make_loss(LossKind::Pinball).value(3, 1, nullptr), 0.4, 1e-15);
  // Cross-entropy of a row: -log p of the true class, clipped at 1e-15.
  const double p[3] = {0.2, 0.5, 0.3}, zero[2] = {1.0, 0.0};
  EXPECT_DOUBLE_EQ(make_loss(LossKind::CrossEntropy).row(p, nullptr, 1, 3, nullptr), -std::log(0.5));
  EXPECT_DOUBLE_EQ(make_loss(LossKind::CrossEntropy).row(zero, nullptr, 1, 2, nullptr), -std::log(1e-15));
  // A regression row is the mean over its outputs.
  const double f[2] = {1, 2}, y[2] = {0, 0};
  EXPECT_DOUBLE_EQ(make_loss(LossKind::Squared).row(f, y, 0, 2, nullptr), 2.5);
}

TEST(Losses, SmoothingStaysWithinItsBoundBelowTheExactLoss) {
  for (LossKind k : {LossKind::Absolute, LossKind::Pinball}) {
    const Loss exact = make_loss(k), smooth = make_loss(k, 0.3);
    for (double r = -2; r <= 2; r += 0.01) {
      const double gap = exact.value(r, 0, nullptr) - smooth.value(r, 0, nullptr);
      EXPECT_GE(gap, -1e-15) << r;
      EXPECT_LE(gap, smooth.smoothing_gap() + 1e-15) << r;
    }
    // Exact at 0, and the bound is reached once |u| >= mu.
    EXPECT_EQ(exact.value(0, 0, nullptr) - smooth.value(0, 0, nullptr), 0);
    EXPECT_NEAR(exact.value(1, 0, nullptr) - smooth.value(1, 0, nullptr), smooth.smoothing_gap(), 1e-15);
  }
}

TEST(Losses, DerivativesMatchFiniteDifferences) {
  for (auto [k, mu] : std::vector<std::pair<LossKind, double>>{{LossKind::Squared, 0},
                                                               {LossKind::Huber, 0},
                                                               {LossKind::Absolute, 0.2},
                                                               {LossKind::Pinball, 0.2},
                                                               {LossKind::Absolute, 0},
                                                               {LossKind::Pinball, 0}}) {
    const Loss l = make_loss(k, mu);
    for (double f : {-1.93, -0.61, -0.05, 0.13, 0.66, 2.4}) {  // away from the kinks at 0, +-0.2, +-0.7
      double d = 0;
      l.value(f, 0.01, &d);
      const double h = 1e-6;
      const double fd = (l.value(f + h, 0.01, nullptr) - l.value(f - h, 0.01, nullptr)) / (2 * h);
      EXPECT_NEAR(d, fd, 1e-7) << loss_name(k) << " mu " << mu << " at " << f;
    }
  }
  const Loss ce = make_loss(LossKind::CrossEntropy);
  double p[3] = {0.2, 0.5, 0.3}, g[3];
  ce.row(p, nullptr, 2, 3, g);
  for (int c = 0; c < 3; ++c) {
    double up[3] = {p[0], p[1], p[2]}, down[3] = {p[0], p[1], p[2]};
    up[c] += 1e-7;
    down[c] -= 1e-7;
    EXPECT_NEAR(g[c], (ce.row(up, nullptr, 2, 3, nullptr) - ce.row(down, nullptr, 2, 3, nullptr)) / 2e-7, 1e-6);
  }
}

TEST(Losses, ConstantWeightGradientAndHessianMatchFiniteDifferences) {
  const Stack reg = avg::testing::random_regression(40, 3, 2, 15);
  const Stack cls = avg::testing::random_classification(40, 3, 4, 16);
  Draw d(17);
  Vector rows(40);
  for (Eigen::Index i = 0; i < 40; ++i) rows(i) = d.uniform(0.1, 2);
  Vector w(3);
  w << 0.5, 0.3, 0.2;
  for (auto [k, mu] : std::vector<std::pair<LossKind, double>>{{LossKind::Squared, 0},
                                                               {LossKind::Huber, 0},
                                                               {LossKind::Absolute, 0.4},
                                                               {LossKind::Pinball, 0.4},
                                                               {LossKind::CrossEntropy, 0}}) {
    const Stack& s = k == LossKind::CrossEntropy ? cls : reg;
    const Loss l = make_loss(k, mu);
    Vector g;
    weighted_constant_loss(s, rows, w, l, &g);
    const Matrix H = weighted_constant_hessian(s, rows, w, l);
    const double h = 1e-6;
    for (int j = 0; j < 3; ++j) {
      Vector up = w, down = w, gu, gd;
      up(j) += h;
      down(j) -= h;
      const double fd = (weighted_constant_loss(s, rows, up, l, &gu) - weighted_constant_loss(s, rows, down, l, &gd)) / (2 * h);
      EXPECT_NEAR(g(j), fd, 1e-7 * (1 + std::abs(fd))) << loss_name(k);
      // Piecewise-quadratic losses: a row crossing a kink within h would spoil the difference, but
      // at these random points none does (the tolerance would show it).
      const Vector column = (gu - gd) / (2 * h);
      for (int i = 0; i < 3; ++i) EXPECT_NEAR(H(i, j), column(i), 1e-5 * (1 + std::abs(column(i)))) << loss_name(k) << " " << i << "," << j;
    }
  }
}

// The B-spline basis by the textbook recursion, written independently of the library's.
double cox_de_boor(int i, int p, double x, const std::vector<double>& t) {
  if (p == 0) {
    if (t[static_cast<std::size_t>(i)] <= x && x < t[static_cast<std::size_t>(i) + 1]) return 1;
    // The right end belongs to the last non-empty interval.
    if (x == t.back() && t[static_cast<std::size_t>(i)] < x && t[static_cast<std::size_t>(i) + 1] == x) return 1;
    return 0;
  }
  double out = 0;
  const double a = t[static_cast<std::size_t>(i + p)] - t[static_cast<std::size_t>(i)];
  const double b = t[static_cast<std::size_t>(i + p + 1)] - t[static_cast<std::size_t>(i + 1)];
  if (a > 0) out += (x - t[static_cast<std::size_t>(i)]) / a * cox_de_boor(i, p - 1, x, t);
  if (b > 0) out += (t[static_cast<std::size_t>(i + p + 1)] - x) / b * cox_de_boor(i + 1, p - 1, x, t);
  return out;
}

TEST(Basis, CubicBSplinesMatchTheRecursionAndBernsteinWithoutKnots) {
  double b[16];
  for (double x : {0.0, 0.1, 0.37, 0.5, 0.99, 1.0}) {
    cubic_bspline(x, 0, b);  // no interior knot: the Bernstein polynomials of degree 3
    EXPECT_NEAR(b[0], std::pow(1 - x, 3), 1e-14);
    EXPECT_NEAR(b[1], 3 * x * std::pow(1 - x, 2), 1e-14);
    EXPECT_NEAR(b[2], 3 * x * x * (1 - x), 1e-14);
    EXPECT_NEAR(b[3], x * x * x, 1e-14);
    for (int knots : {1, 3, 5}) {
      std::vector<double> t{0, 0, 0, 0};
      for (int j = 1; j <= knots; ++j) t.push_back(double(j) / (knots + 1));
      t.insert(t.end(), {1, 1, 1, 1});
      cubic_bspline(x, knots, b);
      double sum = 0;
      for (int i = 0; i < knots + 4; ++i) {
        EXPECT_NEAR(b[i], cox_de_boor(i, 3, x, t), 1e-13) << "x " << x << " knots " << knots << " i " << i;
        sum += b[i];
      }
      EXPECT_NEAR(sum, 1, 1e-13);
    }
  }
}

TEST(Basis, RoundTripsThroughJsonAndExpandsTheSame) {
  Draw d(3);
  Matrix z(40, 2);
  for (Eigen::Index i = 0; i < z.rows(); ++i) z.row(i) << d.uniform(-1, 3), d.normal();
  for (BasisKind k : {BasisKind::Raw, BasisKind::Spline, BasisKind::Fourier}) {
    const Basis b = fit_basis(k, z, 3, 7, 0.8, 11);
    const Basis back = Basis::from_json(nlohmann::ordered_json::parse(b.to_json().dump()));
    EXPECT_EQ((b.expand(z) - back.expand(z)).cwiseAbs().maxCoeff(), 0.0) << basis_name(k);
    EXPECT_EQ(b.expand(z).cols(), k == BasisKind::Raw ? 3 : (k == BasisKind::Spline ? 1 + 2 * 7 : 1 + 7));
  }
  // Raw: the intercept and the standardised columns (mean 0, standard deviation 1 on the fit).
  const RowMatrix phi = fit_basis(BasisKind::Raw, z, 0, 0, 1, 0).expand(z);
  EXPECT_NEAR(phi.col(1).mean(), 0, 1e-12);
  EXPECT_NEAR(phi.col(2).squaredNorm() / z.rows(), 1, 1e-12);
}

// The objective computed naively: weights by an explicit softmax per row, then the loss.
double naive_softmax_objective(const Stack& s, const RowMatrix& phi, const Loss& loss, double lambda, double lambda0, const Vector& theta) {
  const Eigen::Map<const Matrix> Theta(theta.data(), s.K, phi.cols());
  Matrix W(s.rows(), s.K);
  for (Eigen::Index i = 0; i < W.rows(); ++i) {
    Vector a = Theta * phi.row(i).transpose();
    double sum = 0;
    for (int k = 0; k < s.K; ++k) sum += std::exp(a(k));
    for (int k = 0; k < s.K; ++k) W(i, k) = std::exp(a(k)) / sum;
  }
  return mean_loss(s, combine(s, W), loss) + lambda * Theta.rightCols(phi.cols() - 1).squaredNorm() + lambda0 * Theta.col(0).squaredNorm();
}

template <class F>
void expect_gradient_matches(const F& f, const Vector& theta, double tolerance, const std::string& what) {
  Vector g;
  f(theta, &g);
  ASSERT_EQ(g.size(), theta.size());
  for (Eigen::Index j = 0; j < theta.size(); ++j) {
    Vector up = theta, down = theta;
    const double h = 1e-5;
    up(j) += h;
    down(j) -= h;
    const double fd = (f(up, nullptr) - f(down, nullptr)) / (2 * h);
    EXPECT_NEAR(g(j), fd, tolerance * (1 + std::abs(fd))) << what << " parameter " << j;
  }
}

TEST(SoftmaxLinear, ValueAndGradientMatchANaiveComputationAndFiniteDifferences) {
  const Stack reg = avg::testing::random_regression(60, 3, 2, 5);
  const Stack cls = avg::testing::random_classification(60, 3, 4, 6);
  Draw d(8);
  Matrix z(60, 2);
  for (Eigen::Index i = 0; i < z.rows(); ++i) z.row(i) << d.uniform(), d.uniform();
  for (BasisKind bk : {BasisKind::Raw, BasisKind::Spline, BasisKind::Fourier}) {
    const RowMatrix phi = fit_basis(bk, z, 2, 5, 0.7, 2).expand(z);
    for (auto [kind, mu] : std::vector<std::pair<LossKind, double>>{{LossKind::Squared, 0},
                                                                    {LossKind::Huber, 0},
                                                                    {LossKind::Absolute, 0.05},
                                                                    {LossKind::Pinball, 0.05},
                                                                    {LossKind::CrossEntropy, 0},
                                                                    {LossKind::Squared, -1}}) {
      const bool classification = kind == LossKind::CrossEntropy || mu < 0;  // squared on probabilities: Brier
      const Stack& s = classification ? cls : reg;
      const Loss loss = make_loss(kind, std::max(mu, 0.0));
      Vector theta(s.K * phi.cols());
      for (Eigen::Index j = 0; j < theta.size(); ++j) theta(j) = d.normal() * 0.7;
      const std::string what = basis_name(bk) + "/" + loss_name(kind);
      EXPECT_NEAR(softmax_linear_objective(s, phi, loss, 0.03, 0.002, theta, nullptr),
                  naive_softmax_objective(s, phi, loss, 0.03, 0.002, theta), 1e-12)
          << what;
      expect_gradient_matches([&](const Vector& t, Vector* g) { return softmax_linear_objective(s, phi, loss, 0.03, 0.002, t, g); }, theta,
                              1e-6, what);
    }
  }
}

TEST(SoftmaxLinear, ManyBlocksGiveTheSameObjectiveAsOne) {
  // 5000 rows span three blocks of the parallel sum; compare with the naive single pass.
  const Stack s = avg::testing::random_regression(5000, 4, 3, 9);
  Draw d(10);
  Matrix z(5000, 3);
  for (Eigen::Index i = 0; i < z.rows(); ++i) z.row(i) << d.normal(), d.normal(), d.normal();
  const RowMatrix phi = fit_basis(BasisKind::Raw, z, 0, 0, 1, 0).expand(z);
  Vector theta(4 * phi.cols());
  for (Eigen::Index j = 0; j < theta.size(); ++j) theta(j) = d.normal();
  const Loss loss = make_loss(LossKind::Squared);
  EXPECT_NEAR(softmax_linear_objective(s, phi, loss, 0.1, 0, theta, nullptr), naive_softmax_objective(s, phi, loss, 0.1, 0, theta), 1e-11);
}

TEST(MlpWeights, GradientMatchesFiniteDifferences) {
  const Stack reg = avg::testing::random_regression(50, 3, 2, 12);
  const Stack cls = avg::testing::random_classification(50, 3, 3, 13);
  Draw d(14);
  Matrix u(2, 50);
  for (Eigen::Index i = 0; i < u.cols(); ++i) u.col(i) << d.normal(), d.normal();
  const mlp::Model<double> shape = make_weight_net(2, 4, 3, 1);
  Vector theta = flatten(shape);
  for (Eigen::Index j = 0; j < theta.size(); ++j) theta(j) += 0.5 * d.normal();  // off the zero output layer
  for (auto [kind, mu] : std::vector<std::pair<LossKind, double>>{
           {LossKind::Squared, 0}, {LossKind::Huber, 0}, {LossKind::Pinball, 0.05}, {LossKind::CrossEntropy, 0}}) {
    const Stack& s = kind == LossKind::CrossEntropy ? cls : reg;
    const Loss loss = make_loss(kind, mu);
    expect_gradient_matches([&](const Vector& t, Vector* g) { return mlp_objective(s, u, loss, 0.02, 0.001, shape, t, g); }, theta, 1e-6,
                            "mlp/" + loss_name(kind));
    // The weights are a softmax of the net's output: on the simplex at every row.
    mlp::Model<double> net = shape;
    unflatten(theta, net);
    const Matrix W = mlp::forward<double>(net, u);
    for (Eigen::Index i = 0; i < W.cols(); ++i) {
      EXPECT_NEAR(W.col(i).sum(), 1, 1e-12);
      EXPECT_GE(W.col(i).minCoeff(), 0);
    }
  }
}

}  // namespace
