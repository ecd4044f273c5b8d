// Training an MLP's trainable parameters: minibatch SGD with momentum or Adam(W), a learning-rate
// schedule, early stopping on a validation set; L-BFGS for a convex head (a linear probe).
// Seeded and deterministic: the minibatch order comes from the seed, and each minibatch is split
// into a fixed number of chunks (from its size alone) whose gradients are summed in order, so the
// numbers do not depend on the number of threads.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "caulk/mlp/backprop.hpp"

namespace caulk::mlp {

// Samples as columns: X is input_dim x N (float32), with class indices or target values.
struct Samples {
  Mat<float> X;
  Targets<float> y;
  Eigen::Index size() const { return X.cols(); }
  // The columns listed by `index` (a subset, or a shuffled minibatch).
  Samples subset(const std::vector<std::size_t>& index) const;
};

struct TrainOptions {
  std::string optimizer = "adam";  // adam, sgd, lbfgs (lbfgs: the head of a linear probe only)
  double learning_rate = 1e-3;
  double momentum = 0.9;                              // sgd
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  // adam
  // sgd and lbfgs: the penalty (wd / 2) ||W||^2 on weight matrices (not biases);
  // adam: decoupled decay W <- W - lr wd W (AdamW).
  double weight_decay = 0;
  int epochs = 50;
  int batch_size = 64;
  std::string schedule = "constant";  // constant, cosine (to 0 at the last epoch), step
  int step_every = 10;                // step: multiply the rate by step_gamma every this many epochs
  double step_gamma = 0.1;
  int patience = 10;  // early stopping: epochs without a better validation loss; 0 = off
  int lbfgs_iterations = 500;
  double lbfgs_tolerance = 1e-6;  // on the gradient norm, relative to max(1, ||theta||)
  std::uint64_t seed = 0;
};

struct TrainReport {
  int epochs = 0;      // epochs run (lbfgs: iterations)
  int best_epoch = 0;  // the epoch whose parameters were kept
  bool stopped_early = false;
  double train_loss = 0;  // mean loss on the training samples with the final parameters
  double validation_loss = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> validation_curve;  // per epoch
};

// One optimiser step on one parameter tensor, as PyTorch takes it: SGD with momentum (no
// dampening; the L2 decay added to the gradient, which this changes) or AdamW (decoupled decay).
// `step` counts the steps from 1; `decay` says whether the tensor is decayed (weight matrices, not
// biases). mlp::train and the model interface's trainer (caulk/models/training.hpp) both step
// through here, so they take the same steps.
void optimizer_step(const TrainOptions& o, double lr, long step, bool decay, Eigen::Map<Vec<float>> theta, Eigen::Map<Vec<float>> g,
                    Eigen::Map<Vec<float>> v1, Eigen::Map<Vec<float>> v2);

// Mean loss of the model over the samples (in blocks; the sum accumulated in double).
double mean_loss(const Model<float>& m, const Samples& data);

// An extra term of the training loss beside the cross-entropy (or squared error): B-Tuning's
// feature matching, knowledge distillation. It sees each chunk of a minibatch through the forward
// pass the loss already made, so it costs no second forward pass.
class ExtraLoss {
 public:
  virtual ~ExtraLoss() = default;
  // Called before every epoch with the current model (e.g. to refresh statistics of its features).
  virtual void start_epoch(const Model<float>& /*m*/, int /*epoch*/) {}
  // The term's sum over the chunk's samples divided by `divisor` (the minibatch size), as the loss.
  // `index` holds the chunk's columns' positions in the training samples. The term may add its
  // gradient with respect to the output layer's pre-activation to `dz` (the standard backward pass
  // then carries it), and may add any other gradient (e.g. one entering at the features) to `grad`
  // itself, for the parameters marked in `trainable`.
  virtual double add(const Model<float>& m, const Trace<float>& t, const std::vector<std::size_t>& index, double divisor,
                     const std::vector<bool>& trainable, Mat<float>& dz, Model<float>& grad) = 0;
};

// Minibatch steps with SGD (momentum) or Adam(W), keeping the moments between steps.
class Optimizer {
 public:
  Optimizer(const Model<float>& shape, const TrainOptions& options);
  // One step on a minibatch: its gradient (in a fixed number of chunks by its size, summed in
  // order) and the update of the trainable parameters. Returns the minibatch's mean loss.
  double step(Model<float>& m, const std::vector<bool>& trainable, const Samples& batch, double learning_rate);
  // The same with an extra loss term (none when `extra` is null: then exactly the step above).
  // `index` holds the minibatch's columns' positions in the training samples (for `extra`).
  double step(Model<float>& m, const std::vector<bool>& trainable, const Samples& batch, double learning_rate,
              const std::vector<std::size_t>& index, ExtraLoss* extra);

 private:
  TrainOptions o_;
  Model<float> first_moment_, second_moment_;
  std::vector<Model<float>> grads_;
  long steps_ = 0;
};

// Trains the parameters marked in `trainable` (see prepare_tuning). With `validation` (may be
// null), the parameters of the epoch with the lowest validation loss are kept.
TrainReport train(Model<float>& m, const std::vector<bool>& trainable, const Samples& train, const Samples* validation,
                  const TrainOptions& options);
// The same with an extra loss term (adam or sgd only; none when `extra` is null). Early stopping
// and the reported losses use the plain loss (cross-entropy or squared error) alone.
TrainReport train(Model<float>& m, const std::vector<bool>& trainable, const Samples& train, const Samples* validation,
                  const TrainOptions& options, ExtraLoss* extra);

// The convex case: only the last layer trains and it reads the features directly (a linear probe).
// Minimises mean loss + (wd / 2) ||W||^2 by L-BFGS in float64 over precomputed features.
TrainReport fit_head_lbfgs(Model<float>& m, const Samples& train, const Samples* validation, const TrainOptions& options);

// The objective of a linear head z = W f + b on fixed features F (D x n, one column per sample)
// and its gradient, at packed parameters [vec(W) column-major C x D, b] (C = `outputs`):
//   softmax:  (1/n) sum_i [ logsumexp(z_i) - z_i,y_i ] + (wd / 2) ||W||^2
//   identity: (1/(n C)) sum_i ||z_i - y_i||^2 + (wd / 2) ||W||^2   (targets.values is C x n)
// What fit_head_lbfgs minimises, and the MLP merges' refit of an ensemble's head.
double linear_head_objective(const Mat<double>& features, const Targets<float>& targets, int outputs, Output output, double weight_decay,
                             const Eigen::VectorXd& packed, Eigen::VectorXd& gradient);

// The learning rate of an epoch (0-based) under the schedule.
double scheduled_rate(const TrainOptions& o, int epoch);

}  // namespace caulk::mlp
