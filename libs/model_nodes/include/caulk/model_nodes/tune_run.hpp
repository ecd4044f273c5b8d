// The tuning run every node that tunes models of a hub shares (tune.peft and the tuners): its
// parameters (declared once here), the unit that tunes one model (load, prepare, train, predict,
// save) and the node's side that deals one unit per model and publishes the outputs. A node
// brings only its training step.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/models/training.hpp"
#include "caulk/units.hpp"

namespace caulk::models {

// The parameters of a tuning run beside the tuning options (declare_tuning_params): seed,
// train_split, validation_split, predict, save, suffix. A node may also declare
// `train_samples` (integer, 0 = all): the run then tunes on a seeded subsample of that size.
void declare_run_params(NodeSpec& s);
// Checks between parameters, before anything runs: lbfgs fits a convex head only, so only with
// mode = "linear_probe".
std::vector<std::pair<std::string, std::string>> check_plain_run_params(const Params& p);

// One model tuned: what a node's training step produced for it.
struct Tuned {
  mlp::TuningSetup setup;
  mlp::TrainReport report;
  Json details;  // node-specific facts for run.json
};

// A node's training step, on whichever rank runs the model's unit: train the prepared model (with
// its extra loss term, if any) from the node's parameters and `term`, what the node computed for
// this model and put in the unit's payload (teacher targets as matrix_to_json, facts...). A plain
// function: it captures nothing, so the unit is described by its payload and the node's Params.
using TrainFn = Tuned (*)(const Json& term, const Params& p, mlp::TuningSetup setup, const mlp::TrainOptions& options,
                          const mlp::Samples& train, const mlp::Samples* validation);

// The training step of tune.peft: mlp::train with no extra term; `term` (if an object) goes to
// run.json as it is.
Tuned train_plain(const Json& term, const Params& p, mlp::TuningSetup setup, const mlp::TrainOptions& options, const mlp::Samples& train,
                  const mlp::Samples* validation);

// A node's extra loss term for a model tuned through the model interface (TorchScript; the MLP
// trains by its TrainFn): made on the unit's rank from the node's `term` and Params and the
// training samples; null for plain tuning. Its report() goes to run.json; without a term, `term`
// (if an object) does.
using TermFn = std::unique_ptr<OutputTerm> (*)(const Json& term, const Params& p, const TrainingSamples& train);

// The unit of a tuning node (caulk/units.hpp): one model, from the node's Params and its `data`
// input (from the unit's context) and the payload (the checkpoint's path, the node's `term`). It
// loads the model, prepares it with the node's tuning options and the model's own seed (so the
// same model, seed and options start identically in every tuning node), calls `train`, predicts
// the chosen splits and writes the checkpoint (atomically) to its final path; the predictions and
// the facts for run.json come back. A tuning node's run_unit is `tune_target_unit(ctx, payload,
// its TrainFn, its TermFn)`.
// A model of another family (a Checkpoint entry with a module: TorchScript) goes through the
// model interface instead: open_model, prepare_model, models::train with the node's term, then
// its weights (LoRA folded) as safetensors with PyTorch's names and, for merged, the whole model
// in its own format beside them (NAME.pt); its Checkpoint entry is the original module with the
// tuned safetensors as its weights (docs/models.md, "Tuning TorchScript models").
Json tune_target_unit(UnitContext& ctx, const Json& payload, TrainFn train, TermFn term = nullptr);

// The node's side: one unit per target model (the `models` input or `manifest`), run by
// ctx.run_units (the node's run_unit calls tune_target_unit), `terms[i]` going to target i; then
// the checkpoints and predictions are published. `data` is the node's `data` input. A non-empty `method` names the tuning method
// in the checkpoints' metadata (tuning_method) and adds `tuned_from` to each model's facts. The
// splits (and the subsample) are checked before any unit starts.
void tune_targets(NodeContext& ctx, const Dataset& data, const std::vector<CheckpointRef>& targets, const std::string& method,
                  const std::vector<Json>& terms);

}  // namespace caulk::models
