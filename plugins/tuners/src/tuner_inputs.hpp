// What the tuner nodes share: the teachers picked from a ranking, their features on the training
// split, the per-target tuning loop (load, prepare, train, predict, save) and its outputs.
#pragma once
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "peft.hpp"
#include "training.hpp"

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

// One target model tuned: what the node's loop produced for it.
struct Tuned {
  mlp::TuningSetup setup;
  mlp::TrainReport report;
  Json details;  // node-specific facts for run.json
};

// The shared per-target loop: for each target model of the hub (the `models` input or `manifest`),
// load it, prepare it with the node's tuning options and the seed tune.peft would use (so a model
// tuned here with no extra term equals tune.peft's bit for bit), call `train` with the training
// and validation samples, then predict the chosen splits, save the checkpoint and fill the outputs.
// `extra_meta` goes into the checkpoint's metadata.
using TrainFn = std::function<Tuned(std::size_t target, const CheckpointRef& ref, mlp::TuningSetup setup,
                                    const mlp::TrainOptions& options, const mlp::Samples& train, const mlp::Samples* validation)>;
void tune_targets(NodeContext& ctx, const Dataset& data, const std::vector<CheckpointRef>& targets, const std::string& method,
                  const TrainFn& train);

// The training samples of the node's train_split.
mlp::Samples training_samples(const NodeContext& ctx, const Dataset& data);

}  // namespace caulk::tuners
