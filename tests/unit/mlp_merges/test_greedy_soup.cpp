// Greedy soup on constructed cases whose answer is known: one-parameter models judged by how close
// their parameter is to 1 (so every soup's score is a hand calculation), where the second-best
// ingredient hurts and the third helps; the strict rule on ties; and the held-out metrics against
// hand-computed accuracy, log loss and squared error.
#include <gtest/gtest.h>

#include <cmath>

#include "caulk/error.hpp"
#include "mlp_merges/algorithms/greedy_soup.hpp"
#include "merge_test_support.hpp"

namespace caulk::mlp_merges {
namespace {

using mlp::Mat;

// A two-layer model whose first weight is theta (the rest is fixed), so averages are averages of theta.
mlp::Model<float> ingredient(float theta) {
  mlp::Model<float> m;
  m.layers.push_back({Mat<float>::Constant(1, 1, theta), mlp::Vec<float>::Zero(1)});
  m.layers.push_back({Mat<float>::Constant(1, 1, 1.0f), mlp::Vec<float>::Zero(1)});
  m.feature_layer = 0;
  return m;
}
double theta_of(const mlp::Model<float>& m) { return m.layers[0].W(0, 0); }

TEST(GreedySoup, KeepsExactlyTheIngredientsThatHelp) {
  // Scores (higher is better): -|theta - 1|. In input order: D (2.5), C (1.55), A (0.8), B (0.5).
  // Sorted: A (-0.2), B (-0.5), C (-0.55), D (-1.5).
  // {A, B}: mean 0.65, -0.35 < -0.2: B hurts, dropped. {A, C}: mean 1.175, -0.175 > -0.2: kept.
  // {A, C, D}: mean 1.6167, -0.6167: dropped. The soup is the mean of A and C.
  const std::vector<mlp::Model<float>> models{ingredient(2.5f), ingredient(1.55f), ingredient(0.8f), ingredient(0.5f)};
  auto score = [](const mlp::Model<float>& m) { return -std::abs(theta_of(m) - 1.0); };
  const GreedySoupResult r = greedy_soup(models, score, true);
  EXPECT_EQ(r.order, (std::vector<std::size_t>{2, 3, 1, 0}));
  EXPECT_EQ(r.kept, (std::vector<bool>{false, true, true, false}));
  EXPECT_NEAR(theta_of(r.soup), (0.8 + 1.55) / 2, 1e-6);
  EXPECT_NEAR(r.score, -0.175, 1e-6);
  EXPECT_NEAR(r.candidate[3], -0.35, 1e-6);                                  // A + B
  EXPECT_NEAR(r.candidate[1], -0.175, 1e-6);                                 // A + C
  EXPECT_NEAR(r.candidate[0], -std::abs((0.8 + 1.55 + 2.5) / 3 - 1), 1e-6);  // A + C + D
  EXPECT_NEAR(r.individual[0], -1.5, 1e-6);

  // The same with "lower is better" (the distance itself).
  const GreedySoupResult low = greedy_soup(
      models, [](const mlp::Model<float>& m) { return std::abs(theta_of(m) - 1.0); }, false);
  EXPECT_EQ(low.kept, r.kept);
}

TEST(GreedySoup, GivenIndividualScoresOnlyTheSoupsAreScored) {
  // As a distributed node runs it: the ingredients' own scores computed elsewhere, the greedy
  // loop here; the result is the one-step call's, and `score` sees only the K - 1 soups tried.
  const std::vector<mlp::Model<float>> models{ingredient(2.5f), ingredient(1.55f), ingredient(0.8f), ingredient(0.5f)};
  auto score = [](const mlp::Model<float>& m) { return -std::abs(theta_of(m) - 1.0); };
  std::vector<double> individual;
  for (const auto& m : models) individual.push_back(score(m));
  int calls = 0;
  const GreedySoupResult r = greedy_soup(
      models, individual,
      [&](const mlp::Model<float>& m) {
        ++calls;
        return score(m);
      },
      true);
  const GreedySoupResult whole = greedy_soup(models, score, true);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.order, whole.order);
  EXPECT_EQ(r.kept, whole.kept);
  EXPECT_EQ(r.individual, whole.individual);
  EXPECT_EQ(r.candidate, whole.candidate);
  EXPECT_EQ(r.score, whole.score);
  EXPECT_EQ(theta_of(r.soup), theta_of(whole.soup));
  EXPECT_THROW(greedy_soup(models, std::vector<double>{1.0, 2.0}, score, true), Error);
}

TEST(GreedySoup, ATieIsNotAnImprovement) {
  // A copy of the best ingredient leaves the soup's score exactly equal: not kept. Equal
  // individual scores keep the input order (the first copy leads).
  const std::vector<mlp::Model<float>> models{ingredient(0.75f), ingredient(0.75f), ingredient(1.5f)};
  auto score = [](const mlp::Model<float>& m) { return -std::abs(theta_of(m) - 1.0); };
  const GreedySoupResult r = greedy_soup(models, score, true);
  EXPECT_EQ(r.order, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(r.kept, (std::vector<bool>{true, false, true}));  // {0.75, 1.5}: mean 1.125, -0.125 > -0.25
  EXPECT_DOUBLE_EQ(r.candidate[1], r.individual[0]);
  // A plateau score (every soup equal): only the first ingredient.
  const GreedySoupResult flat = greedy_soup(
      models, [](const mlp::Model<float>&) { return 0.5; }, true);
  EXPECT_EQ(flat.kept, (std::vector<bool>{true, false, false}));
}

TEST(GreedySoup, HeldOutMetricsMatchHandComputations) {
  const mlp::Model<float> m = testing::random_model({3, 4, 3}, 7);
  std::mt19937_64 rng(8);
  const Mat<double> X = testing::random_matrix(50, 3, rng).cast<float>().cast<double>();
  mlp::Samples s;
  s.X = X.transpose().cast<float>();
  for (int i = 0; i < 50; ++i) s.y.classes.push_back(i % 3);
  const Mat<double> P = testing::hand_forward(m, X).output;
  double correct = 0, nll = 0;
  for (int i = 0; i < 50; ++i) {
    Eigen::Index best;
    P.row(i).maxCoeff(&best);
    correct += best == s.y.classes[i];
    nll -= std::log(P(i, s.y.classes[i]));
  }
  EXPECT_NEAR(model_metric(m, s, SoupMetric::Accuracy), correct / 50, 1e-12);
  EXPECT_NEAR(model_metric(m, s, SoupMetric::LogLoss), nll / 50, 1e-5);
  EXPECT_THROW(model_metric(m, s, SoupMetric::Mse), Error);

  const mlp::Model<float> reg = testing::random_model({3, 4, 2}, 9, true, mlp::Output::Identity);
  mlp::Samples t;
  t.X = s.X;
  t.y.values = testing::random_matrix(2, 50, rng).cast<float>();
  const Mat<double> Y = testing::hand_forward(reg, X).output;  // 50 x 2
  EXPECT_NEAR(model_metric(reg, t, SoupMetric::Mse), (Y - t.y.values.cast<double>().transpose()).squaredNorm() / 100, 1e-5);
  EXPECT_THROW(model_metric(reg, t, SoupMetric::Accuracy), Error);
}

}  // namespace
}  // namespace caulk::mlp_merges
