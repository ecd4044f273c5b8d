// Metrics of a model's predictions against the true labels or targets of a split.
//
// Classification: `probs` is N x C class probabilities (row i is the model's distribution over
// the C classes for sample i) and `labels` holds each sample's class index in [0, C).
// Regression: `predicted` and `target` are both N x T (T target columns).
//
// Every function validates its inputs and throws caulk::Error saying what is wrong: a shape that
// does not match (naming both shapes), no samples, a non-finite value, a negative probability, a
// probability row that does not sum to 1, a label out of range.
#pragma once
#include <vector>

#include "caulk/matrix.hpp"

namespace caulk::metrics {

// A row of probabilities may differ from 1 by this much (float32 softmax outputs reach ~1e-7).
inline constexpr double kProbabilityRowSumTolerance = 1e-6;
// log_loss clips each true-class probability to [kLogLossClip, 1], scikit-learn's default `eps`
// before version 1.2 (newer versions clip to the dtype's machine epsilon, 2.2e-16 for float64;
// the two differ only when a true class has probability below 1e-15).
inline constexpr double kLogLossClip = 1e-15;
// expected_calibration_error's default number of equal-width confidence bins.
inline constexpr int kCalibrationBins = 15;

// Throws caulk::Error unless `probs` is a valid N x C probability matrix (N, C >= 1; finite,
// non-negative, each row summing to 1 within kProbabilityRowSumTolerance) and `labels` holds N
// class indices in [0, C). The classification metrics below call it themselves.
void check_probabilities(const Matrix& probs, const std::vector<int>& labels);

// The predicted class of each row: the column of the largest value (probabilities, logits or any
// class scores: the order is what counts), the lowest index on ties (as numpy.argmax). Not
// validated: the rows may be logits.
std::vector<int> predicted_classes(const Matrix& scores);

// Fraction of samples whose predicted class equals the label: correct / N. Throws caulk::Error
// when the lengths differ or there are no samples. accuracy() below is this over
// predicted_classes of validated probabilities.
double fraction_correct(const std::vector<int>& predicted, const std::vector<int>& labels);
// Fraction of samples whose predicted class differs from the label, counted directly (wrong / N,
// which rounds differently from 1 - fraction_correct). Same checks.
double error_rate(const std::vector<int>& predicted, const std::vector<int>& labels);

// Fraction of samples whose predicted class is the true one.
double accuracy(const Matrix& probs, const std::vector<int>& labels);

// Mean over samples of -log(p_i,y_i), with p clipped to [kLogLossClip, 1] so that a confident
// mistake costs -log(1e-15) ~ 34.5 instead of infinity. Natural logarithm. The rows are not
// renormalised (they were checked to sum to 1).
double log_loss(const Matrix& probs, const std::vector<int>& labels);

// Expected calibration error over `bins` equal-width bins of the confidence max_c p_i,c: bin k
// holds the confidences in (k/bins, (k+1)/bins], and the first bin also holds 0. With B_k the
// samples of bin k, ECE = sum_k |B_k|/N * |accuracy(B_k) - mean confidence(B_k)| (empty bins add
// nothing). The boundaries are compared as the doubles k/bins, so a confidence written as 0.6 lies
// in the bin that ends at 9/15.
double expected_calibration_error(const Matrix& probs, const std::vector<int>& labels, int bins = kCalibrationBins);

// Macro-averaged F1: the unweighted mean of the per-class F1 = 2 TP / (2 TP + FP + FN) over the
// classes that occur in `labels` or among the predicted classes, as scikit-learn's
// f1_score(average="macro") with labels=None does (its unique_labels(y_true, y_pred)). A class that
// is neither true nor predicted for any sample is left out rather than counted as F1 = 0; a class
// that occurs on one side only has TP = 0, so F1 = 0, and counts.
double macro_f1(const Matrix& probs, const std::vector<int>& labels);

struct ClassificationMetrics {
  double accuracy = 0, log_loss = 0, ece = 0, macro_f1 = 0;
};
// All four at once (validating once).
ClassificationMetrics classification_metrics(const Matrix& probs, const std::vector<int>& labels);

// Throws caulk::Error unless `predicted` and `target` have the same shape with at least one row
// and one column, and every value is finite. The regression metrics below call it themselves.
void check_regression(const Matrix& predicted, const Matrix& target);

// Mean of (predicted - target)^2 over all N x T entries.
double mean_squared_error(const Matrix& predicted, const Matrix& target);
// Mean of |predicted - target| over all N x T entries.
double mean_absolute_error(const Matrix& predicted, const Matrix& target);

// Coefficient of determination averaged uniformly over the T target columns, as scikit-learn's
// r2_score(multioutput="uniform_average", force_finite=True): per column
// 1 - SS_res / SS_tot with SS_res = sum (y - yhat)^2 and SS_tot = sum (y - mean(y))^2. A constant
// column (every target equal; detected directly, so rounding in the mean cannot make SS_tot a tiny
// nonzero number) scores 1 when predicted exactly (SS_res = 0) and 0 otherwise. With fewer than two
// rows R^2 is not defined: NaN, as scikit-learn.
double r2_score(const Matrix& predicted, const Matrix& target);

struct RegressionMetrics {
  double mse = 0, mae = 0, r2 = 0;
};
// All three at once (validating once).
RegressionMetrics regression_metrics(const Matrix& predicted, const Matrix& target);

}  // namespace caulk::metrics
