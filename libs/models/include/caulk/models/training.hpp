// Training any model through the model interface (caulk/models/model.hpp): minibatch SGD with
// momentum or Adam(W) over the trainable parameters, a learning-rate schedule, early stopping on a
// validation set, an optional extra loss term on the model's outputs or features, and the convex
// case (a new linear head on frozen features) by L-BFGS. The options and the report are the MLP's
// (caulk/mlp/training.hpp), with the same meaning; docs/models.md, "Tuning TorchScript models".
//
// Arithmetic, as PyTorch's optimisers on the same gradients: SGD g += wd theta (weight decay on
// parameters of two or more dimensions: weights and kernels, not biases or normalisation scales),
// v = momentum v + g, theta -= lr v; AdamW theta *= 1 - lr wd, then Adam with bias correction.
// Seeded: the minibatch order is the MLP trainer's (SeededUniform(seed) shuffles every epoch), and
// each minibatch is one forward/backward pass, so nothing depends on the number of threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "caulk/artifacts.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/models/model.hpp"

namespace caulk::models {

// N samples of any shape held in memory (C order, F32 or I64) with their class indices
// (classification) or target values (N x T, regression).
struct TrainingSamples {
  io::DType dtype = io::DType::F32;
  std::vector<std::int64_t> shape;  // {N, ...}
  std::vector<std::byte> data;
  std::vector<int> classes;
  RowMatrixF values;

  std::int64_t size() const { return shape.empty() ? 0 : shape.front(); }
  bool classification() const { return values.size() == 0; }
  InputBatch all() const;
  // The rows listed by `index`, in that order (a subset, or a shuffled minibatch).
  TrainingSamples subset(const std::vector<std::size_t>& index) const;
};

// A dataset split's inputs (as the model takes them: ModelInputs::dtype_for) with its labels or
// targets. Throws Error naming the split when it has no inputs, DataError naming the file when its
// rows do not match the labels.
TrainingSamples training_samples(const Dataset& data, const std::string& split, const Model& model);

// An extra term of the training loss beside the cross-entropy (or squared error), acting on what
// forward() returns: B-Tuning's feature matching, knowledge distillation.
class OutputTerm {
 public:
  virtual ~OutputTerm();
  // Whether add() reads the features and may give a gradient through them (the trainer then
  // passes the features' gradient to backward()).
  virtual bool uses_features() const = 0;
  // Called before every epoch with the current model (e.g. to refit statistics of its features).
  virtual void start_epoch(const Model& /*model*/, int /*epoch*/) {}
  // The term's sum over the minibatch's samples divided by `divisor` (the minibatch size). `index`
  // holds the samples' positions in the training samples. Adds the term's gradient with respect
  // to the features (N x D, when uses_features()) and the outputs (N x C) to d_features/d_outputs.
  virtual double add(const Outputs& values, const std::vector<std::size_t>& index, double divisor, RowMatrixF& d_features,
                     RowMatrixF& d_outputs) = 0;
  // Facts about the term after training, for run.json (an object; empty by default).
  virtual nlohmann::ordered_json report(const Model& /*model*/) { return nlohmann::ordered_json::object(); }
};

// The plain loss of outputs: mean cross-entropy of logits (classes) or mean squared error over
// samples and target columns (values), as the MLP's; with `d_outputs`, its gradient with respect
// to the outputs for a sum divided by `divisor`. Returns the sum over the rows divided by `divisor`.
double output_loss(const RowMatrixF& outputs, const TrainingSamples& samples, const std::vector<std::size_t>& rows, double divisor,
                   RowMatrixF* d_outputs);

// The mean plain loss of the model over the samples (outputs in batches of 512, summed in double).
double mean_loss(const Model& model, const TrainingSamples& samples);

// Minibatch steps over the model's trainable parameters (adam or sgd), keeping the moments.
class ModelOptimizer {
 public:
  ModelOptimizer(const Model& model, const mlp::TrainOptions& options);
  // One step on the rows `index` of `samples`: forward, plain loss (+ the term), backward, update.
  // Returns the minibatch's loss (with the term).
  double step(Model& model, const TrainingSamples& samples, const std::vector<std::size_t>& index, double learning_rate, OutputTerm* term);

 private:
  mlp::TrainOptions o_;
  std::vector<std::string> names_;
  std::vector<bool> decay_;
  std::vector<std::vector<float>> theta_, first_, second_;
  Gradients grad_;
  long steps_ = 0;
};

// Trains the model's trainable parameters (adam or sgd; lbfgs: fit_head_lbfgs). With `validation`
// (may be null, or empty), the parameters of the epoch with the lowest validation loss are kept;
// early stopping and the reported losses use the plain loss alone.
mlp::TrainReport train(Model& model, const TrainingSamples& train, const TrainingSamples* validation, const mlp::TrainOptions& options,
                       OutputTerm* term = nullptr);

// The linear probe: the new head (replace_head first) fitted by L-BFGS in float64 on the frozen
// features run() gives, minimising the MLP probe's objective (mlp::linear_head_objective: mean
// loss + (wd / 2) ||W||^2), from the head's current values; then written into the model.
mlp::TrainReport fit_head_lbfgs(Model& model, const TrainingSamples& train, const TrainingSamples* validation,
                                const mlp::TrainOptions& options);

}  // namespace caulk::models
