// Metrics of predictions (prediction_metrics.hpp) against values worked out by hand, the values
// scikit-learn's documentation publishes, and a brute-force ECE written another way; plus every
// input the functions must refuse.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "caulk/error.hpp"
#include "caulk/metrics/prediction_metrics.hpp"

namespace caulk::metrics {
namespace {

using ::testing::HasSubstr;

Matrix rows(std::initializer_list<std::initializer_list<double>> values) {
  Matrix m(static_cast<Eigen::Index>(values.size()), static_cast<Eigen::Index>(values.begin()->size()));
  Eigen::Index i = 0;
  for (const auto& row : values) {
    Eigen::Index j = 0;
    for (double v : row) m(i, j++) = v;
    ++i;
  }
  return m;
}

// The message of the caulk::Error that f throws ("" and a failure when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no caulk::Error thrown";
  return "";
}

// ---------------------------------------------------------------------------- classification

// Four samples, three classes:
//   row  probabilities     label  predicted  confidence  correct
//   0    (0.7, 0.2, 0.1)   0      0          0.7         yes
//   1    (0.1, 0.6, 0.3)   2      1          0.6         no
//   2    (0.2, 0.2, 0.6)   2      2          0.6         yes
//   3    (0.5, 0.4, 0.1)   1      0          0.5         no
const Matrix kFourByThree = rows({{0.7, 0.2, 0.1}, {0.1, 0.6, 0.3}, {0.2, 0.2, 0.6}, {0.5, 0.4, 0.1}});
const std::vector<int> kFourLabels = {0, 2, 2, 1};

TEST(ClassificationMetrics, HandWorkedAccuracy) {
  // Rows 0 and 2 are right: 2 / 4.
  EXPECT_DOUBLE_EQ(accuracy(kFourByThree, kFourLabels), 0.5);
}

TEST(ClassificationMetrics, HandWorkedLogLoss) {
  // True-class probabilities 0.7, 0.3, 0.6, 0.4:
  // -(ln 0.7 + ln 0.3 + ln 0.6 + ln 0.4) / 4 = -(-0.356675 - 1.203973 - 0.510826 - 0.916291) / 4
  // = 2.987764 / 4 = 0.7469410259762036.
  EXPECT_NEAR(log_loss(kFourByThree, kFourLabels), 0.7469410259762036, 1e-15);
}

TEST(ClassificationMetrics, HandWorkedExpectedCalibrationError) {
  // 15 bins (k/15, (k+1)/15]. 0.7 * 15 = 10.5: bin 10 = (0.667, 0.733], holding row 0 alone:
  // accuracy 1, confidence 0.7, gap 0.3, weight 1/4. 0.6 = 9/15 exactly: bin 8 = (0.533, 0.6]
  // (right-closed), holding rows 1 and 2: accuracy 1/2, confidence 0.6, gap 0.1, weight 2/4.
  // 0.5 * 15 = 7.5: bin 7 = (0.467, 0.533], holding row 3: accuracy 0, confidence 0.5, gap 0.5,
  // weight 1/4. ECE = 0.3/4 + 0.1 * 2/4 + 0.5/4 = 0.075 + 0.05 + 0.125 = 0.25.
  EXPECT_NEAR(expected_calibration_error(kFourByThree, kFourLabels), 0.25, 1e-15);
}

TEST(ClassificationMetrics, HandWorkedMacroF1) {
  // Predicted (0, 1, 2, 0) against true (0, 2, 2, 1).
  //   class 0: TP 1 (row 0), FP 1 (row 3), FN 0  -> F1 = 2 / (2 + 1 + 0) = 2/3
  //   class 1: TP 0, FP 1 (row 1), FN 1 (row 3)  -> F1 = 0
  //   class 2: TP 1 (row 2), FP 0, FN 1 (row 1)  -> F1 = 2 / (2 + 0 + 1) = 2/3
  // Mean over the three classes: (4/3) / 3 = 4/9.
  EXPECT_NEAR(macro_f1(kFourByThree, kFourLabels), 4.0 / 9, 1e-15);
}

TEST(ClassificationMetrics, AllAtOnceAgreesWithEachFunction) {
  const ClassificationMetrics m = classification_metrics(kFourByThree, kFourLabels);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.5);
  EXPECT_NEAR(m.log_loss, 0.7469410259762036, 1e-15);
  EXPECT_NEAR(m.ece, 0.25, 1e-15);
  EXPECT_NEAR(m.macro_f1, 4.0 / 9, 1e-15);
}

