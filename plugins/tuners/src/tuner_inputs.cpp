#include "tuners/src/tuner_inputs.hpp"

#include <fmt/format.h>

#include <chrono>

#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/model_nodes/model_inputs.hpp"
#include "caulk/model_nodes/tuning_params.hpp"
#include "tuners/algorithms/btuning.hpp"

namespace fs = std::filesystem;

namespace caulk::tuners {

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
    throw DataError(file.describe(), fmt::format("model '{}' has {} rows of features for split '{}' but the labels ({}) have {}", model.name,
                                                 F.rows(), split.name, split.labels_file.string(), split.rows));
  return F.to_double();
}

void declare_run_params(NodeSpec& s) {
  s.param(ParamSpec::integer("seed", 0, "seed of the new head, the adapter/LoRA initialisation and the minibatch order (as tune.peft)").at_least(0));
  s.param(ParamSpec::string("train_split", "train", "the split to tune on (the teachers' features and scores must be on it too)"));
  s.param(ParamSpec::string("validation_split", "val", "early stopping on this split when the dataset has it (\"\": none)"));
  s.param(ParamSpec::list("predict", "the splits to predict (default: every split with inputs)"));
  s.param(ParamSpec::choice("save", "merged", {"merged", "delta", "none"},
                            "merged: a self-contained checkpoint (LoRA folded in); delta: only the tuned tensors; none"));
  s.param(ParamSpec::string("suffix", "", "appended to each model's name in the outputs (e.g. \":btuning\")"));
}

std::vector<std::pair<std::string, std::string>> check_run_params(const Params& p) {
  std::vector<std::pair<std::string, std::string>> problems;
  if (p.string("optimizer") == "lbfgs")
    problems.emplace_back("optimizer", "an extra loss term trains by minibatch steps: use adam or sgd");
  return problems;
}

std::vector<std::pair<std::string, std::string>> check_plain_run_params(const Params& p) {
  std::vector<std::pair<std::string, std::string>> problems;
  if (p.string("optimizer") == "lbfgs" && p.string("mode") != "linear_probe")
    problems.emplace_back("optimizer", "lbfgs fits a convex head only: use it with mode = \"linear_probe\"");
  return problems;
}

namespace {

// What every target of the node is tuned on and predicts, from the node's parameters and dataset.
struct TuningData {
  mlp::Samples train;
  std::optional<mlp::Samples> validation;
  std::vector<std::string> predict;
  std::vector<mlp::Samples> predict_samples;
};

TuningData tuning_data(const Params& p, const Dataset& data) {
  TuningData t;
  t.train = models::split_samples(data, p.string("train_split"));
  const std::string val_split = p.string("validation_split");
  if (!val_split.empty() && data.find_split(val_split) && data.find_split(val_split)->inputs)
    t.validation = models::split_samples(data, val_split);
  if (p.has("predict"))
    for (const Value& v : p.get("predict").as_array()) t.predict.push_back(v.as_string());
  else
    t.predict = models::splits_with_inputs(data);
  for (const auto& s : t.predict) t.predict_samples.push_back(models::split_samples(data, s));
  return t;
}

}  // namespace

