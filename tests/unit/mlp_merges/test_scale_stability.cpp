// Prediction stability under scaling: s = 1 reproduces the model (agreement 1, its own accuracy
// counted by hand); a bias-free ReLU net is positively homogeneous (f(x; s theta) = s^L f(x; theta)
// before the softmax), so scaling every layer by s > 0 never changes a predicted class; s = 0 makes
// every output uniform, so every sample is predicted class 0 (the first maximum).
#include <gtest/gtest.h>

#include "caulk/error.hpp"
#include "merge_test_support.hpp"
#include "mlp_merges/algorithms/model_ops.hpp"
#include "mlp_merges/algorithms/scale_stability.hpp"

namespace caulk::mlp_merges {
namespace {

mlp::Samples samples_for(const Mat<double>& X, int classes) {
  mlp::Samples s;
  s.X = X.transpose().cast<float>();
  for (Eigen::Index i = 0; i < X.rows(); ++i) s.y.classes.push_back(static_cast<int>((i * 5) % classes));
  return s;
}

TEST(ScaleStability, ScaleOneIsTheModelItself) {
  const mlp::Model<float> m = testing::random_model({5, 8, 4}, 3);
  std::mt19937_64 rng(4);
  const Mat<double> X = testing::random_matrix(200, 5, rng).cast<float>().cast<double>();
  const mlp::Samples s = samples_for(X, 4);
  const Mat<double> P = testing::hand_forward(m, X).output;
  double correct = 0;
  for (Eigen::Index i = 0; i < 200; ++i) {
    Eigen::Index c;
    P.row(i).maxCoeff(&c);
    correct += c == s.y.classes[static_cast<std::size_t>(i)];
  }
  const auto points = scale_stability(m, s, {1.0});
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].agreement, 1.0);
  EXPECT_DOUBLE_EQ(points[0].accuracy, correct / 200);
}

TEST(ScaleStability, ABiasFreeReluNetKeepsItsPredictionsUnderPositiveScaling) {
  const mlp::Model<float> m = testing::random_model({6, 10, 7, 3}, 5, /*biases=*/false);
  std::mt19937_64 rng(6);
  const mlp::Samples s = samples_for(testing::random_matrix(300, 6, rng), 3);
  for (const auto& p : scale_stability(m, s, {0.05, 0.3, 0.8, 1.7, 6.0, 25.0})) EXPECT_EQ(p.agreement, 1.0) << "s = " << p.scale;

  // With biases the net is not homogeneous: strong shrinking changes some predictions.
  const mlp::Model<float> biased = testing::random_model({6, 10, 7, 3}, 5, /*biases=*/true);
  const auto b = scale_stability(biased, s, {0.05});
  EXPECT_LT(b[0].agreement, 1.0);
}

TEST(ScaleStability, ScaleZeroPredictsTheFirstClassEverywhere) {
  const mlp::Model<float> m = testing::random_model({4, 6, 3}, 8);
  std::mt19937_64 rng(9);
  const Mat<double> X = testing::random_matrix(120, 4, rng).cast<float>().cast<double>();
  const mlp::Samples s = samples_for(X, 3);
  const Mat<double> P = testing::hand_forward(m, X).output;
  double first_class = 0, labelled_first = 0;
  for (Eigen::Index i = 0; i < 120; ++i) {
    Eigen::Index c;
    P.row(i).maxCoeff(&c);
    first_class += c == 0;
    labelled_first += s.y.classes[static_cast<std::size_t>(i)] == 0;
  }
  const auto p = scale_stability(m, s, {0.0});
  EXPECT_DOUBLE_EQ(p[0].agreement, first_class / 120);
  EXPECT_DOUBLE_EQ(p[0].accuracy, labelled_first / 120);
}

TEST(ScaleStability, OneLayerScalesOnlyThatLayer) {
  const mlp::Model<float> m = testing::random_model({4, 6, 3}, 8);
  const mlp::Model<float> scaled = scale_parameters(m, 3.0, 1);
  EXPECT_EQ(scaled.layers[0].W, m.layers[0].W);
  EXPECT_LT((scaled.layers[1].W - 3.0f * m.layers[1].W).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_LT((scaled.layers[1].b - 3.0f * m.layers[1].b).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_THROW(scale_parameters(m, 2.0, 2), Error);
  mlp::Model<float> regression = m;
  regression.output = mlp::Output::Identity;
  mlp::Samples s;
  s.X = Mat<float>::Zero(4, 2);
  s.y.classes = {0, 1};
  EXPECT_THROW(scale_stability(regression, s, {1.0}), Error);
}

}  // namespace
}  // namespace caulk::mlp_merges
