#include "tuner_inputs.hpp"

#include <fmt/format.h>

#include <chrono>

#include "btuning.hpp"
#include "mlp_checkpoint.hpp"
#include "model_inputs.hpp"
#include "tuning_params.hpp"

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

mlp::Samples training_samples(const NodeContext& ctx, const Dataset& data) {
  return models::split_samples(data, ctx.params().string("train_split"));
}

void tune_targets(NodeContext& ctx, const Dataset& data, const std::vector<CheckpointRef>& targets, const std::string& method,
                  const TrainFn& train_fn) {
  const Params& p = ctx.params();
  const std::uint64_t seed = static_cast<std::uint64_t>(p.integer("seed"));
  const mlp::Samples train = training_samples(ctx, data);
  std::optional<mlp::Samples> validation;
  const std::string val_split = p.string("validation_split");
  if (!val_split.empty() && data.find_split(val_split) && data.find_split(val_split)->inputs)
    validation = models::split_samples(data, val_split);
  std::vector<std::string> predict;
  if (p.has("predict"))
    for (const Value& v : p.get("predict").as_array()) predict.push_back(v.as_string());
  else
    predict = models::splits_with_inputs(data);
  std::vector<mlp::Samples> predict_samples;
  for (const auto& s : predict) predict_samples.push_back(models::split_samples(data, s));

  const fs::path dir = ctx.out_dir() / ctx.id();
  fs::create_directories(dir);
  const std::string suffix = p.string("suffix"), save = p.string("save");
  auto checkpoints = std::make_shared<Checkpoint>();
  auto predictions = std::make_shared<Predictions>();
  predictions->kind = data.kind;
  checkpoints->models.resize(targets.size());
  predictions->models.resize(targets.size());
  std::vector<Json> details(targets.size());
  std::vector<std::string> names;
  for (const auto& m : targets) names.push_back(m.model);

  ctx.for_each_unit("model", names, [&](std::size_t i) {
    const auto started = std::chrono::steady_clock::now();
    const mlp::Model<float> pretrained = mlp::load_model(targets[i].path);
    if (pretrained.input_dim() != train.X.rows())
      throw Error(fmt::format("the model takes {} inputs but split '{}' has {} columns", pretrained.input_dim(), p.string("train_split"),
                              train.X.rows()));
    // tune.peft's per-model stream, so that the same model, seed and options start identically.
    const std::uint64_t model_seed = seed * 1000003ull + i;
    mlp::TuningSetup setup = mlp::prepare_tuning(pretrained, models::peft_options(p, data, model_seed));
    const mlp::TrainOptions options = models::train_options(p, model_seed);
    Tuned tuned = train_fn(i, targets[i], std::move(setup), options, train, validation ? &*validation : nullptr);

    const std::string name = targets[i].model + suffix;
    ModelPredictions& mp = predictions->models[i];
    mp.model = name;
    for (std::size_t k = 0; k < predict.size(); ++k)
      mp.splits[predict[k]] = mlp::run_batches(tuned.setup.model, predict_samples[k].X, false, true).outputs.cast<double>();
    CheckpointRef& ref = checkpoints->models[i];
    ref.model = name;
    const std::map<std::string, std::string> meta{{"tuned_from", targets[i].path.filename().string()},
                                                  {"tuning_mode", p.string("mode")},
                                                  {"tuning_method", method}};
    if (save == "merged") {
      ref.path = dir / (name + ".safetensors");
      mlp::save_model(ref.path, mlp::fold_lora(tuned.setup.model), meta);
    } else if (save == "delta") {
      ref.path = dir / (name + ".delta.safetensors");
      mlp::save_delta(ref.path, tuned.setup.model, tuned.setup.trainable_names, targets[i].path, meta);
    }
    Json d{{"tuned_from", targets[i].model},
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
    details[i] = std::move(d);
  });
  Json& sum = ctx.summary();
  for (std::size_t i = 0; i < targets.size(); ++i) sum[targets[i].model + suffix] = details[i];
  if (save == "none") checkpoints->models.clear();
  ctx.publish("checkpoints", std::move(checkpoints));
  ctx.publish("predictions", std::move(predictions));
}

}  // namespace caulk::tuners
