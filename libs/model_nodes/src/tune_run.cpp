#include "caulk/model_nodes/tune_run.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>

#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/model_nodes/model_inputs.hpp"
#include "caulk/models/hub.hpp"
#include "caulk/models/inputs.hpp"
#include "caulk/model_nodes/tuning_params.hpp"
#include "caulk/seeding/seeding.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {
// The streams a tuning run draws from its seed: the subsample of the training split, and one per
// model (its head, LoRA and batches), named by the model so that its tune does not depend on which
// other models are tuned with it or in what order.
enum StreamTag : std::uint64_t { kTrainSubsample = 1, kModelStream = 2 };
std::uint64_t model_stream(std::uint64_t seed, const std::string& model) {
  return seeding::derive_seed(seed, kModelStream, seeding::name_tag(model));
}
}  // namespace

void declare_run_params(NodeSpec& s) {
  s.param(ParamSpec::integer(
              "seed", 0,
              "seed of the new head, the adapter/LoRA initialisation, the minibatch order and any subsample (each model its own stream)")
              .at_least(0));
  s.param(ParamSpec::string("train_split", "train", "the split to tune on"));
  s.param(ParamSpec::string("validation_split", "val", "early stopping on this split when the dataset has it (\"\": none)"));
  s.param(ParamSpec::list("predict", "the splits to predict (default: every split with inputs)"));
  s.param(ParamSpec::choice("save", "merged", {"merged", "delta", "none"},
                            "merged: a self-contained checkpoint (LoRA folded in, adapters kept); delta: only the tuned "
                            "tensors, with the pre-trained checkpoint as base; none"));
  s.param(ParamSpec::string("suffix", "", "appended to each model's name in the outputs (e.g. \":lora\" to tell runs apart)"));
}

std::vector<std::pair<std::string, std::string>> check_plain_run_params(const Params& p) {
  std::vector<std::pair<std::string, std::string>> problems;
  if (p.string("optimizer") == "lbfgs" && p.string("mode") != "linear_probe")
    problems.emplace_back("optimizer", "lbfgs fits a convex head only: use it with mode = \"linear_probe\"");
  return problems;
}

Tuned train_plain(const Json& term, const Params&, mlp::TuningSetup setup, const mlp::TrainOptions& options, const mlp::Samples& train,
                  const mlp::Samples* validation) {
  Tuned out;
  out.report = mlp::train(setup.model, setup.trainable, train, validation, options);
  out.details = term;
  out.setup = std::move(setup);
  return out;
}

namespace {

// The rows of the seeded training subsample when the node declares train_samples and asks for
// fewer than the split has (in increasing order); nullopt for the whole split.
std::optional<std::vector<std::size_t>> subsample_rows(const Params& p, std::size_t n_train) {
  if (!p.values().count("train_samples")) return std::nullopt;
  const std::uint64_t seed = static_cast<std::uint64_t>(p.integer("seed"));
  const auto wanted = static_cast<std::size_t>(p.integer("train_samples"));
  if (wanted > n_train)
    throw Error(fmt::format("train_samples = {} but split '{}' has {} samples", wanted, p.string("train_split"), n_train));
  if (wanted == 0 || wanted >= n_train) return std::nullopt;
  return seeding::first_of(seeding::seeded_order(n_train, seeding::derive_seed(seed, kTrainSubsample)), wanted);
}

// The splits a model of any family tunes on and predicts, checked without reading them as
// columns (their inputs may be images or token ids): each exists with inputs, and the subsample fits.
std::vector<std::string> check_any_tuning_data(const Params& p, const Dataset& data) {
  subsample_rows(p, split_with_inputs(data, p.string("train_split")).rows);
  std::vector<std::string> predict;
  if (p.has("predict"))
    for (const Value& v : p.get("predict").as_array()) predict.push_back(v.as_string());
  else
    predict = splits_with_inputs(data);
  for (const auto& s : predict) split_with_inputs(data, s);
  return predict;
}

// What every model of the node is tuned on and predicts, from the node's parameters and dataset.
struct TuningData {
  mlp::Samples train;
  std::optional<mlp::Samples> validation;
  std::vector<std::string> predict;
  std::vector<mlp::Samples> predict_samples;
};

TuningData tuning_data(const Params& p, const Dataset& data) {
  TuningData t;
  t.train = split_samples(data, p.string("train_split"));
  // Only nodes that declare train_samples (tune.peft) subsample. Asked of the values, not with
  // has(): Params refuse a name the node type does not declare, and a declared parameter always has
  // a value here (its default 0 = all).
  if (const auto rows = subsample_rows(p, static_cast<std::size_t>(t.train.size()))) t.train = t.train.subset(*rows);
  const std::string val_split = p.string("validation_split");
  if (!val_split.empty() && data.find_split(val_split) && data.find_split(val_split)->inputs) t.validation = split_samples(data, val_split);
  if (p.has("predict"))
    for (const Value& v : p.get("predict").as_array()) t.predict.push_back(v.as_string());
  else
    t.predict = splits_with_inputs(data);
  for (const auto& s : t.predict) t.predict_samples.push_back(split_samples(data, s));
  return t;
}

// The hub's name for the model a unit tunes: tune.top_ranked publishes its choice under a fixed
// name and keeps the chosen model's name in its term.
std::string hub_model_name(const Json& desc) {
  const Json& term = desc.at("term");
  if (term.is_object() && term.contains("model") && term.at("model").is_string()) return term.at("model").get<std::string>();
  return desc.at("model").get<std::string>();
}

}  // namespace