TEST(ClassificationMetrics, PerfectOneHotPredictions) {
  // Every prediction right with probability 1: accuracy 1, loss -ln 1 = 0, every sample in the
  // last bin with accuracy 1 and confidence 1 (ECE 0), F1 1 for each class.
  const Matrix p = rows({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}});
  const ClassificationMetrics m = classification_metrics(p, {0, 1, 2});
  EXPECT_EQ(m.accuracy, 1.0);
  EXPECT_EQ(m.log_loss, 0.0);
  EXPECT_EQ(m.ece, 0.0);
  EXPECT_EQ(m.macro_f1, 1.0);
}

TEST(ClassificationMetrics, ArgmaxTiesGoToTheLowestIndex) {
  const Matrix p = rows({{0.4, 0.4, 0.2}, {0.2, 0.4, 0.4}, {1.0 / 3, 1.0 / 3, 1.0 / 3}});
  EXPECT_EQ(predicted_classes(p), (std::vector<int>{0, 1, 0}));
  // Labels (0, 1, 0): all three right under the lowest-index rule.
  EXPECT_EQ(accuracy(p, {0, 1, 0}), 1.0);
  // Labels (1, 2, 2): all three wrong under it.
  EXPECT_EQ(accuracy(p, {1, 2, 2}), 0.0);
}

TEST(ClassificationMetrics, PredictedClassesTakeLogitsToo) {
  // Any class scores, negative ones included: the largest wins, the lowest index on ties.
  EXPECT_EQ(predicted_classes(rows({{-3.0, -1.0, -2.0}, {5.0, 5.0, 1.0}, {-0.5, 2.0, 2.0}})), (std::vector<int>{1, 0, 1}));
}

TEST(ClassificationMetrics, FractionCorrectAndErrorRateCountHandWorkedCases) {
  EXPECT_DOUBLE_EQ(fraction_correct({0, 1, 2, 1}, {0, 1, 1, 1}), 0.75);
  EXPECT_DOUBLE_EQ(error_rate({0, 1, 2, 1}, {0, 1, 1, 1}), 0.25);
  // One wrong in three is 1/3 exactly as a double, which 1 - 2/3 is not.
  EXPECT_EQ(error_rate({0, 1, 1}, {0, 1, 2}), 1.0 / 3.0);
  EXPECT_NE(1.0 - fraction_correct({0, 1, 1}, {0, 1, 2}), 1.0 / 3.0);
  // accuracy() is fraction_correct over the predicted classes of checked probabilities.
  const Matrix p = rows({{0.7, 0.3}, {0.4, 0.6}, {0.5, 0.5}});
  EXPECT_EQ(accuracy(p, {0, 0, 0}), fraction_correct(predicted_classes(p), {0, 0, 0}));
}

TEST(PredictionMetricsErrors, PredictedAndTrueClassesMustMatch) {
  try {
    fraction_correct({0, 1}, {0, 1, 2});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("2 predicted classes for 3 labels"));
  }
  EXPECT_THROW(error_rate({}, {}), Error);
}

TEST(ClassificationMetrics, LogLossOfScikitLearnsDocumentation) {
  // log_loss(["spam", "ham", "ham", "spam"], [[.1, .9], [.9, .1], [.8, .2], [.35, .65]]) = 0.21616...
  // with ham = 0, spam = 1: -(ln 0.9 + ln 0.9 + ln 0.8 + ln 0.65) / 4 = 0.21616187468057912.
  const Matrix p = rows({{.1, .9}, {.9, .1}, {.8, .2}, {.35, .65}});
  EXPECT_NEAR(log_loss(p, {1, 0, 0, 1}), 0.21616187468057912, 1e-15);
}

