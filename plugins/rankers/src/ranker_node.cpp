#include "rankers/src/ranker_node.hpp"

#include "rankers/src/shared_stats_cache.hpp"

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <mutex>

namespace caulk::rankers {

NodeSpec RankerNode::ranker_spec(std::string type, std::string summary) {
  NodeSpec s(std::move(type), std::move(summary));
  s.input("features", "Embeddings", "the hub's models: features on the target task's data");
  s.input("data", "Dataset", "the target task (labels, rows aligned with the features)");
  s.output("scores", "Scores", "one score per model");
  s.param(ParamSpec::string("split", "train", "the split of the data and features to score on"));
  return s;
}

namespace {

using RankerFactory = std::function<std::unique_ptr<RankerNode>()>;

std::map<std::string, RankerFactory>& ranker_factories() {
  static std::map<std::string, RankerFactory> factories;
  return factories;
}
std::mutex& ranker_factories_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

void RankerNode::remember(const std::string& type, RankerFactory make) {
  std::lock_guard lock(ranker_factories_mutex());
  ranker_factories()[type] = std::move(make);
}

Json RankerNode::score_unit(const Json& d) {
  std::unique_ptr<RankerNode> ranker;
  {
    const std::string type = d.at("ranker").get<std::string>();
    std::lock_guard lock(ranker_factories_mutex());
    auto it = ranker_factories().find(type);
    if (it == ranker_factories().end()) throw Error("no ranker '" + type + "' in the rankers plugin of this process");
    ranker = it->second();
  }
  const Params params = params_from_json(d.at("node").get<std::string>(), d.at("params"));
  const std::shared_ptr<const Dataset> data = dataset_from_json(d.at("data"));
  const std::string split_name = d.at("split").get<std::string>();
  const DatasetSplit& split = data->split(split_name);
  const ModelEmbedding m = model_embedding_from_json(d.at("model"));

  auto started = std::chrono::steady_clock::now();
  const ArrayFile& file = m.features_for(split_name);
  MatrixView features = file.open(fmt::format("features of model '{}'", m.name));
  if (features.rows() != split.rows)
    throw DataError(file.describe(), fmt::format("model '{}' has {} rows of features for split '{}' but the labels ({}) have {}",
                                                 m.name, features.rows(), split_name, split.labels_file.string(), split.rows));
  const rank::FeatureStats stats(features, shared_decompositions(file, features));
  RankerInput in{m, features, stats, *data, split, std::nullopt};
  if (ranker->needs_source_probs()) {
    const ArrayFile& probs = m.source_probs_for(split_name);
    in.source_probs = probs.open(fmt::format("source_probs of model '{}'", m.name));
    if (in.source_probs->rows() != split.rows)
      throw DataError(probs.describe(), fmt::format("model '{}' has {} rows of source_probs for split '{}' but the labels have {}",
                                                    m.name, in.source_probs->rows(), split_name, split.rows));
  }
  RankerResult r = ranker->score(in, params);
  Json out = Json::object();
  out["score"] = r.score;
  out["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (r.weights.size()) out["weights"] = matrix_to_json(r.weights);
  if (!r.details.is_null()) out["details"] = std::move(r.details);
  return out;
}

void RankerNode::run(NodeContext& ctx) {
  auto embeddings = ctx.input<Embeddings>("features");
  auto data = ctx.input<Dataset>("data");
  const Params& params = ctx.params();
  const std::string split_name = params.string("split");
  data->split(split_name);  // the split must exist (the error names the splits there are)
  if (data->kind == TaskKind::Regression && !supports_regression())
    throw Error(ctx.type() + " ranks models for classification tasks only; the dataset is a regression task");

  describe_run(params, ctx.summary());
  const auto& models = embeddings->models;
  std::vector<std::string> names;
  for (const auto& m : models) names.push_back(m.name);
  // One description per model: the same ranker, parameters and labels, that model's files.
  Json common = Json::object();
  common["ranker"] = ctx.type();
  common["node"] = ctx.id();
  common["params"] = params_to_json(params);
  common["split"] = split_name;
  common["data"] = dataset_to_json(*data, split_name);
  std::vector<Json> descriptions;
  for (const auto& m : models) {
    Json d = common;
    d["model"] = model_embedding_to_json(m, split_name);
    descriptions.push_back(std::move(d));
  }
  const std::vector<Json> unit_results = ctx.run_units("model", names, kScoreUnit, descriptions);
  std::vector<RankerResult> results(models.size());
  std::vector<double> seconds(models.size(), 0.0);
  for (std::size_t i = 0; i < models.size(); ++i) {
    const Json& u = unit_results[i];
    results[i].score = u.at("score").get<double>();
    if (u.contains("weights")) results[i].weights = matrix_from_json(u.at("weights"));
    if (u.contains("details")) results[i].details = u.at("details");
    seconds[i] = u.at("seconds").get<double>();
  }

  auto scores = std::make_shared<Scores>();
  scores->method = method();
  scores->higher_is_better = higher_is_better();
  Json score_json = Json::object(), seconds_json = Json::object(), details_json = Json::object();
  for (std::size_t i = 0; i < models.size(); ++i) {
    scores->scores.push_back({models[i].name, results[i].score, seconds[i]});
    if (results[i].weights.size()) scores->posterior_weights[models[i].name] = std::move(results[i].weights);
    score_json[models[i].name] = results[i].score;
    seconds_json[models[i].name] = seconds[i];
    if (!results[i].details.is_null()) details_json[models[i].name] = std::move(results[i].details);
  }
  Json& sum = ctx.summary();
  sum["scores"] = score_json;
  sum["higher_is_better"] = higher_is_better();
  sum["split"] = split_name;
  sum["seconds"] = seconds_json;
  if (!details_json.empty()) sum["details"] = std::move(details_json);
  ctx.publish("scores", std::move(scores));
}

}  // namespace caulk::rankers
