#include "ranker_node.hpp"

#include "shared_stats_cache.hpp"

#include <fmt/format.h>

#include <chrono>

namespace caulk::rankers {

NodeSpec RankerNode::ranker_spec(std::string type, std::string summary) {
  NodeSpec s(std::move(type), std::move(summary));
  s.input("features", "Embeddings", "the hub's models: features on the target task's data");
  s.input("data", "Dataset", "the target task (labels, rows aligned with the features)");
  s.output("scores", "Scores", "one score per model");
  s.param(ParamSpec::string("split", "train", "the split of the data and features to score on"));
  return s;
}

void RankerNode::run(NodeContext& ctx) {
  auto embeddings = ctx.input<Embeddings>("features");
  auto data = ctx.input<Dataset>("data");
  const Params& params = ctx.params();
  const std::string split_name = params.string("split");
  const DatasetSplit& split = data->split(split_name);
  if (data->kind == TaskKind::Regression && !supports_regression())
    throw Error(ctx.type() + " ranks models for classification tasks only; the dataset is a regression task");

  describe_run(params, ctx.summary());
  const auto& models = embeddings->models;
  std::vector<std::string> names;
  for (const auto& m : models) names.push_back(m.name);
  std::vector<RankerResult> results(models.size());
  std::vector<double> seconds(models.size(), 0.0);

  ctx.for_each_unit("model", names, [&](std::size_t i) {
    const ModelEmbedding& m = models[i];
    auto started = std::chrono::steady_clock::now();
    const ArrayFile& file = m.features_for(split_name);
    MatrixView features = file.open(fmt::format("features of model '{}'", m.name));
    if (features.rows() != split.rows)
      throw DataError(file.describe(), fmt::format("model '{}' has {} rows of features for split '{}' but the labels ({}) have {}",
                                                   m.name, features.rows(), split_name, split.labels_file.string(), split.rows));
    const rank::FeatureStats stats(features, shared_decompositions(file, features));
    RankerInput in{m, features, stats, *data, split, std::nullopt};
    if (needs_source_probs()) {
      const ArrayFile& probs = m.source_probs_for(split_name);
      in.source_probs = probs.open(fmt::format("source_probs of model '{}'", m.name));
      if (in.source_probs->rows() != split.rows)
        throw DataError(probs.describe(), fmt::format("model '{}' has {} rows of source_probs for split '{}' but the labels have {}",
                                                      m.name, in.source_probs->rows(), split_name, split.rows));
    }
    results[i] = score(in, params);
    seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  });

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