TEST(ClassificationMetrics, LogLossClipsAZeroProbabilityAt1e15) {
  // The true class has probability 0: clipped to 1e-15, -ln(1e-15) = 15 ln 10 = 34.538776394910684.
  // The second sample is right with probability 1: -ln 1 = 0. Mean: 17.269388197455342.
  const Matrix p = rows({{0, 1}, {1, 0}});
  EXPECT_NEAR(log_loss(p, {0, 0}), 15 * std::log(10.0) / 2, 1e-12);
  // A probability just above the clip is not changed: -ln(1e-14) = 14 ln 10.
  EXPECT_NEAR(log_loss(rows({{1e-14, 1 - 1e-14}}), {0}), 14 * std::log(10.0), 1e-9);
}

TEST(ClassificationMetrics, MacroF1AveragesOverClassesTrueOrPredicted) {
  // Four columns; true (0, 0, 1), predicted (0, 1, 1). Classes 2 and 3 occur on neither side and
  // are left out. Class 0: TP 1, FN 1 -> 2/3; class 1: TP 1, FP 1 -> 2/3. Mean 2/3 (counting the
  // absent classes as 0 would give 1/3).
  const Matrix p = rows({{0.7, 0.1, 0.1, 0.1}, {0.1, 0.7, 0.1, 0.1}, {0.1, 0.7, 0.1, 0.1}});
  EXPECT_NEAR(macro_f1(p, {0, 0, 1}), 2.0 / 3, 1e-15);
  // A class predicted but never true counts with F1 0: true (0, 0), predicted (0, 2).
  // Class 0: TP 1, FN 1 -> 2/3; class 2: FP 1 -> 0. Mean 1/3.
  const Matrix q = rows({{0.8, 0.1, 0.1}, {0.1, 0.1, 0.8}});
  EXPECT_NEAR(macro_f1(q, {0, 0}), 1.0 / 3, 1e-15);
}

TEST(ClassificationMetrics, MacroF1OfScikitLearnsDocumentation) {
  // f1_score([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], average="macro") = 0.26666...: class 0
  // TP 2, FP 1 -> 4/5; classes 1 and 2 TP 0 -> 0; (4/5) / 3 = 4/15.
  const std::vector<int> predicted = {0, 2, 1, 0, 0, 1};
  Matrix p = Matrix::Constant(6, 3, 0.1);
  for (Eigen::Index i = 0; i < 6; ++i) p(i, predicted[static_cast<std::size_t>(i)]) = 0.8;
  EXPECT_NEAR(macro_f1(p, {0, 1, 2, 0, 1, 2}), 4.0 / 15, 1e-15);
}

TEST(ClassificationMetrics, CalibrationBinsAreClosedOnTheRight) {
  // Two bins, (0, 0.5] and (0.5, 1]. Sample 0: confidence 0.5, right; sample 1: confidence 0.9,
  // wrong. 0.5 belongs to the first bin: 1/2 * |1 - 0.5| + 1/2 * |0 - 0.9| = 0.25 + 0.45 = 0.7.
  // (Were 0.5 in the second bin: |1/2 - 0.7| = 0.2.)
  const Matrix p = rows({{0.5, 0.5}, {0.9, 0.1}});
  EXPECT_NEAR(expected_calibration_error(p, {0, 1}, 2), 0.7, 1e-15);
  // One bin: |accuracy - mean confidence| = |1/2 - 0.7| = 0.2.
  EXPECT_NEAR(expected_calibration_error(p, {0, 1}, 1), 0.2, 1e-15);
  // Fifteen bins: confidence 0.6 = 9/15 (right) ends bin 8; 0.62 (wrong; 0.62 * 15 = 9.3) is in bin
  // 9. Apart: 1/2 * |1 - 0.6| + 1/2 * |0 - 0.62| = 0.2 + 0.31 = 0.51. (Together they would give
  // |1/2 - 0.61| = 0.11.)
  const Matrix q = rows({{0.6, 0.4}, {0.62, 0.38}});
  EXPECT_NEAR(expected_calibration_error(q, {0, 1}), 0.51, 1e-15);
}

