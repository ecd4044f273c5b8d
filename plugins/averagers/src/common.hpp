// What the averagers' nodes share: gathering the candidate models from Predictions inputs,
// stacking them with the truth of a split, reading covariates, and the common parameters.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "averagers/algorithms/combination.hpp"
#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"

namespace caulk::averagers {

// Every model of every Predictions input, in input order, with its producer (for messages).
struct Candidates {
  TaskKind kind = TaskKind::Regression;
  std::vector<std::string> names, producers;
  std::vector<const ModelPredictions*> models;
  // Per model: the files its splits were read from (predictions.load), or nullptr.
  std::vector<const std::map<std::string, std::filesystem::path>*> files;
  // The splits every model has, sorted.
  std::vector<std::string> common_splits() const;
  // Model k's matrix on a split; throws Error naming the model, its producer and its splits.
  const Matrix& on(std::size_t k, const std::string& split) const;
  // "model 'a' (split 'val' of FILE)", or "... of node 'sim'" when it was not read from a file.
  std::string describe(std::size_t k, const std::string& split) const;
};

// Throws Error when inputs mix kinds, a model name occurs twice, or the dataset's kind differs.
Candidates gather_candidates(const std::vector<std::shared_ptr<const Predictions>>& inputs, const Dataset* data);

// The stack of the candidates on `split` (predictions of the Predictions split `prediction_split`,
// default the same name) with the dataset's truth there. Errors name the model.
avg::Stack stack_on(const Candidates& c, const Dataset& data, const std::string& split, const std::string& prediction_split = {});
// Checks the magnitude of a stack's values before a fit or an evaluation (docs/averaging.md,
// "Magnitudes"): within the range the arithmetic holds, nothing happens; beyond it, a fit that
// does not depend on the values' scale (`scale_free`) gets the stack rescaled by a power of two
// (logged; losses and risks then go through Loss::for_scale and Loss::in_given_units), and any
// other is refused, `scale_dependence` saying why, naming the model or the targets, its file and
// what to do. Values that span more than the range are refused always. `prediction_split` as in
// stack_on.
void check_magnitudes(const NodeContext& ctx, const Candidates& c, const Dataset& data, const std::string& split, avg::Stack& s,
                      bool scale_free, const std::string& scale_dependence = {}, const std::string& prediction_split = {});

// The stack with no truth (for applying weights): the truth is left empty.
avg::Stack predictions_only(const Candidates& c, const std::string& split);

// Covariates z of a dataset split: `source` "covariates", "inputs" or "auto" (covariates when the
// split has them, else inputs); `columns` selects columns (empty: all). Errors name the split.
Matrix covariates_of(const Dataset& data, const std::string& split, const std::string& source, const std::vector<int>& columns);
std::vector<int> column_list(const Params& p, const std::string& name);

// Parameters `loss` (auto: cross_entropy for classification, squared for regression), `delta`, `tau`.
void declare_loss_params(NodeSpec& s);
avg::Loss loss_from(const Params& p, TaskKind kind);
void declare_fit_split(NodeSpec& s);

// One combined model on every split in `weights` (split -> N x K) or with constant weights.
std::shared_ptr<Predictions> combined_predictions(const std::string& name, const Candidates& c,
                                                  const std::map<std::string, Matrix>& weights);
std::shared_ptr<Weights> weights_artifact(const Candidates& c, std::map<std::string, Matrix> weights,
                                          std::filesystem::path function_file = {});
// The same constant weights on every common split.
std::map<std::string, Matrix> constant_weights(const Candidates& c, const Vector& w);
Json weights_json(const Candidates& c, const Vector& w);

}  // namespace caulk::averagers
