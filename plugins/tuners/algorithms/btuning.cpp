#include "tuners/algorithms/btuning.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "caulk/error.hpp"
#include "caulk/transferability/logme.hpp"

namespace caulk::tune {

std::vector<std::size_t> top_k(const std::vector<double>& scores, int k) {
  if (k < 1) throw Error(fmt::format("k = {}: at least one teacher is needed", k));
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  if (order.size() > static_cast<std::size_t>(k)) order.resize(static_cast<std::size_t>(k));
  return order;
}

std::vector<double> teacher_weights(const std::vector<double>& scores, double tau) {
  if (!(tau > 0)) throw Error(fmt::format("tau = {}: the temperature of the teacher weights must be positive", tau));
  if (scores.empty()) throw Error("no teachers to weigh");
  double top = -std::numeric_limits<double>::infinity();
  for (double s : scores) {
    if (!std::isfinite(s)) throw Error(fmt::format("a teacher's score is {}: teacher weights need finite scores", s));
    top = std::max(top, s);
  }
  std::vector<double> pi(scores.size());
  double sum = 0;
  for (std::size_t k = 0; k < scores.size(); ++k) sum += pi[k] = std::exp((scores[k] - top) / tau);
  for (double& p : pi) p /= sum;
  return pi;
}

Matrix teacher_target(const std::vector<Teacher>& teachers, const std::vector<double>& pi) {
  if (teachers.empty()) throw Error("no teachers: B-Tuning needs at least one");
  if (pi.size() != teachers.size()) throw Error(fmt::format("{} teacher weights for {} teachers", pi.size(), teachers.size()));
  const Eigen::Index N = teachers.front().features.rows(), C = teachers.front().weights.rows();
  Matrix target = Matrix::Zero(N, C);
  for (std::size_t k = 0; k < teachers.size(); ++k) {
    const Teacher& t = teachers[k];
    if (t.features.rows() != N)
      throw Error(
          fmt::format("teacher '{}' has {} rows of features but teacher '{}' has {}", t.name, t.features.rows(), teachers.front().name, N));
    if (t.weights.rows() != C)
      throw Error(fmt::format("teacher '{}' has LogME weights for {} classes (or targets) but teacher '{}' for {}", t.name,
                              t.weights.rows(), teachers.front().name, C));
    if (t.weights.cols() != t.features.cols())
      throw Error(fmt::format("teacher '{}' has {} feature columns but LogME weights for {} (were they computed on other features?)",
                              t.name, t.features.cols(), t.weights.cols()));
    target.noalias() += pi[k] * (t.features * t.weights.transpose());
  }
  return target;
}

Matrix logme_weights(const mlp::Mat<float>& features_by_column, const mlp::Targets<float>& y, int outputs, bool classification) {
  const Matrix F = features_by_column.transpose().cast<double>();
  const rank::FeatureStats stats(MatrixView::borrow(F));
  rank::LogMEResult r = classification ? rank::logme_classification(stats, y.classes, outputs)
                                       : rank::logme_regression(stats, Matrix(y.values.transpose().cast<double>()));
  return std::move(r.weights);
}

namespace {

template <class S>
void check_head(const mlp::Model<S>& m) {
  const int L = m.num_layers();
  if (m.feature_layer != L - 2)
    throw Error(fmt::format("B-Tuning matches the features that the head reads: the head must be one layer (feature layer {} of {} layers)",
                            m.feature_layer, L));
  if (m.lora_of(L - 1)) throw Error("B-Tuning: the head (the last layer) must not carry LoRA factors");
}

}  // namespace

template <class S>
void backward_from_features(const mlp::Model<S>& m, const mlp::Trace<S>& t, const mlp::Mat<S>& d_features,
                            const std::vector<bool>& trainable, mlp::Model<S>& grad) {
  check_head(m);
  const int L = m.num_layers(), head = L - 1;
  const Eigen::Index D = m.feature_dim();
  if (d_features.rows() != D || d_features.cols() != t.input[head].cols())
    throw Error(fmt::format("a feature gradient of {}x{} for {} features of {} samples", d_features.rows(), d_features.cols(), D,
                            t.input[head].cols()));
  // The backward pass from the head's output, through a head that is the identity: what reaches
  // the features is exactly d_features (products with 1 and sums with 0 are exact), and the layers
  // below follow unchanged. The head's own parameters are masked out.
  mlp::Model<S> through = m;
  through.layers[head].W = mlp::Mat<S>::Identity(D, D);
  through.layers[head].b = mlp::Vec<S>::Zero(D);
  std::vector<bool> mask = trainable;
  if (mask.empty()) mask.assign(parameters(m).size(), true);
  mask[2 * head] = mask[2 * head + 1] = false;
  mlp::backward(through, t, d_features, mask, grad);
}

template <class S>
double btuning_term(const mlp::Model<S>& m, const mlp::Trace<S>& t, const mlp::Mat<S>& student_weights, const mlp::Mat<S>& targets,
                    double lambda, double divisor, const std::vector<bool>& trainable, mlp::Model<S>* grad) {
  check_head(m);
  const mlp::Mat<S>& features = t.input[m.num_layers() - 1];  // D x n
  if (student_weights.cols() != features.rows())
    throw Error(fmt::format("student LogME weights have {} columns for {} features", student_weights.cols(), features.rows()));
  if (targets.rows() != student_weights.rows() || targets.cols() != features.cols())
    throw Error(fmt::format("teacher targets are {}x{} but the student predicts {}x{}", targets.rows(), targets.cols(),
                            student_weights.rows(), features.cols()));
  const mlp::Mat<S> residual = student_weights * features - targets;  // C x n
  const double value = lambda * residual.template cast<double>().squaredNorm() / divisor;
  if (grad) {
    const mlp::Mat<S> d_features = S(2 * lambda / divisor) * (student_weights.transpose() * residual);
    backward_from_features(m, t, d_features, trainable, *grad);
  }
  return value;
}

StudentWeights parse_student_weights(const std::string& name) {
  if (name == "fixed") return StudentWeights::Fixed;
  if (name == "refit") return StudentWeights::Refit;
  throw Error(fmt::format("unknown way to keep the student's LogME weights '{}' (known: fixed, refit)", name));
}

BTuningLoss::BTuningLoss(const mlp::Samples& train, const Matrix& teacher_targets, double lambda, StudentWeights student)
    : train_(train), targets_(teacher_targets.transpose().cast<float>()), lambda_(lambda), student_(student) {
  if (teacher_targets.rows() != train.size())
    throw Error(fmt::format("{} rows of teacher targets for {} training samples", teacher_targets.rows(), train.size()));
  if (!(lambda >= 0) || !std::isfinite(lambda)) throw Error(fmt::format("lambda = {}: must be finite and at least 0", lambda));
}

void BTuningLoss::fit_student_weights(const mlp::Model<float>& m) {
  const auto run = mlp::run_batches(m, train_.X, true, false);
  const bool classification = m.output == mlp::Output::Softmax;
  student_weights_ = logme_weights(run.features.transpose(), train_.y, m.output_dim(), classification);
  if (student_weights_.rows() != targets_.rows())
    throw Error(fmt::format("the student has {} outputs but the teacher targets {} columns", student_weights_.rows(), targets_.rows()));
  student_weights_f_ = student_weights_.cast<float>();
}

void BTuningLoss::start_epoch(const mlp::Model<float>& m, int epoch) {
  if (student_ == StudentWeights::Refit || epoch == 0 || student_weights_.size() == 0) fit_student_weights(m);
}

double BTuningLoss::add(const mlp::Model<float>& m, const mlp::Trace<float>& t, const std::vector<std::size_t>& index, double divisor,
                        const std::vector<bool>& trainable, mlp::Mat<float>& /*dz*/, mlp::Model<float>& grad) {
  mlp::Mat<float> targets(targets_.rows(), static_cast<Eigen::Index>(index.size()));
  for (std::size_t j = 0; j < index.size(); ++j)
    targets.col(static_cast<Eigen::Index>(j)) = targets_.col(static_cast<Eigen::Index>(index[j]));
  return btuning_term<float>(m, t, student_weights_f_, targets, lambda_, divisor, trainable, &grad);
}

double BTuningLoss::mean_distance(const mlp::Model<float>& m) const {
  if (student_weights_.size() == 0) throw Error("the student's LogME weights are not fitted yet (no epoch has started)");
  const auto run = mlp::run_batches(m, train_.X, true, false);
  const Matrix predicted = run.features.cast<double>() * student_weights_.transpose();  // N x C
  return (predicted - targets_.transpose().cast<double>()).squaredNorm() / double(std::max<Eigen::Index>(1, train_.size()));
}

#define CAULK_BTUNING_INSTANTIATE(S)                                                                                                  \
  template void backward_from_features<S>(const mlp::Model<S>&, const mlp::Trace<S>&, const mlp::Mat<S>&, const std::vector<bool>&,   \
                                          mlp::Model<S>&);                                                                            \
  template double btuning_term<S>(const mlp::Model<S>&, const mlp::Trace<S>&, const mlp::Mat<S>&, const mlp::Mat<S>&, double, double, \
                                  const std::vector<bool>&, mlp::Model<S>*);
CAULK_BTUNING_INSTANTIATE(float)
CAULK_BTUNING_INSTANTIATE(double)

}  // namespace caulk::tune