namespace {

// One model of a family other than the MLP (TorchScript), tuned through the model interface.
Json tune_any_model_unit(UnitContext& ctx, const Json& desc, TermFn term_fn) {
  const Params& p = ctx.params();
  const auto data = ctx.dataset("data");
  const std::string method = desc.at("method").get<std::string>(), target = desc.at("model").get<std::string>();
  const ModelSource source = source_from_json(desc.at("source"));
  const fs::path dir = desc.at("dir").get<std::string>();
  const std::string suffix = p.string("suffix"), save = p.string("save");
  const std::uint64_t seed = static_cast<std::uint64_t>(p.integer("seed"));
  const auto started = std::chrono::steady_clock::now();

  std::unique_ptr<Model> model = open_model(source);
  const std::vector<std::string> predict = check_any_tuning_data(p, *data);
  TrainingSamples train = training_samples(*data, p.string("train_split"), *model);
  if (const auto rows = subsample_rows(p, static_cast<std::size_t>(train.size()))) train = train.subset(*rows);
  std::optional<TrainingSamples> validation;
  const std::string val_split = p.string("validation_split");
  if (!val_split.empty() && data->find_split(val_split) && data->find_split(val_split)->inputs)
    validation = training_samples(*data, val_split, *model);
  const std::uint64_t model_seed = model_stream(seed, target);
  const std::int64_t trainable_count = prepare_model(*model, p, *data, model_seed, train);
  const std::unique_ptr<OutputTerm> term = term_fn ? term_fn(desc.at("term"), p, train) : nullptr;
  const mlp::TrainReport report =
      models::train(*model, train, validation ? &*validation : nullptr, train_options(p, model_seed), term.get());
  Json details = term ? Json(term->report(*model)) : desc.at("term");

  const std::string name = target + suffix;
  const bool logits = model->output_kind() == OutputKind::Logits;
  Json predictions = Json::object();
  for (const auto& split : predict) {
    const ModelInputs inputs = ModelInputs::of_split(*data, split);
    const Outputs out = run_in_batches(*model, inputs, 64, false, true);
    predictions[split] = matrix_to_json(logits ? softmax_rows(out.outputs) : Matrix(out.outputs.cast<double>()));
  }
  // What training changed, as named after folding: a LoRA factor "<weight>.lora_A" stands for its
  // weight. Named before fold_lora, which takes the factors out of trainable() and leaves the
  // folded weights frozen (caulk/models/model.hpp).
  std::vector<std::string> tuned_names;
  for (std::string name : model->trainable()) {
    for (const char* factor : {".lora_A", ".lora_B"})
      if (name.size() > std::strlen(factor) && name.compare(name.size() - std::strlen(factor), std::string::npos, factor) == 0)
        name.resize(name.size() - std::strlen(factor));
    if (std::find(tuned_names.begin(), tuned_names.end(), name) == tuned_names.end()) tuned_names.push_back(name);
  }
  fs::path path;
  model->fold_lora();
  // What it was tuned from, in the file itself (the MLP family's deltas name their base alike):
  // the hub's name for it (tune.top_ranked renames its choice and keeps the name in its term).
  const std::string hub_name = hub_model_name(desc);
  std::map<std::string, std::string> tuned_from{{"caulk.tuned_from", hub_name}};
  for (const auto& [key, file] :
       {std::pair{"caulk.tuned_from_module", source.torchscript}, std::pair{"caulk.tuned_from_file", source.checkpoint},
        std::pair{"caulk.tuned_from_weights", source.weights}})
    if (!file.empty()) tuned_from[key] = file.string();
  if (save == "merged") {
    path = dir / (name + ".safetensors");
    save_weights(*model, path, {}, tuned_from);
    model->save(dir / (name + ".pt"));
  } else if (save == "delta") {
    if (!source.weights.empty())
      throw Error(
          fmt::format("{} already overrides its module with weights ({}): save = \"delta\" writes only the tuned tensors over "
                      "the module, which would drop them; use save = \"merged\"",
                      model->describe(), source.weights.string()));
    path = dir / (name + ".delta.safetensors");
    save_weights(*model, path, tuned_names, tuned_from);
  }
  Json d{{"mode", p.string("mode")},
         {"family", model->family()},
         {"trainable_parameters", trainable_count},
         {"train_samples", train.size()},
         {"epochs", report.epochs},
         {"best_epoch", report.best_epoch},
         {"stopped_early", report.stopped_early},
         {"train_loss", report.train_loss},
         {"seed", model_seed}};
  if (!method.empty()) d["tuned_from"] = hub_name;
  if (validation) d["validation_loss"] = report.validation_loss;
  if (details.is_object())
    for (auto& [key, value] : details.items()) d[key] = value;
  d["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return Json{{"name", name},
              {"checkpoint", path.string()},
              {"module", source.torchscript.string()},
              {"feature_method", source.feature_method},
              {"predictions", predictions},
              {"details", d}};
}

}  // namespace

