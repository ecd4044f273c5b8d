// What the tuner nodes share: the teachers picked from a ranking, their features on the training
// split, the per-target tuning loop (load, prepare, train, predict, save) and its outputs.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/units.hpp"

namespace caulk::tuners {

struct TeacherPick {
  std::string name;
  double score = 0;
  const ModelEmbedding* embedding = nullptr;
};

// The k best models of the ranking that are not `excluded`, best first, each with its features.
// Throws Error naming the model when a ranked model has no features in the Embeddings, and when no
// candidate remains.
std::vector<TeacherPick> pick_teachers(const Scores& scores, const Embeddings& features, int k, const std::set<std::string>& excluded);

// A model's features on a split as N x D doubles. Throws DataError naming the file, the model and
// the split when the rows do not match the split's labels.
Matrix split_features(const ModelEmbedding& model, const DatasetSplit& split);

// The parameters every tuner node declares beside the tuning options: seed, train_split,
// validation_split, predict, save, suffix.
void declare_run_params(NodeSpec& s);
// Checks between parameters, before anything runs. With an extra loss term: no lbfgs (it cannot
// take one). Plain tuning: lbfgs only for a linear probe, as tune.peft.
std::vector<std::pair<std::string, std::string>> check_run_params(const Params& p);
std::vector<std::pair<std::string, std::string>> check_plain_run_params(const Params& p);

// One target model tuned: what a tuner's training step produced for it.
struct Tuned {
  mlp::TuningSetup setup;
  mlp::TrainReport report;
  Json details;  // node-specific facts for run.json
};

// What a tuner does beside the shared steps, on whichever rank runs the target's unit: train the
// prepared target (with its extra loss term, if any), from the node's parameters and `term`, what
// the node computed for this target and put in the unit description (teacher targets as
// matrix_to_json, facts about the teachers...). A plain function: it captures nothing, so the
// unit is described by its JSON alone.
using TrainFn = Tuned (*)(const Json& term, const Params& p, mlp::TuningSetup setup, const mlp::TrainOptions& options,
                          const mlp::Samples& train, const mlp::Samples* validation);

// The unit function of a tuner: one target from its description alone (the node's parameters, the
// dataset's files, the checkpoint's path, the node's `term`). It loads the target, prepares it
// with the node's tuning options and the seed tune.peft would use (so a model tuned here with no
// extra term equals tune.peft's bit for bit), calls `train`, predicts the chosen splits and
// writes the checkpoint (atomically, as tune.peft) to its final path; the predictions and the
// facts for run.json come back. A tuner's unit function is `tune_target_unit(d, its TrainFn)`.
Json tune_target_unit(const Json& description, TrainFn train);

// The node's side: one unit per target model of the hub (the `models` input or `manifest`), run by
// ctx.run_units with `unit` (the tuner's registered unit function), `terms[i]` going to target i;
// then the outputs are published. `method` goes into the checkpoints' metadata. The splits are
// checked before any unit starts.
void tune_targets(NodeContext& ctx, const Dataset& data, const std::vector<CheckpointRef>& targets, const std::string& method,
                  const UnitKind& unit, const std::vector<Json>& terms);


}  // namespace caulk::tuners
