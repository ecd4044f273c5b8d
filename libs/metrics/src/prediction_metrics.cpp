#include "caulk/metrics/prediction_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "caulk/error.hpp"

namespace caulk::metrics {

namespace {

// Numbers in messages: enough digits to see why a row sum is not 1. (No fmt here: the algorithm
// library links libcaulk only.)
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string shape(const Matrix& m) { return std::to_string(m.rows()) + " x " + std::to_string(m.cols()); }

std::size_t rows_of(const Matrix& m) { return static_cast<std::size_t>(m.rows()); }

}  // namespace

// ------------------------------------------------------------------------------ classification

void check_probabilities(const Matrix& probs, const std::vector<int>& labels) {
  if (rows_of(probs) != labels.size())
    throw Error("the probabilities have " + std::to_string(probs.rows()) + " rows but there are " + std::to_string(labels.size()) +
                " labels");
  if (probs.rows() == 0) throw Error("there are no samples (the probabilities have 0 rows)");
  if (probs.cols() == 0) throw Error("the probabilities have 0 columns (classes)");
  for (Eigen::Index i = 0; i < probs.rows(); ++i) {
    double sum = 0;
    for (Eigen::Index c = 0; c < probs.cols(); ++c) {
      const double p = probs(i, c);
      const std::string where = "(row " + std::to_string(i) + ", column " + std::to_string(c) + ")";
      if (!std::isfinite(p)) throw Error("the probability at " + where + " is not finite (" + num(p) + ")");
      if (p < 0) throw Error("the probability at " + where + " is negative (" + num(p) + ")");
      sum += p;
    }
    if (std::abs(sum - 1.0) > kProbabilityRowSumTolerance)
      throw Error("the probabilities of row " + std::to_string(i) + " sum to " + num(sum) + ", not 1 (tolerance " +
                  num(kProbabilityRowSumTolerance) + ")");
    const int y = labels[static_cast<std::size_t>(i)];
    if (y < 0 || y >= probs.cols())
      throw Error("the label of row " + std::to_string(i) + " is " + std::to_string(y) + ", outside [0, " + std::to_string(probs.cols()) +
                  ") (the probabilities have " + std::to_string(probs.cols()) + " columns)");
  }
}

std::vector<int> predicted_classes(const Matrix& scores) {
  std::vector<int> out(rows_of(scores), 0);
  for (Eigen::Index i = 0; i < scores.rows(); ++i) {
    Eigen::Index best = 0;
    // Strictly greater: a tie keeps the lower index (as numpy.argmax).
    for (Eigen::Index c = 1; c < scores.cols(); ++c)
      if (scores(i, c) > scores(i, best)) best = c;
    out[static_cast<std::size_t>(i)] = static_cast<int>(best);
  }
  return out;
}

namespace {

void check_classes(const std::vector<int>& predicted, const std::vector<int>& labels) {
  if (predicted.size() != labels.size())
    throw Error(std::to_string(predicted.size()) + " predicted classes for " + std::to_string(labels.size()) + " labels");
  if (labels.empty()) throw Error("there are no samples (no labels)");
}

double accuracy_of(const std::vector<int>& predicted, const std::vector<int>& labels) {
  std::size_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) correct += predicted[i] == labels[i];
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

}  // namespace

double fraction_correct(const std::vector<int>& predicted, const std::vector<int>& labels) {
  check_classes(predicted, labels);
  return accuracy_of(predicted, labels);
}

double error_rate(const std::vector<int>& predicted, const std::vector<int>& labels) {
  check_classes(predicted, labels);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) wrong += predicted[i] != labels[i];
  return static_cast<double>(wrong) / static_cast<double>(labels.size());
}

namespace {

double log_loss_unchecked(const Matrix& probs, const std::vector<int>& labels) {
  double total = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double p = probs(static_cast<Eigen::Index>(i), labels[i]);
    total -= std::log(std::clamp(p, kLogLossClip, 1.0));
  }
  return total / static_cast<double>(labels.size());
}

// The bin of a confidence in (k/bins, (k+1)/bins], 0 for a confidence of 0. The first guess from
// ceil may be off by one where conf * bins rounds across an integer; the comparisons against the
// boundaries as doubles settle it.
int confidence_bin(double conf, int bins) {
  int k = static_cast<int>(std::ceil(conf * bins)) - 1;
  k = std::clamp(k, 0, bins - 1);
  while (k > 0 && conf <= static_cast<double>(k) / bins) --k;
  while (k < bins - 1 && conf > static_cast<double>(k + 1) / bins) ++k;
  return k;
}

double ece_unchecked(const Matrix& probs, const std::vector<int>& predicted, const std::vector<int>& labels, int bins) {
  std::vector<double> confidence_sum(static_cast<std::size_t>(bins), 0.0), correct(static_cast<std::size_t>(bins), 0.0),
      count(static_cast<std::size_t>(bins), 0.0);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double conf = probs(static_cast<Eigen::Index>(i), predicted[i]);
    const auto k = static_cast<std::size_t>(confidence_bin(conf, bins));
    confidence_sum[k] += conf;
    correct[k] += predicted[i] == labels[i];
    count[k] += 1;
  }
  // sum_k |B_k|/N * |acc_k - conf_k| = sum_k |correct_k - confidence_sum_k| / N.
  double ece = 0;
  for (std::size_t k = 0; k < count.size(); ++k)
    if (count[k] > 0) ece += std::abs(correct[k] - confidence_sum[k]);
  return ece / static_cast<double>(labels.size());
}