// ECE by brute force: bins assigned by ceil(conf * 15) - 1 (0 for a confidence of 0), each bin's
// accuracy and mean confidence as means of per-sample lists, the argmax by std::max_element.
double brute_force_ece(const Matrix& p, const std::vector<int>& labels) {
  std::vector<std::vector<double>> conf(15), hit(15);
  for (Eigen::Index i = 0; i < p.rows(); ++i) {
    std::vector<double> row;
    for (Eigen::Index c = 0; c < p.cols(); ++c) row.push_back(p(i, c));
    const auto top = std::max_element(row.begin(), row.end());  // the first largest
    const double c = *top;
    const int bin = std::max(0, static_cast<int>(std::ceil(c * 15)) - 1);
    conf[static_cast<std::size_t>(bin)].push_back(c);
    hit[static_cast<std::size_t>(bin)].push_back((top - row.begin()) == labels[static_cast<std::size_t>(i)] ? 1.0 : 0.0);
  }
  double ece = 0;
  for (std::size_t b = 0; b < 15; ++b) {
    if (conf[b].empty()) continue;
    double mean_conf = 0, mean_hit = 0;
    for (double v : conf[b]) mean_conf += v / static_cast<double>(conf[b].size());
    for (double v : hit[b]) mean_hit += v / static_cast<double>(hit[b].size());
    ece += static_cast<double>(conf[b].size()) / static_cast<double>(p.rows()) * std::abs(mean_hit - mean_conf);
  }
  return ece;
}

TEST(ClassificationMetrics, ExpectedCalibrationErrorMatchesABruteForceOnRandomData) {
  std::mt19937 rng(20240611);
  std::exponential_distribution<double> exponential(1.0);
  std::uniform_real_distribution<double> temperature(0.2, 5.0);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 50 + 37 * trial, classes = 2 + trial % 6;
    std::uniform_int_distribution<int> label(0, classes - 1);
    Matrix p(n, classes);
    std::vector<int> labels(static_cast<std::size_t>(n));
    const double t = temperature(rng);  // sharp and flat distributions, so every bin gets used
    for (int i = 0; i < n; ++i) {
      for (int c = 0; c < classes; ++c) p(i, c) = std::pow(exponential(rng), t);
      p.row(i) /= p.row(i).sum();
      labels[static_cast<std::size_t>(i)] = label(rng);
    }
    EXPECT_NEAR(expected_calibration_error(p, labels), brute_force_ece(p, labels), 1e-12) << "trial " << trial;
  }
}

// ---------------------------------------------------------------------------- regression

TEST(RegressionMetrics, HandWorkedOneTarget) {
  // scikit-learn's documented example: y = (3, -0.5, 2, 7), yhat = (2.5, 0, 2, 8).
  // Residuals 0.5, -0.5, 0, -1: MSE = (0.25 + 0.25 + 0 + 1) / 4 = 0.375, MAE = 2 / 4 = 0.5.
  // mean(y) = 11.5 / 4 = 2.875; SS_tot = 0.125^2 + 3.375^2 + 0.875^2 + 4.125^2 = 29.1875;
  // R^2 = 1 - 1.5 / 29.1875 = 0.94860813704496788.
  const Matrix y = rows({{3}, {-0.5}, {2}, {7}}), yhat = rows({{2.5}, {0}, {2}, {8}});
  const RegressionMetrics m = regression_metrics(yhat, y);
  EXPECT_DOUBLE_EQ(m.mse, 0.375);
  EXPECT_DOUBLE_EQ(m.mae, 0.5);
  EXPECT_NEAR(m.r2, 1 - 1.5 / 29.1875, 1e-15);
  EXPECT_DOUBLE_EQ(mean_squared_error(yhat, y), 0.375);
  EXPECT_DOUBLE_EQ(mean_absolute_error(yhat, y), 0.5);
  EXPECT_NEAR(r2_score(yhat, y), 0.94860813704496788, 1e-15);
}

