// The distillation baseline against its loss written out and finite differences of it, and the
// aggregation of repeated runs against hand-computed means and standard deviations.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "caulk/error.hpp"
#include "tuners/algorithms/distillation.hpp"
#include "tuners/algorithms/repeated_runs.hpp"

namespace caulk::tune {
namespace {

TEST(Distillation, SoftTargetsAreTheSoftmaxOfTheMeanLogitsOverT) {
  Matrix a(2, 3), b(2, 3);
  a << 1, 2, 0,  //
      0, 0, 4;
  b << 3, 0, 0,  //
      2, 2, 0;
  const Matrix q = soft_targets({a, b}, 2.0);
  // Row 0: mean logits (2, 1, 0), over T = 2: (1, 0.5, 0).
  const double z0 = std::exp(1.0) + std::exp(0.5) + 1;
  EXPECT_NEAR(q(0, 0), std::exp(1.0) / z0, 1e-15);
  EXPECT_NEAR(q(0, 1), std::exp(0.5) / z0, 1e-15);
  EXPECT_NEAR(q(0, 2), 1 / z0, 1e-15);
  // Row 1: mean (1, 1, 2), over T: (0.5, 0.5, 1).
  const double z1 = 2 * std::exp(0.5) + std::exp(1.0);
  EXPECT_NEAR(q(1, 2), std::exp(1.0) / z1, 1e-15);
  EXPECT_NEAR(q.row(1).sum(), 1.0, 1e-15);
  EXPECT_THROW(soft_targets({a, Matrix(3, 3)}, 2.0), Error);
  EXPECT_THROW(soft_targets({a}, 0.0), Error);
}

// A linear student (one layer: the logits are W x + b) so the trace's logits are easy to perturb.
struct Student {
  mlp::Model<float> model;
  mlp::Samples data;
  Matrix q;  // N x C soft targets
};

Student student(int n) {
  std::mt19937_64 rng(4);
  std::normal_distribution<double> nd;
  Student s;
  mlp::Dense<float> hidden{mlp::Mat<float>(5, 4), mlp::Vec<float>(5)}, head{mlp::Mat<float>(3, 5), mlp::Vec<float>(3)};
  for (auto* d : {&hidden, &head}) {
    for (Eigen::Index i = 0; i < d->W.size(); ++i) d->W.data()[i] = float(nd(rng));
    for (Eigen::Index i = 0; i < d->b.size(); ++i) d->b[i] = float(0.3 * nd(rng));
  }
  s.model.layers = {hidden, head};
  s.model.activation = mlp::Activation::Tanh;
  s.model.feature_layer = 0;
  s.data.X.resize(4, n);
  for (Eigen::Index i = 0; i < s.data.X.size(); ++i) s.data.X.data()[i] = float(nd(rng));
  for (int i = 0; i < n; ++i) s.data.y.classes.push_back(i % 3);
  Matrix logits(n, 3);
  for (Eigen::Index i = 0; i < logits.size(); ++i) logits.data()[i] = 2 * nd(rng);
  s.q = soft_targets({logits}, 1.0);
  return s;
}

TEST(Distillation, ExtraTermPlusCrossEntropyIsTheDistillationLossWithItsGradient) {
  const int n = 6;
  const Student s = student(n);
  const double T = 2.5, alpha = 0.7;
  std::vector<std::size_t> index(n);
  for (int i = 0; i < n; ++i) index[static_cast<std::size_t>(i)] = static_cast<std::size_t>(i);
  DistillationLoss loss(s.q, s.data.y.classes, T, alpha);
  mlp::Trace<float> t;
  mlp::forward(s.model, s.data.X, &t);
  mlp::Mat<float> dz;
  mlp::Model<float> unused = mlp::zeros_like(s.model);
  const double ce = mlp::loss_and_output_gradient<float>(s.model, t, s.data.y, double(n), &dz);
  const double total = ce + loss.add(s.model, t, index, double(n), {}, dz, unused);

  const Matrix logits = t.pre.back().cast<double>();
  const Matrix q = s.q.transpose();
  EXPECT_NEAR(total, distillation_loss(logits, s.data.y.classes, q, T, alpha), 1e-6);
  // d loss / d logits against central differences of the written-out loss (mean over samples).
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index c = 0; c < 3; ++c) {
      Matrix up = logits, down = logits;
      const double h = 1e-6;
      up(c, j) += h;
      down(c, j) -= h;
      const double fd =
          (distillation_loss(up, s.data.y.classes, q, T, alpha) - distillation_loss(down, s.data.y.classes, q, T, alpha)) / (2 * h);
      EXPECT_NEAR(dz(c, j), fd, 5e-6) << c << "," << j;
    }
}

TEST(Distillation, SoftTargetsFollowTheSamplesPositions) {
  // The same sample seen as the second column of a chunk uses its own row of soft targets.
  const Student s = student(4);
  DistillationLoss loss(s.q, s.data.y.classes, 1.5, 0.5);
  const std::vector<std::size_t> index{2, 0};
  const mlp::Samples chunk = s.data.subset(index);
  mlp::Trace<float> t;
  mlp::forward(s.model, chunk.X, &t);
  mlp::Mat<float> dz;
  mlp::Model<float> unused = mlp::zeros_like(s.model);
  const double ce = mlp::loss_and_output_gradient<float>(s.model, t, chunk.y, 2.0, &dz);
  const double total = ce + loss.add(s.model, t, index, 2.0, {}, dz, unused);
  Matrix q(3, 2);
  q.col(0) = s.q.row(2).transpose();
  q.col(1) = s.q.row(0).transpose();
  EXPECT_NEAR(total, distillation_loss(t.pre.back().cast<double>(), chunk.y.classes, q, 1.5, 0.5), 1e-6);
}

TEST(Distillation, BadParametersAreRefused) {
  const Student s = student(3);
  EXPECT_THROW(DistillationLoss(s.q, s.data.y.classes, 1.0, 1.5), Error);
  EXPECT_THROW(DistillationLoss(s.q, s.data.y.classes, -1.0, 0.5), Error);
  EXPECT_THROW(DistillationLoss(s.q, {0, 1}, 1.0, 0.5), Error);
}

TEST(Aggregate, MeanAndSampleStandardDeviationPerGroup) {
  const std::vector<std::string> keys{"bt:n40:s0", "kd:n40:s0", "bt:n40:s1", "bt:n40:s2", "kd:n40:s1", "solo:n40:s0"};
  Matrix v(6, 2);
  v << 0.7, 1.0,          //
      0.5, 2.0,           //
      0.8, 3.0,           //
      0.9, std::nan(""),  //
      0.6, 4.0,           //
      0.3, 5.0;
  const auto g = summarize_groups(keys, v, ":s[0-9]+$");
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].group, "bt:n40");
  EXPECT_EQ(g[1].group, "kd:n40");
  EXPECT_EQ(g[2].group, "solo:n40");
  EXPECT_EQ(g[0].runs, 3u);
  EXPECT_NEAR(g[0].mean[0], 0.8, 1e-15);
  EXPECT_NEAR(g[0].std[0], 0.1, 1e-15);   // sqrt((0.01 + 0 + 0.01) / 2)
  EXPECT_NEAR(g[0].mean[1], 2.0, 1e-15);  // the NaN run is left out: (1 + 3) / 2
  EXPECT_NEAR(g[0].std[1], std::sqrt(2.0), 1e-15);
  EXPECT_NEAR(g[1].mean[0], 0.55, 1e-15);
  EXPECT_NEAR(g[1].std[0], std::sqrt(0.005), 1e-15);
  EXPECT_TRUE(std::isnan(g[2].std[0]));  // one run: no spread
  EXPECT_EQ(group_of("model:s3", ""), "model:s3");
  EXPECT_THROW(summarize_groups(keys, v, "(unclosed"), Error);
  EXPECT_THROW(summarize_groups({"a"}, v, ""), Error);
}

}  // namespace
}  // namespace caulk::tune