Json tune_target_unit(const Json& desc, TrainFn train_fn) {
  const Params p = params_from_json(desc.at("node").get<std::string>(), desc.at("params"));
  const auto data = dataset_from_json(desc.at("data"));
  const TuningData t = tuning_data(p, *data);
  const auto& train = t.train;
  const auto& validation = t.validation;
  const std::size_t i = desc.at("index").get<std::size_t>();
  const std::string method = desc.at("method").get<std::string>(), target = desc.at("model").get<std::string>();
  const fs::path target_path = desc.at("checkpoint").get<std::string>();
  const fs::path dir = desc.at("dir").get<std::string>();
  const std::string suffix = p.string("suffix"), save = p.string("save");
  const std::uint64_t seed = static_cast<std::uint64_t>(p.integer("seed"));

  const auto started = std::chrono::steady_clock::now();
  const mlp::Model<float> pretrained = mlp::load_model(target_path);
  if (pretrained.input_dim() != train.X.rows())
    throw Error(fmt::format("the model takes {} inputs but split '{}' has {} columns", pretrained.input_dim(), p.string("train_split"),
                            train.X.rows()));
  // tune.peft's per-model stream, so that the same model, seed and options start identically.
  const std::uint64_t model_seed = seed * 1000003ull + i;
  mlp::TuningSetup setup = mlp::prepare_tuning(pretrained, models::peft_options(p, *data, model_seed));
  const mlp::TrainOptions options = models::train_options(p, model_seed);
  Tuned tuned = train_fn(desc.at("term"), p, std::move(setup), options, train, validation ? &*validation : nullptr);

  const std::string name = target + suffix;
  Json predictions = Json::object();
  for (std::size_t k = 0; k < t.predict.size(); ++k)
    predictions[t.predict[k]] =
        matrix_to_json(mlp::run_batches(tuned.setup.model, t.predict_samples[k].X, false, true).outputs.cast<double>());
  fs::path path;
  const std::map<std::string, std::string> meta{
      {"tuned_from", target_path.filename().string()}, {"tuning_mode", p.string("mode")}, {"tuning_method", method}};
  if (save == "merged") {
    path = dir / (name + ".safetensors");
    mlp::save_model(path, mlp::fold_lora(tuned.setup.model), meta);
  } else if (save == "delta") {
    path = dir / (name + ".delta.safetensors");
    mlp::save_delta(path, tuned.setup.model, tuned.setup.trainable_names, target_path, meta);
  }
  Json d{{"tuned_from", target},
         {"mode", p.string("mode")},
         {"trainable_parameters", tuned.setup.trainable_count},
         {"train_samples", train.size()},
         {"epochs", tuned.report.epochs},
         {"best_epoch", tuned.report.best_epoch},
         {"stopped_early", tuned.report.stopped_early},
         {"train_loss", tuned.report.train_loss},
         {"seed", model_seed}};
  if (validation) d["validation_loss"] = tuned.report.validation_loss;
  for (auto& [key, value] : tuned.details.items()) d[key] = value;
  d["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return Json{{"name", name}, {"checkpoint", path.string()}, {"predictions", predictions}, {"details", d}};
}

void tune_targets(NodeContext& ctx, const Dataset& data, const std::vector<CheckpointRef>& targets, const std::string& method,
                  const UnitKind& unit, const std::vector<Json>& terms) {
  const Params& p = ctx.params();
  if (terms.size() != targets.size())
    throw Error(fmt::format("{} tuning terms for {} target models", terms.size(), targets.size()));
  tuning_data(p, data);  // every split is checked before any unit starts
  const fs::path dir = ctx.out_dir() / ctx.id();
  fs::create_directories(dir);
  const std::string suffix = p.string("suffix"), save = p.string("save");
  auto checkpoints = std::make_shared<Checkpoint>();
  auto predictions = std::make_shared<Predictions>();
  predictions->kind = data.kind;
  checkpoints->models.resize(targets.size());
  predictions->models.resize(targets.size());
  std::vector<std::string> names;
  for (const auto& m : targets) names.push_back(m.model);

  Json common = Json::object();
  common["node"] = ctx.id();
  common["method"] = method;
  common["params"] = params_to_json(p);
  common["data"] = dataset_to_json(data);
  common["dir"] = dir.string();
  std::vector<Json> descriptions;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    Json d = common;
    d["index"] = i;
    d["model"] = targets[i].model;
    d["checkpoint"] = targets[i].path.string();
    d["term"] = terms[i];
    descriptions.push_back(std::move(d));
  }
  const std::vector<Json> results = ctx.run_units("model", names, unit, descriptions);
  Json& sum = ctx.summary();
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const Json& r = results[i];
    ModelPredictions& mp = predictions->models[i];
    mp.model = r.at("name").get<std::string>();
    for (const auto& [split, m] : r.at("predictions").items()) mp.splits[split] = matrix_from_json(m);
    CheckpointRef& ref = checkpoints->models[i];
    ref.model = mp.model;
    ref.path = r.at("checkpoint").get<std::string>();
    sum[targets[i].model + suffix] = r.at("details");
  }
  if (save == "none") checkpoints->models.clear();
  ctx.publish("checkpoints", std::move(checkpoints));
  ctx.publish("predictions", std::move(predictions));
}

}  // namespace caulk::tuners