Json tune_target_unit(UnitContext& ctx, const Json& desc, TrainFn train_fn, TermFn term_fn) {
  if (!desc.at("module").get<std::string>().empty()) return tune_any_model_unit(ctx, desc, term_fn);
  const Params& p = ctx.params();
  check_mlp_params(p, desc.at("model").get<std::string>());
  const auto data = ctx.dataset("data");
  const TuningData t = tuning_data(p, *data);
  const auto& train = t.train;
  const auto& validation = t.validation;
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
  const std::uint64_t model_seed = model_stream(seed, target);
  mlp::TuningSetup setup = mlp::prepare_tuning(pretrained, peft_options(p, *data, model_seed));
  const mlp::TrainOptions options = train_options(p, model_seed);
  Tuned tuned = train_fn(desc.at("term"), p, std::move(setup), options, train, validation ? &*validation : nullptr);

  const std::string name = target + suffix;
  Json predictions = Json::object();
  for (std::size_t k = 0; k < t.predict.size(); ++k)
    predictions[t.predict[k]] =
        matrix_to_json(mlp::run_batches(tuned.setup.model, t.predict_samples[k].X, false, true).outputs.cast<double>());
  fs::path path;
  std::map<std::string, std::string> meta{{"tuned_from", target_path.filename().string()}, {"tuning_mode", p.string("mode")}};
  if (!method.empty()) meta["tuning_method"] = method;
  if (save == "merged") {
    path = dir / (name + ".safetensors");
    mlp::save_model(path, mlp::fold_lora(tuned.setup.model), meta);
  } else if (save == "delta") {
    path = dir / (name + ".delta.safetensors");
    mlp::save_delta(path, tuned.setup.model, tuned.setup.trainable_names, target_path, meta);
  }
  Json d{{"mode", p.string("mode")},
         {"trainable_parameters", tuned.setup.trainable_count},
         {"train_samples", train.size()},
         {"epochs", tuned.report.epochs},
         {"best_epoch", tuned.report.best_epoch},
         {"stopped_early", tuned.report.stopped_early},
         {"train_loss", tuned.report.train_loss},
         {"seed", model_seed}};
  if (!method.empty()) d["tuned_from"] = hub_model_name(desc);
  if (validation) d["validation_loss"] = tuned.report.validation_loss;
  for (auto& [key, value] : tuned.details.items()) d[key] = value;
  d["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return Json{{"name", name}, {"checkpoint", path.string()}, {"predictions", predictions}, {"details", d}};
}

void tune_targets(NodeContext& ctx, const Dataset& data, const std::vector<CheckpointRef>& targets, const std::string& method,
                  const std::vector<Json>& terms) {
  const Params& p = ctx.params();
  if (terms.size() != targets.size()) throw Error(fmt::format("{} tuning terms for {} target models", terms.size(), targets.size()));
  // Every split and the subsample are checked before any unit starts (as columns when every model
  // is an MLP, which reads them so).
  const bool all_mlp = std::all_of(targets.begin(), targets.end(), [](const CheckpointRef& r) { return r.module.empty(); });
  if (all_mlp)
    tuning_data(p, data);
  else
    check_any_tuning_data(p, data);
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
  common["method"] = method;
  common["dir"] = dir.string();
  std::vector<Json> descriptions;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    Json d = common;
    d["model"] = targets[i].model;
    d["checkpoint"] = targets[i].path.string();
    d["module"] = targets[i].module.string();
    if (!targets[i].module.empty()) d["source"] = source_to_json(source_of(targets[i]));
    d["term"] = terms[i];
    descriptions.push_back(std::move(d));
  }
  const std::vector<Json> results = ctx.run_units("model", names, descriptions);
  Json& sum = ctx.summary();
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const Json& r = results[i];
    ModelPredictions& mp = predictions->models[i];
    mp.model = r.at("name").get<std::string>();
    for (const auto& [split, m] : r.at("predictions").items()) mp.splits[split] = matrix_from_json(m);
    CheckpointRef& ref = checkpoints->models[i];
    ref.model = mp.model;
    ref.path = r.at("checkpoint").get<std::string>();
    if (r.contains("module")) {
      ref.module = r.at("module").get<std::string>();
      ref.feature_method = r.at("feature_method").get<std::string>();
    }
    sum[targets[i].model + suffix] = r.at("details");
  }
  if (save == "none") checkpoints->models.clear();
  ctx.publish("checkpoints", std::move(checkpoints));
  ctx.publish("predictions", std::move(predictions));
}

}  // namespace caulk::models
