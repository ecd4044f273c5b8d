#include "rankers/src/ranker_node.hpp"

#include "rankers/src/shared_stats_cache.hpp"

#include <fmt/format.h>

#include "caulk/figures/charts.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

namespace caulk::rankers {

NodeSpec RankerNode::ranker_spec(std::string type, std::string summary, bool needs_source_probs, bool supports_regression) {
  NodeSpec s(std::move(type), std::move(summary));
  s.input("features", "Embeddings", "the hub's models: features on the target task's data");
  s.input("data", "Dataset", "the target task (labels, rows aligned with the features)");
  s.output("scores", "Scores", "one score per model");
  s.output("figure", "Figure", "the scores as bars, best first (drawn in report.html)");
  s.param(ParamSpec::string("split", "train", "the split of the data and features to score on"));
  s.data_check = ranker_data_check(needs_source_probs, supports_regression);
  return s;
}

namespace {

// Nodes whose models hold at least this many feature values in all report rows as they go.
constexpr std::size_t kProgressValues = std::size_t{1} << 24;

// Fine-grained progress, lent by the node to the units that run in its own process
// (UnitContext::local): the feature rows they stream. Units on other ranks report only their end.
struct RowsBar {
  RowsBar(const NodeContext& ctx, std::size_t rows) : bar(ctx.progress("feature rows", rows)) {}
  Progress bar;
};

}  // namespace

Json RankerNode::run_unit(UnitContext& ctx, const Json& d) {
  std::unique_ptr<Node> node = ctx.make_node();
  auto* ranker = dynamic_cast<RankerNode*>(node.get());
  if (!ranker) throw Error("internal: node type '" + ctx.type() + "' runs the rankers' unit but is not a ranker");
  const Params& params = ctx.params();
  const std::shared_ptr<const Dataset> data = ctx.dataset("data");
  const std::string split_name = d.at("split").get<std::string>();
  const DatasetSplit& split = data->split(split_name);
  const ModelEmbedding m = model_embedding_from_json(d.at("model"));

  auto started = std::chrono::steady_clock::now();
  const ArrayFile& file = m.features_for(split_name);
  MatrixView features = file.open(fmt::format("features of model '{}'", m.name));
  if (features.rows() != split.rows)
    // (The unit's error is shown under the model's name: it is not named again.)
    throw DataError(file.describe(), fmt::format("{} rows of features for split '{}' but the labels ({}) have {}", features.rows(),
                                                 split_name, split.labels_file.string(), split.rows));
  rank::RowProgress progress;
  auto reported = std::make_shared<std::atomic<std::size_t>>(0);
  RowsBar* rows_bar = ctx.local<RowsBar>();
  if (rows_bar) {
    progress.rows = [bar = &rows_bar->bar, reported](std::size_t n) {
      *reported += n;
      bar->advance(n);
    };
  }
  if (ctx.node() && !ctx.node()->distributed()) {  // a single process logs each model's long steps
    progress.note = [&ctx, name = m.name](const std::string& step) { ctx.log("model '" + name + "': " + step); };
  }
  const rank::FeatureStats stats(features, shared_decompositions(file, features), progress);
  RankerInput in{m, features, stats, *data, split, std::nullopt, nullptr, {}};
  if (ranker->needs_source_probs()) {
    const ArrayFile& probs = m.source_probs_for(split_name);
    in.source_probs = probs.open(fmt::format("source_probs of model '{}'", m.name));
    in.source_file = &probs;
    if (in.source_probs->rows() != split.rows)
      throw DataError(probs.describe(), fmt::format("{} rows of source_probs for split '{}' but the labels ({}) have {}",
                                                    in.source_probs->rows(), split_name, split.labels_file.string(), split.rows));
  }
  in.check_memory = [&ctx](std::size_t bytes, const std::string& what, const std::string& advice) {
    ctx.check_memory(bytes, what, advice);
  };
  RankerResult r = ranker->score(in, params);
  if (rows_bar && *reported < split.rows) rows_bar->bar.advance(split.rows - *reported);
  Json out = Json::object();
  out["score"] = r.score;
  out["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (r.weights.size()) out["weights"] = matrix_to_json(r.weights);
  if (!r.details.is_null()) out["details"] = std::move(r.details);
  return out;
}

void RankerNode::check_memory(const NodeContext& ctx, const Dataset& data, const std::string& split) const {
  if (ctx.memory_limit() == 0) return;
  const auto embeddings = ctx.input<Embeddings>("features");
  const auto& models = embeddings->models;
  struct Need {
    std::size_t model = 0;
    RankerShape shape;
    rank::MemoryEstimate estimate;
  };
  std::vector<Need> needs;
  for (std::size_t i = 0; i < models.size(); ++i) {
    Need n;
    n.model = i;
    std::tie(n.shape.rows, n.shape.cols) = models[i].features_for(split).shape();
    n.shape.targets = data.num_targets();
    n.shape.width = ctx.jobs();
    if (needs_source_probs()) {
      auto it = models[i].source_probs.find(split);
      if (it != models[i].source_probs.end()) n.shape.source_cols = it->second.shape().second;
    }
    n.estimate = peak_memory(n.shape, ctx.params());
    needs.push_back(std::move(n));
  }
  if (needs.empty()) return;
  std::stable_sort(needs.begin(), needs.end(), [](const Need& a, const Need& b) { return a.estimate.bytes > b.estimate.bytes; });
  // Units run up to --jobs at a time: the largest that many may be in memory together.
  const std::size_t at_once = std::min<std::size_t>(ctx.jobs(), needs.size());
  std::size_t total = 0;
  for (std::size_t i = 0; i < at_once; ++i) total += needs[i].estimate.bytes;
  const Need& top = needs.front();
  std::string what =
      fmt::format("model '{}' ({} x {} features: {})", models[top.model].name, top.shape.rows, top.shape.cols, top.estimate.what);
  std::string advice = top.estimate.advice;
  if (at_once > 1 && total > top.estimate.bytes) {
    what += fmt::format(", with up to {} models scored at once (--jobs {}; {} for that model alone)", at_once, ctx.jobs(),
                        format_bytes(static_cast<double>(top.estimate.bytes)));
    if (top.estimate.bytes <= ctx.memory_limit()) advice += " Or lower --jobs, so that fewer models are scored at once.";
  }
  advice += " Or raise --memory-limit if the machine has that much memory.";
  ctx.check_memory(total, what, advice);
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
  // One payload per model: that model's files (the engine attaches the ranker, parameters and labels).
  std::vector<Json> payloads;
  for (const auto& m : models) payloads.push_back(Json{{"split", split_name}, {"model", model_embedding_to_json(m, split_name)}});
  check_memory(ctx, *data, split_name);
  std::size_t total_rows = 0, total_values = 0;
  for (const auto& m : models) {
    const auto [rows, cols] = m.features_for(split_name).shape();
    total_rows += rows;
    total_values += rows * cols;
  }
  // Rows streamed, for nodes with enough work to follow, when the units run in this process.
  std::vector<Json> unit_results;
  if (!ctx.distributed() && total_values >= kProgressValues) {
    RowsBar rows_bar(ctx, total_rows);
    unit_results = ctx.run_units("model", names, payloads, rows_bar);
  } else {
    unit_results = ctx.run_units("model", names, payloads);
  }
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

  std::vector<figures::Bar> bars;
  for (const auto& s : scores->scores) bars.push_back({s.model, s.score});
  const std::string method_name = ctx.type().rfind("rank.", 0) == 0 ? ctx.type().substr(5) : ctx.type();
  const std::string value_title = fmt::format("{} score ({})", method_name, higher_is_better() ? "higher is better" : "lower is better");
  ctx.publish("figure", figures::make_figure(
                            figures::bar_chart({fmt::format("Scores of {} ({})", ctx.id(), ctx.type()), "on split '" + split_name + "'",
                                                fmt::format("Bars: the score {} gave each model, best first", ctx.id())},
                                               "model", value_title, std::move(bars), !higher_is_better()),
                            fmt::format("The {} score of each model of the hub, best first.", method_name)));
  ctx.publish("scores", std::move(scores));
}

}  // namespace caulk::rankers
