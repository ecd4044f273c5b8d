// Knowledge distillation (Hinton et al., 2015) from the average of several teachers' heads: the
// baseline B-Tuning is compared with. The student minimises, per sample,
//   (1 - alpha) CE(y, softmax(z)) + alpha T^2 KL(q || softmax(z / T)),   q = softmax(zbar / T),
// with z the student's logits and zbar the mean of the teachers' logits (each teacher: a linear
// head fitted on its own frozen features for the target task).
#pragma once
#include <vector>

#include "caulk/matrix.hpp"
#include "caulk/mlp/training.hpp"

namespace caulk::tune {

// q = softmax(mean_k logits_k / T), row by row (N x C). Throws Error when the teachers' logits do
// not all have the same shape, or T <= 0.
Matrix soft_targets(const std::vector<Matrix>& teacher_logits, double temperature);

// The distillation loss as an extra term beside the cross-entropy mlp::train already computes:
// (1 - alpha) CE + alpha T^2 KL = CE + alpha (T^2 KL - CE), so the extra term is
// alpha (T^2 KL - CE), whose gradient with respect to the logits is alpha (T (p_T - q) - (p - e_y)).
// Soft targets (N x C) and labels are those of the training samples, in their order.
class DistillationLoss : public mlp::ExtraLoss {
 public:
  DistillationLoss(const Matrix& soft_targets, const std::vector<int>& labels, double temperature, double alpha);
  double add(const mlp::Model<float>& m, const mlp::Trace<float>& t, const std::vector<std::size_t>& index, double divisor,
             const std::vector<bool>& trainable, mlp::Mat<float>& dz, mlp::Model<float>& grad) override;

 private:
  mlp::Mat<double> targets_;  // C x N
  std::vector<int> labels_;
  double temperature_, alpha_;
};

// The per-sample distillation loss written out directly (for tests and reports): the mean over
// columns of (1 - alpha) CE + alpha T^2 KL(q_i || softmax(z_i / T)); z and q are C x n.
double distillation_loss(const Matrix& logits, const std::vector<int>& labels, const Matrix& soft_targets_by_column, double temperature,
                         double alpha);

}  // namespace caulk::tune
