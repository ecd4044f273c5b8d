#include "tuners/algorithms/distillation.hpp"

#include <fmt/format.h>

#include <cmath>

#include "caulk/error.hpp"

namespace caulk::tune {

namespace {

void check_temperature(double T) {
  if (!(T > 0) || !std::isfinite(T)) throw Error(fmt::format("temperature = {}: must be positive", T));
}

// log softmax of one column, in double.
Vector log_softmax(const Eigen::Ref<const Vector>& z) {
  const double mx = z.maxCoeff();
  const double lse = mx + std::log((z.array() - mx).exp().sum());
  return z.array() - lse;
}

}  // namespace

Matrix soft_targets(const std::vector<Matrix>& teacher_logits, double temperature) {
  check_temperature(temperature);
  if (teacher_logits.empty()) throw Error("no teachers to distil from");
  const Eigen::Index N = teacher_logits.front().rows(), C = teacher_logits.front().cols();
  Matrix mean = Matrix::Zero(N, C);
  for (std::size_t k = 0; k < teacher_logits.size(); ++k) {
    if (teacher_logits[k].rows() != N || teacher_logits[k].cols() != C)
      throw Error(
          fmt::format("teacher {} has {}x{} logits but teacher 0 has {}x{}", k, teacher_logits[k].rows(), teacher_logits[k].cols(), N, C));
    mean += teacher_logits[k];
  }
  mean /= double(teacher_logits.size());
  Matrix q(N, C);
  for (Eigen::Index i = 0; i < N; ++i) q.row(i) = log_softmax(mean.row(i).transpose() / temperature).array().exp().transpose();
  return q;
}

DistillationLoss::DistillationLoss(const Matrix& soft, const std::vector<int>& labels, double temperature, double alpha)
    : targets_(soft.transpose()), labels_(labels), temperature_(temperature), alpha_(alpha) {
  check_temperature(temperature);
  if (static_cast<Eigen::Index>(labels.size()) != soft.rows())
    throw Error(fmt::format("{} rows of soft targets for {} training labels", soft.rows(), labels.size()));
  if (!(alpha >= 0 && alpha <= 1)) throw Error(fmt::format("alpha = {}: the weight of the distillation term must lie in [0, 1]", alpha));
}

double DistillationLoss::add(const mlp::Model<float>& m, const mlp::Trace<float>& t, const std::vector<std::size_t>& index, double divisor,
                             const std::vector<bool>& /*trainable*/, mlp::Mat<float>& dz, mlp::Model<float>& /*grad*/) {
  if (m.output != mlp::Output::Softmax) throw Error("distillation needs a classification model (softmax outputs)");
  const mlp::Mat<float>& z = t.pre.back();  // C x n logits
  if (z.rows() != targets_.rows())
    throw Error(fmt::format("the student has {} outputs but the soft targets {} classes", z.rows(), targets_.rows()));
  const double T = temperature_;
  double total = 0;
  for (Eigen::Index j = 0; j < z.cols(); ++j) {
    const Vector zj = z.col(j).cast<double>();
    const Vector q = targets_.col(static_cast<Eigen::Index>(index[static_cast<std::size_t>(j)]));
    const Vector log_p = log_softmax(zj), log_pT = log_softmax(zj / T);
    const int y = labels_[index[static_cast<std::size_t>(j)]];
    const Vector p = log_p.array().exp();
    double kl = 0;
    for (Eigen::Index c = 0; c < z.rows(); ++c)
      if (q(c) > 0) kl += q(c) * (std::log(q(c)) - log_pT(c));
    total += alpha_ * (T * T * kl + log_p(y));  // alpha (T^2 KL - CE), CE = -log p_y
    Vector g = alpha_ * (T * (log_pT.array().exp() - q.array()).matrix() - p);
    g(y) += alpha_;
    dz.col(j) += (g / divisor).cast<float>();
  }
  return total / divisor;
}

double distillation_loss(const Matrix& logits, const std::vector<int>& labels, const Matrix& q, double T, double alpha) {
  check_temperature(T);
  double total = 0;
  for (Eigen::Index j = 0; j < logits.cols(); ++j) {
    const Vector log_p = log_softmax(logits.col(j)), log_pT = log_softmax(logits.col(j) / T);
    double kl = 0;
    for (Eigen::Index c = 0; c < logits.rows(); ++c)
      if (q(c, j) > 0) kl += q(c, j) * (std::log(q(c, j)) - log_pT(c));
    total += (1 - alpha) * -log_p(labels[static_cast<std::size_t>(j)]) + alpha * T * T * kl;
  }
  return total / double(logits.cols());
}

}  // namespace caulk::tune
