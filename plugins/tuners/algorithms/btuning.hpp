// B-Tuning (You et al., JMLR 2022; docs/btuning.md): tune a target model (the student) with
// the knowledge of the top-K models of a hub ranked by LogME (the teachers).
//
//   pi = softmax(LogME / tau) over the K teachers;
//   teacher(x) = sum_k pi_k f_k(x) m_k^T, a C-vector (m_k: teacher k's LogME posterior mean weights,
//   C x D_k, so teachers of any feature width can be used);
//   loss = CE(student) + lambda || f_s(x) m_s^T - teacher(x) ||^2, averaged over the samples,
// with m_s the student's own LogME posterior mean weights. m_s is a statistic of the features, as
// the teachers' m_k are: no gradient flows through it. Two ways to keep it (StudentWeights):
//   Fixed:   LogME on the student's features before tuning, kept throughout (the authors' code in
//            TLlib loads it from a file computed once);
//   Refit:   LogME refitted on the student's current features of the whole training set at the
//            start of every epoch, held fixed within the epoch.
// The distance is summed over the C columns (the method's definition); TLlib's MSELoss averages over them, so
// its lambda is C times ours.
#pragma once
#include <string>
#include <vector>

#include "caulk/matrix.hpp"
#include "caulk/mlp/training.hpp"

namespace caulk::tune {

// ---------------------------------------------------------------------------------------------
// Teachers

// Positions of the k highest scores, best first (equal scores keep their order); all when k
// exceeds the count. Throws Error when k < 1.
std::vector<std::size_t> top_k(const std::vector<double>& scores, int k);

// pi = softmax(scores / tau), computed with the largest term factored out (no overflow for
// LogME values of any size). Throws Error when tau <= 0 or a score is not finite.
std::vector<double> teacher_weights(const std::vector<double>& scores, double tau);

struct Teacher {
  std::string name;
  Matrix features;  // N x D_k, rows aligned with the training samples
  Matrix weights;   // C x D_k: LogME posterior mean weights on the target task
};

// sum_k pi_k F_k M_k^T (N x C). Throws Error naming the teacher whose rows, feature width or class
// count does not fit, or when pi does not have one weight per teacher.
Matrix teacher_target(const std::vector<Teacher>& teachers, const std::vector<double>& pi);

// ---------------------------------------------------------------------------------------------
// The student

// LogME posterior mean weights (C x D) of features given as columns (D x N): one 0/1 column per
// class for softmax models (classes from y.classes), the target columns for regression.
Matrix logme_weights(const mlp::Mat<float>& features_by_column, const mlp::Targets<float>& y, int outputs, bool classification);

// The B-Tuning term on a chunk of a minibatch, from the forward trace of the student:
//   value = lambda / divisor * sum_i || M_s f_s(x_i) - t_i ||^2
// with f_s(x_i) the features (the head's input, column i of t.input.back()), M_s (C x D) held
// fixed and t_i the columns of `targets` (C x n). With `grad`, adds the gradient of the value with
// respect to the parameters marked in `trainable` (only those below the head receive any: the
// head does not touch the features). The model's head must be one layer reading the features
// (feature_layer = L - 2, as every model prepare_tuning makes).
template <class S>
double btuning_term(const mlp::Model<S>& m, const mlp::Trace<S>& t, const mlp::Mat<S>& student_weights, const mlp::Mat<S>& targets,
                    double lambda, double divisor, const std::vector<bool>& trainable, mlp::Model<S>* grad);

// Adds to `grad` the gradient of a term that reaches the model through its features only, given
// d term / d features (D x n), for the trainable parameters below the head. Same head condition.
template <class S>
void backward_from_features(const mlp::Model<S>& m, const mlp::Trace<S>& t, const mlp::Mat<S>& d_features,
                            const std::vector<bool>& trainable, mlp::Model<S>& grad);

enum class StudentWeights { Fixed, Refit };
StudentWeights parse_student_weights(const std::string& name);  // "fixed" or "refit"

// The term as an extra loss of mlp::train: fits M_s with LogME on the training samples' features
// before the first epoch (Fixed) or before every epoch (Refit); teacher targets are N x C, rows
// aligned with the training samples.
class BTuningLoss : public mlp::ExtraLoss {
 public:
  BTuningLoss(const mlp::Samples& train, const Matrix& teacher_targets, double lambda, StudentWeights student = StudentWeights::Fixed);
  void start_epoch(const mlp::Model<float>& m, int epoch) override;
  double add(const mlp::Model<float>& m, const mlp::Trace<float>& t, const std::vector<std::size_t>& index, double divisor,
             const std::vector<bool>& trainable, mlp::Mat<float>& dz, mlp::Model<float>& grad) override;
  // M_s of the current epoch (C x D).
  const Matrix& student_weights() const { return student_weights_; }
  // Mean over the training samples of || M_s f_s(x) - teacher(x) ||^2 for the model given, with
  // the M_s in use (what the term is after training).
  double mean_distance(const mlp::Model<float>& m) const;

 private:
  void fit_student_weights(const mlp::Model<float>& m);

  const mlp::Samples& train_;
  mlp::Mat<float> targets_;  // C x N
  double lambda_;
  StudentWeights student_;
  Matrix student_weights_;
  mlp::Mat<float> student_weights_f_;
};

}  // namespace caulk::tune
