// Judging rankers: weighted tau, Kendall tau-b, Spearman, Pearson and top-1 regret against values
// worked out by hand (ties included) and the value scipy's documentation publishes.
#include <gtest/gtest.h>

#include <cmath>

#include "evaluators/algorithms/rank_correlation.hpp"

namespace caulk::eval {
namespace {

TEST(WeightedTau, HandWorkedWithoutTies) {
  // x = (1, 2, 3), y = (1, 3, 2). Ranked by x (decreasing): weights 1, 1/2, 1/3 for elements
  // 2, 1, 0. Pairs: (0,1) concordant 5/6, (0,2) concordant 4/3, (1,2) discordant 3/2; total 11/3:
  // tau = (11/3 - 2 * 3/2) / (11/3) = 2/11. Ranked by y the weights are 1, 1/2, 1/3 for elements
  // 1, 2, 0 and again tau = 2/11; the average is 2/11.
  EXPECT_NEAR(weighted_tau({1, 2, 3}, {1, 3, 2}), 2.0 / 11, 1e-15);
}

TEST(WeightedTau, HandWorkedWithATie) {
  // x = (1, 1, 2), y = (1, 2, 3): the pair (0, 1) is tied in x with weight 1/3 + 1/2 = 5/6; the
  // others are concordant; total 11/3. tau = (11/3 - 5/6) / sqrt(11/3 - 5/6) / sqrt(11/3)
  // = sqrt(17/22) in both directions.
  EXPECT_NEAR(weighted_tau({1, 1, 2}, {1, 2, 3}), std::sqrt(17.0 / 22), 1e-15);
}

TEST(WeightedTau, ScipyDocumentationExample) {
  // scipy.stats.weightedtau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]).statistic, as its docs print it.
  EXPECT_NEAR(weighted_tau({12, 2, 1, 12, 2}, {1, 4, 7, 1, 0}), -0.56694968153682723, 1e-15);
}

TEST(WeightedTau, PerfectAgreementAndReversal) {
  EXPECT_DOUBLE_EQ(weighted_tau({0.1, 0.5, 0.3, 0.9}, {1, 5, 3, 9}), 1.0);
  EXPECT_DOUBLE_EQ(weighted_tau({0.1, 0.5, 0.3, 0.9}, {9, 5, 7, 1}), -1.0);
}

TEST(WeightedTau, TopMattersMoreThanBottom) {
  // One swap at the top costs more than one swap at the bottom.
  const std::vector<double> truth = {5, 4, 3, 2, 1};
  EXPECT_LT(weighted_tau({4, 5, 3, 2, 1}, truth), weighted_tau({5, 4, 3, 1, 2}, truth));
}

TEST(WeightedTau, ConstantSideIsNaN) {
  EXPECT_TRUE(std::isnan(weighted_tau({1, 1, 1}, {1, 2, 3})));
  EXPECT_TRUE(std::isnan(weighted_tau({1, 2, 3}, {4, 4, 4})));
}

TEST(KendallTau, HandWorkedTauB) {
  // x = (1, 1, 2), y = (1, 2, 3): C = 2, D = 0, one pair tied in x only:
  // tau_b = 2 / sqrt((3 - 1)(3 - 0)) = 2 / sqrt(6).
  EXPECT_NEAR(kendall_tau_b({1, 1, 2}, {1, 2, 3}), 2 / std::sqrt(6.0), 1e-15);
  // scipy.stats.kendalltau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]): C = 2, D = 6, ties in x: 2 pairs,
  // in y: 1 pair (both in the same pair (0, 3)): (2 - 6) / sqrt((10 - 2)(10 - 1)) = -4 / sqrt(72).
  EXPECT_NEAR(kendall_tau_b({12, 2, 1, 12, 2}, {1, 4, 7, 1, 0}), -4 / std::sqrt(72.0), 1e-15);
}

TEST(Spearman, AverageRanksForTies) {
  // ranks x = (1.5, 1.5, 3), y = (1, 2, 3): Pearson of those = 0.8660254 (sqrt(3)/2).
  EXPECT_NEAR(spearman({1, 1, 2}, {1, 2, 3}), std::sqrt(3.0) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(spearman({1, 10, 100}, {1, 2, 3}), 1.0);  // monotone, not linear
}

TEST(Pearson, HandWorked) {
  // x = (1, 2, 3), y = (1, 3, 2): covariance 1/2 ... r = 0.5.
  EXPECT_NEAR(pearson({1, 2, 3}, {1, 3, 2}), 0.5, 1e-15);
  EXPECT_TRUE(std::isnan(pearson({2, 2, 2}, {1, 2, 3})));
}

TEST(TopOneRegret, BestMinusTheTopRankedModelsTruth) {
  EXPECT_DOUBLE_EQ(top1_regret({0.3, 0.9, 0.1}, {0.8, 0.7, 0.95}), 0.95 - 0.7);
  EXPECT_DOUBLE_EQ(top1_regret({0.3, 0.9, 0.1}, {0.8, 0.99, 0.95}), 0.0);
}

TEST(RankCorrelation, RejectsMismatchedOrTooShortInputs) {
  EXPECT_THROW(weighted_tau({1, 2}, {1, 2, 3}), std::invalid_argument);
  EXPECT_THROW(spearman({1}, {1}), std::invalid_argument);
  EXPECT_THROW(pearson({1, NAN}, {1, 2}), std::invalid_argument);
}

// A non-finite value says which side it is on (before: "weighted tau: value 1 is not finite").
TEST(RankCorrelation, NonFiniteValuesSayWhichSide) {
  try {
    weighted_tau({0.1, -INFINITY, 0.3}, {0.5, 0.6, 0.7});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("weighted tau: score number 1 (counting from 0) is -inf"), std::string::npos) << e.what();
  }
  try {
    kendall_tau_b({0.1, 0.2, 0.3}, {0.5, NAN, 0.7});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("Kendall tau: ground truth number 1 (counting from 0) is nan"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace caulk::eval
