#include "tuners/src/tuner_inputs.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "caulk/data_check.hpp"

#include "tuners/algorithms/btuning.hpp"

namespace caulk::tuners {

std::set<std::string> excluded_models(const Params& p, const Scores& scores) {
  std::set<std::string> excluded;
  if (!p.has("exclude")) return excluded;
  std::vector<std::string> ranked;
  for (const auto& s : scores.scores) ranked.push_back(s.model);
  for (const Value& v : p.get("exclude").as_array()) {
    const std::string name = v.as_string();
    if (std::find(ranked.begin(), ranked.end(), name) == ranked.end())
      throw Error(fmt::format("{}: `exclude` names model '{}', which the ranking of '{}' does not have ({}){}", v.where().str(), name,
                              scores.producer_node, fmt::join(ranked, ", "), did_you_mean_among(name, ranked)));
    excluded.insert(name);
  }
  return excluded;
}

std::vector<TeacherPick> pick_teachers(const Scores& scores, const Embeddings& features, int k, const std::set<std::string>& excluded) {
  std::vector<const ModelScore*> candidates;
  std::vector<double> values;
  for (const auto& s : scores.scores) {
    if (excluded.count(s.model)) continue;
    candidates.push_back(&s);
    values.push_back(scores.higher_is_better ? s.score : -s.score);
  }
  if (candidates.empty())
    throw Error(fmt::format("no teacher candidates: the scores of '{}' rank {} models, all of them excluded (the targets and `exclude`)",
                            scores.producer_node, scores.scores.size()));
  std::vector<TeacherPick> out;
  for (std::size_t i : tune::top_k(values, k)) {
    const std::string& name = candidates[i]->model;
    const ModelEmbedding* e = nullptr;
    for (const auto& m : features.models)
      if (m.name == name) e = &m;
    if (!e)
      throw Error(fmt::format("teacher '{}' (ranked by '{}') has no features in '{}' (models there: {})", name, scores.producer_node,
                              features.producer_node, [&] {
                                std::string s;
                                for (const auto& m : features.models) s += (s.empty() ? "" : ", ") + m.name;
                                return s.empty() ? std::string("none") : s;
                              }()));
    out.push_back({name, candidates[i]->score, e});
  }
  return out;
}

Matrix split_features(const ModelEmbedding& model, const DatasetSplit& split) {
  const ArrayFile& file = model.features_for(split.name);
  const MatrixView F = file.open(fmt::format("features of model '{}'", model.name));
  if (F.rows() != split.rows)
    throw DataError(file.describe(), fmt::format("model '{}' has {} rows of features for split '{}' but the labels ({}) have {}",
                                                 model.name, F.rows(), split.name, split.labels_file.string(), split.rows));
  return F.to_double();
}

std::vector<std::pair<std::string, std::string>> check_run_params(const Params& p) {
  std::vector<std::pair<std::string, std::string>> problems;
  if (p.string("optimizer") == "lbfgs") problems.emplace_back("optimizer", "an extra loss term trains by minibatch steps: use adam or sgd");
  return problems;
}

}  // namespace caulk::tuners