TEST(RegressionMetrics, HandWorkedTwoTargetsAverageUniformly) {
  // scikit-learn's documented multi-output example.
  // Column 0: y = (0.5, -1, 7), yhat = (0, -1, 8): residuals 0.5, 0, -1, SS_res = 1.25;
  //   sum y^2 = 50.25, n mean^2 = 6.5^2 / 3, SS_tot = 50.25 - 42.25/3 = 217/6; R^2 = 1 - 7.5/217.
  // Column 1: y = (1, 1, -6), yhat = (2, 2, -5): residuals -1, -1, -1, SS_res = 3;
  //   mean = -4/3, deviations 7/3, 7/3, -14/3, SS_tot = 294/9; R^2 = 1 - 27/294.
  // MSE = (1.25 + 3) / 6, MAE = (0.5 + 0 + 1 + 1 + 1 + 1) / 6 = 0.75, R^2 = mean of the two.
  const Matrix y = rows({{0.5, 1}, {-1, 1}, {7, -6}}), yhat = rows({{0, 2}, {-1, 2}, {8, -5}});
  const RegressionMetrics m = regression_metrics(yhat, y);
  EXPECT_NEAR(m.mse, 4.25 / 6, 1e-15);
  EXPECT_NEAR(m.mae, 0.75, 1e-15);
  EXPECT_NEAR(m.r2, ((1 - 7.5 / 217) + (1 - 27.0 / 294)) / 2, 1e-15);
  EXPECT_NEAR(m.r2, 0.9368005266622779, 1e-15);  // scikit-learn's docs print 0.936...
}

TEST(RegressionMetrics, ConstantTargetColumnScoresOneWhenExactElseZero) {
  // 0.1 three times: (0.1 + 0.1 + 0.1) / 3 = 0.10000000000000002 in doubles, so SS_tot computed
  // from the mean would be ~1e-34 rather than 0; the column is still recognised as constant.
  const Matrix y = rows({{0.1}, {0.1}, {0.1}});
  EXPECT_EQ(r2_score(y, y), 1.0);
  EXPECT_EQ(r2_score(rows({{0.1}, {0.1}, {0.2}}), y), 0.0);
  // Next to an ordinary column, the columns average.
  // Column 1: y = (0, 2, 4), yhat = (1, 2, 3): SS_res = 1 + 0 + 1 = 2, SS_tot = 4 + 0 + 4 = 8,
  // R^2 = 0.75. Column 0 constant and exact: 1. Mean 0.875.
  const Matrix y2 = rows({{5, 0}, {5, 2}, {5, 4}}), yhat2 = rows({{5, 1}, {5, 2}, {5, 3}});
  EXPECT_DOUBLE_EQ(r2_score(yhat2, y2), 0.875);
  // The same, with the constant column predicted wrong: (0 + 0.75) / 2.
  const Matrix yhat3 = rows({{5, 1}, {6, 2}, {5, 3}});
  EXPECT_DOUBLE_EQ(r2_score(yhat3, y2), 0.375);
}

TEST(RegressionMetrics, RSquaredOfOneRowIsNaN) {
  const RegressionMetrics m = regression_metrics(rows({{1, 2}}), rows({{1.5, 2}}));
  EXPECT_TRUE(std::isnan(m.r2));
  EXPECT_DOUBLE_EQ(m.mse, 0.125);  // (0.25 + 0) / 2
  EXPECT_DOUBLE_EQ(m.mae, 0.25);   // (0.5 + 0) / 2
}

// ---------------------------------------------------------------------------- refusals