double macro_f1_unchecked(const std::vector<int>& predicted, const std::vector<int>& labels, Eigen::Index classes) {
  const auto c = static_cast<std::size_t>(classes);
  std::vector<double> tp(c, 0.0), fp(c, 0.0), fn(c, 0.0);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto y = static_cast<std::size_t>(labels[i]), p = static_cast<std::size_t>(predicted[i]);
    if (y == p) {
      tp[y] += 1;
    } else {
      fp[p] += 1;
      fn[y] += 1;
    }
  }
  double sum = 0;
  std::size_t present = 0;
  for (std::size_t k = 0; k < c; ++k) {
    const double denominator = 2 * tp[k] + fp[k] + fn[k];
    if (denominator == 0) continue;  // neither true nor predicted anywhere: not in the label set
    sum += 2 * tp[k] / denominator;
    ++present;
  }
  return sum / static_cast<double>(present);  // present >= 1: every sample has a true class
}

}  // namespace

double accuracy(const Matrix& probs, const std::vector<int>& labels) {
  check_probabilities(probs, labels);
  return accuracy_of(predicted_classes(probs), labels);
}

double log_loss(const Matrix& probs, const std::vector<int>& labels) {
  check_probabilities(probs, labels);
  return log_loss_unchecked(probs, labels);
}

double expected_calibration_error(const Matrix& probs, const std::vector<int>& labels, int bins) {
  if (bins < 1) throw Error("expected calibration error needs at least one bin (asked for " + std::to_string(bins) + ")");
  check_probabilities(probs, labels);
  return ece_unchecked(probs, predicted_classes(probs), labels, bins);
}

double macro_f1(const Matrix& probs, const std::vector<int>& labels) {
  check_probabilities(probs, labels);
  return macro_f1_unchecked(predicted_classes(probs), labels, probs.cols());
}

ClassificationMetrics classification_metrics(const Matrix& probs, const std::vector<int>& labels) {
  check_probabilities(probs, labels);
  const std::vector<int> predicted = predicted_classes(probs);
  ClassificationMetrics m;
  m.accuracy = accuracy_of(predicted, labels);
  m.log_loss = log_loss_unchecked(probs, labels);
  m.ece = ece_unchecked(probs, predicted, labels, kCalibrationBins);
  m.macro_f1 = macro_f1_unchecked(predicted, labels, probs.cols());
  return m;
}

// ------------------------------------------------------------------------------ regression

void check_regression(const Matrix& predicted, const Matrix& target) {
  if (predicted.rows() != target.rows() || predicted.cols() != target.cols())
    throw Error("the predictions are " + shape(predicted) + " (rows x columns) but the targets are " + shape(target));
  if (target.rows() == 0) throw Error("there are no samples (the targets have 0 rows)");
  if (target.cols() == 0) throw Error("the targets have 0 columns");
  for (Eigen::Index j = 0; j < target.cols(); ++j)
    for (Eigen::Index i = 0; i < target.rows(); ++i) {
      const std::string where = "(row " + std::to_string(i) + ", column " + std::to_string(j) + ")";
      if (!std::isfinite(predicted(i, j))) throw Error("the prediction at " + where + " is not finite (" + num(predicted(i, j)) + ")");
      if (!std::isfinite(target(i, j))) throw Error("the target at " + where + " is not finite (" + num(target(i, j)) + ")");
    }
}

namespace {

double mse_unchecked(const Matrix& predicted, const Matrix& target) { return (predicted - target).array().square().mean(); }
double mae_unchecked(const Matrix& predicted, const Matrix& target) { return (predicted - target).array().abs().mean(); }

double r2_unchecked(const Matrix& predicted, const Matrix& target) {
  if (target.rows() < 2) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  for (Eigen::Index j = 0; j < target.cols(); ++j) {
    const auto y = target.col(j), yhat = predicted.col(j);
    const double ss_res = (y - yhat).squaredNorm();
    const bool constant = (y.array() == y(0)).all();
    if (constant) {
      sum += ss_res == 0 ? 1.0 : 0.0;
      continue;
    }
    const double ss_tot = (y.array() - y.mean()).square().sum();
    sum += 1.0 - ss_res / ss_tot;
  }
  return sum / static_cast<double>(target.cols());
}

}  // namespace

double mean_squared_error(const Matrix& predicted, const Matrix& target) {
  check_regression(predicted, target);
  return mse_unchecked(predicted, target);
}

double mean_absolute_error(const Matrix& predicted, const Matrix& target) {
  check_regression(predicted, target);
  return mae_unchecked(predicted, target);
}

double r2_score(const Matrix& predicted, const Matrix& target) {
  check_regression(predicted, target);
  return r2_unchecked(predicted, target);
}

RegressionMetrics regression_metrics(const Matrix& predicted, const Matrix& target) {
  check_regression(predicted, target);
  return {mse_unchecked(predicted, target), mae_unchecked(predicted, target), r2_unchecked(predicted, target)};
}

}  // namespace caulk::metrics
