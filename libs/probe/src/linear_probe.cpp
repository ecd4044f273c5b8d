#include "caulk/probe/linear_probe.hpp"

#include "caulk/lbfgs.hpp"
#include "caulk/metrics/prediction_metrics.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace caulk::probe {

namespace {

void softmax_rows_in_place(Matrix& logits, Vector* log_sum_exp) {
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    const double top = logits.row(i).maxCoeff();
    logits.row(i) = (logits.row(i).array() - top).exp().matrix();
    const double sum = logits.row(i).sum();
    logits.row(i) /= sum;
    if (log_sum_exp) (*log_sum_exp)[i] = top + std::log(sum);
  }
}

}  // namespace

double linear_probe_objective(const Matrix& X, const std::vector<int>& labels, int num_classes, double l2, const Vector& packed,
                              Vector& gradient) {
  const Eigen::Index N = X.rows(), D = X.cols(), C = num_classes;
  Eigen::Map<const Matrix> W(packed.data(), C, D);
  const auto b = packed.tail(C);
  Matrix logits = X * W.transpose();
  logits.rowwise() += b.transpose();
  Vector lse(N);
  double loss = 0;
  {
    Matrix copy = logits;
    softmax_rows_in_place(copy, &lse);
    for (Eigen::Index i = 0; i < N; ++i) loss += lse[i] - logits(i, labels[static_cast<std::size_t>(i)]);
    logits = std::move(copy);  // now the probabilities P
  }
  for (Eigen::Index i = 0; i < N; ++i) logits(i, labels[static_cast<std::size_t>(i)]) -= 1;  // P - Y
  const double n = static_cast<double>(N);
  gradient.resize(packed.size());
  Eigen::Map<Matrix> gW(gradient.data(), C, D);
  gW = logits.transpose() * X / n + l2 * W;
  gradient.tail(C) = logits.colwise().sum().transpose() / n;
  return loss / n + 0.5 * l2 * W.squaredNorm();
}

LinearProbe fit_linear_probe(const MatrixView& F, const std::vector<int>& labels, int num_classes, const LinearProbeOptions& options) {
  if (F.empty()) throw std::invalid_argument("linear probe: no features");
  if (labels.size() != F.rows())
    throw std::invalid_argument("linear probe: " + std::to_string(F.rows()) + " rows of features but " + std::to_string(labels.size()) +
                                " labels");
  for (int y : labels)
    if (y < 0 || y >= num_classes) throw std::invalid_argument("linear probe: label " + std::to_string(y) + " outside the classes");
  const Matrix X = F.to_double();
  const Eigen::Index C = num_classes, D = X.cols();
  LBFGSpp::LBFGSParam<double> param;
  param.epsilon = options.gradient_tolerance;
  param.epsilon_rel = options.gradient_tolerance;
  param.max_iterations = options.max_iterations;
  Vector packed = Vector::Zero(C * D + C);
  auto objective = [&](const Vector& p, Vector& g) { return linear_probe_objective(X, labels, num_classes, options.l2, p, g); };
  LinearProbe probe;
  probe.iterations = minimize_lbfgs(objective, packed, param).iterations;
  probe.weights = Eigen::Map<const Matrix>(packed.data(), C, D);
  probe.bias = packed.tail(C);
  return probe;
}

Matrix LinearProbe::predict_proba(const MatrixView& F) const {
  Matrix logits = F.to_double() * weights.transpose();
  logits.rowwise() += bias.transpose();
  softmax_rows_in_place(logits, nullptr);
  return logits;
}

double LinearProbe::accuracy(const MatrixView& F, const std::vector<int>& labels) const {
  const Matrix p = predict_proba(F);
  if (static_cast<std::size_t>(p.rows()) != labels.size()) throw std::invalid_argument("linear probe: rows and labels differ");
  return metrics::fraction_correct(metrics::predicted_classes(p), labels);
}

}  // namespace caulk::probe