TEST(PredictionMetricsErrors, RowsAndLabelsMustMatch) {
  EXPECT_THAT(error_of([] { accuracy(kFourByThree, {0, 1, 2}); }), HasSubstr("the probabilities have 4 rows but there are 3 labels"));
  EXPECT_THAT(error_of([] { classification_metrics(Matrix(0, 3), {}); }), HasSubstr("no samples"));
  EXPECT_THAT(error_of([] { classification_metrics(Matrix(2, 0), {0, 0}); }), HasSubstr("0 columns"));
}

TEST(PredictionMetricsErrors, NonFiniteProbabilityIsNamed) {
  Matrix p = kFourByThree;
  p(2, 1) = std::nan("");
  EXPECT_THAT(error_of([&] { log_loss(p, kFourLabels); }), HasSubstr("the probability at (row 2, column 1) is not finite"));
  p(2, 1) = INFINITY;
  EXPECT_THAT(error_of([&] { macro_f1(p, kFourLabels); }), HasSubstr("(row 2, column 1) is not finite"));
}

TEST(PredictionMetricsErrors, NegativeProbabilityIsNamed) {
  const Matrix p = rows({{0.5, 0.5}, {1.25, -0.25}});
  EXPECT_THAT(error_of([&] { accuracy(p, {0, 1}); }), HasSubstr("the probability at (row 1, column 1) is negative (-0.25)"));
}

TEST(PredictionMetricsErrors, RowsMustSumToOne) {
  const Matrix p = rows({{0.5, 0.5}, {0.5, 0.4}});
  EXPECT_THAT(error_of([&] { expected_calibration_error(p, {0, 1}); }), HasSubstr("the probabilities of row 1 sum to 0.9, not 1"));
  // Within the tolerance (float32 softmax rounding) is accepted.
  EXPECT_NO_THROW(accuracy(rows({{0.5, 0.5 + 5e-7}}), {0}));
  EXPECT_THAT(error_of([] { accuracy(rows({{0.5, 0.5 + 2e-6}}), {0}); }), HasSubstr("sum to 1.000002"));
}

TEST(PredictionMetricsErrors, LabelOutOfRangeIsNamed) {
  EXPECT_THAT(error_of([] { accuracy(kFourByThree, {0, 3, 2, 1}); }), HasSubstr("the label of row 1 is 3, outside [0, 3)"));
  EXPECT_THAT(error_of([] { classification_metrics(kFourByThree, {0, 1, 2, -1}); }), HasSubstr("the label of row 3 is -1, outside [0, 3)"));
}

TEST(PredictionMetricsErrors, CalibrationNeedsABin) {
  EXPECT_THAT(error_of([] { expected_calibration_error(kFourByThree, kFourLabels, 0); }), HasSubstr("at least one bin"));
}

TEST(PredictionMetricsErrors, RegressionShapesMustMatch) {
  EXPECT_THAT(error_of([] { mean_squared_error(Matrix::Zero(3, 2), Matrix::Zero(3, 1)); }),
              HasSubstr("the predictions are 3 x 2 (rows x columns) but the targets are 3 x 1"));
  EXPECT_THAT(error_of([] { r2_score(Matrix::Zero(4, 1), Matrix::Zero(3, 1)); }), HasSubstr("4 x 1"));
  EXPECT_THAT(error_of([] { regression_metrics(Matrix(0, 1), Matrix(0, 1)); }), HasSubstr("no samples"));
}

TEST(PredictionMetricsErrors, NonFiniteRegressionValueIsNamed) {
  Matrix yhat = Matrix::Zero(3, 2), y = Matrix::Zero(3, 2);
  yhat(1, 0) = std::nan("");
  EXPECT_THAT(error_of([&] { mean_absolute_error(yhat, y); }), HasSubstr("the prediction at (row 1, column 0) is not finite"));
  yhat(1, 0) = 0;
  y(2, 1) = -INFINITY;
  EXPECT_THAT(error_of([&] { r2_score(yhat, y); }), HasSubstr("the target at (row 2, column 1) is not finite"));
}

}  // namespace
}  // namespace caulk::metrics
