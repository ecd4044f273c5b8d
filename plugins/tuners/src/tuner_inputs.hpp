// What the tuner nodes share: the teachers picked from a ranking, their features on the training
// split, and tune.peft's tuning run (load, prepare, train, predict, save) they all go through.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/model_nodes/tune_run.hpp"
#include "caulk/units.hpp"

namespace caulk::tuners {

struct TeacherPick {
  std::string name;
  double score = 0;
  const ModelEmbedding* embedding = nullptr;
};

// The models `exclude` names, each checked against the ranking: a name the ranking does not have
// (a typo would otherwise exclude nothing, silently) throws Error at the parameter's FILE:LINE:COL
// with the ranked models and a did-you-mean.
std::set<std::string> excluded_models(const Params& p, const Scores& scores);

// The k best models of the ranking that are not `excluded`, best first, each with its features.
// Throws Error naming the model when a ranked model has no features in the Embeddings, and when no
// candidate remains.
std::vector<TeacherPick> pick_teachers(const Scores& scores, const Embeddings& features, int k, const std::set<std::string>& excluded);

// A model's features on a split as N x D doubles. Throws DataError naming the file, the model and
// the split when the rows do not match the split's labels.
Matrix split_features(const ModelEmbedding& model, const DatasetSplit& split);

// The tuning run is tune.peft's (libs/model_nodes, caulk/model_nodes/tune_run.hpp): its run
// parameters, its unit body and its node side, called here with each tuner's training step.
using models::check_plain_run_params;
using models::declare_run_params;
using models::TrainFn;
using models::tune_target_unit;
using models::tune_targets;
using models::Tuned;

// Checks between parameters, before anything runs, for a tuner with an extra loss term: no lbfgs
// (it cannot take one).
std::vector<std::pair<std::string, std::string>> check_run_params(const Params& p);

}  // namespace caulk::tuners
