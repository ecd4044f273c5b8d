// tune.peft: tunes models of a hub on a target task's training split in a parameter-efficient mode,
// writes the tuned checkpoints and publishes their predictions.
#include <fmt/format.h>

#include <chrono>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/model_nodes/model_inputs.hpp"
#include "caulk/model_nodes/tuning_params.hpp"
#include "caulk/seeding/seeding.hpp"
#include "caulk/units.hpp"
#include "models/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

std::vector<std::pair<std::string, std::string>> check_tuning(const Params& p) {
  std::vector<std::pair<std::string, std::string>> problems;
  if (p.string("optimizer") == "lbfgs" && p.string("mode") != "linear_probe")
    problems.emplace_back("optimizer", "lbfgs fits a convex head only: use it with mode = \"linear_probe\"");
  return problems;
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
  const std::uint64_t seed = static_cast<std::uint64_t>(p.integer("seed"));
  t.train = split_samples(data, p.string("train_split"));
  const auto n_train = static_cast<std::size_t>(t.train.size());
  const auto wanted = static_cast<std::size_t>(p.integer("train_samples"));
  if (wanted > n_train)
    throw Error(fmt::format("train_samples = {} but split '{}' has {} samples", wanted, p.string("train_split"), n_train));
  if (wanted > 0 && wanted < n_train) {
    std::vector<std::size_t> order(n_train);
    for (std::size_t i = 0; i < n_train; ++i) order[i] = i;
    seeding::SeededUniform rng(seed ^ 0x5DEECE66Dull);
    rng.shuffle(order);
    order.resize(wanted);
    std::sort(order.begin(), order.end());
    t.train = t.train.subset(order);
  }
  const std::string val_split = p.string("validation_split");
  if (!val_split.empty() && data.find_split(val_split) && data.find_split(val_split)->inputs)
    t.validation = split_samples(data, val_split);
  if (p.has("predict"))
    for (const Value& v : p.get("predict").as_array()) t.predict.push_back(v.as_string());
  else
    t.predict = splits_with_inputs(data);
  for (const auto& s : t.predict) t.predict_samples.push_back(split_samples(data, s));
  return t;
}

// One model tuned from its description alone (the node's parameters, the dataset's files, the
// checkpoint's path): any rank can run it. The tuned checkpoint is written (atomically) by the rank
// that tuned it, to its final path; the predictions and facts come back.
Json tune_model_unit(const Json& desc) {
  const Params p = params_from_json(desc.at("node").get<std::string>(), desc.at("params"));
  const auto data = dataset_from_json(desc.at("data"));
  const TuningData t = tuning_data(p, *data);
  const auto& train = t.train;
  const auto& validation = t.validation;
  const std::size_t i = desc.at("index").get<std::size_t>();
  const std::string model_name = desc.at("model").get<std::string>();
  const fs::path model_path = desc.at("checkpoint").get<std::string>();
  const fs::path dir = desc.at("dir").get<std::string>();
  const std::string suffix = p.string("suffix"), save = p.string("save");
  const std::uint64_t seed = static_cast<std::uint64_t>(p.integer("seed"));

  const auto started = std::chrono::steady_clock::now();
  const mlp::Model<float> pretrained = mlp::load_model(model_path);
  if (pretrained.input_dim() != train.X.rows())
    throw Error(fmt::format("the model takes {} inputs but split '{}' has {} columns", pretrained.input_dim(), p.string("train_split"),
                            train.X.rows()));
  // Each model its own stream, so results do not depend on which models are tuned together.
  const std::uint64_t model_seed = seed * 1000003ull + i;
  mlp::TuningSetup setup = mlp::prepare_tuning(pretrained, peft_options(p, *data, model_seed));
  const mlp::TrainOptions options = train_options(p, model_seed);
  const mlp::TrainReport report = mlp::train(setup.model, setup.trainable, train, validation ? &*validation : nullptr, options);

  const std::string name = model_name + suffix;
  Json predictions = Json::object();
  for (std::size_t k = 0; k < t.predict.size(); ++k)
    predictions[t.predict[k]] = matrix_to_json(mlp::run_batches(setup.model, t.predict_samples[k].X, false, true).outputs.cast<double>());

  fs::path path;
  const std::map<std::string, std::string> meta{{"tuned_from", model_path.filename().string()}, {"tuning_mode", p.string("mode")}};
  if (save == "merged") {
    path = dir / (name + ".safetensors");
    mlp::save_model(path, mlp::fold_lora(setup.model), meta);
  } else if (save == "delta") {
    path = dir / (name + ".delta.safetensors");
    mlp::save_delta(path, setup.model, setup.trainable_names, model_path, meta);
  }
  Json d{{"mode", p.string("mode")},
         {"trainable_parameters", setup.trainable_count},
         {"train_samples", train.size()},
         {"epochs", report.epochs},
         {"best_epoch", report.best_epoch},
         {"stopped_early", report.stopped_early},
         {"train_loss", report.train_loss},
         {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()},
         {"seed", model_seed}};
  if (validation) d["validation_loss"] = report.validation_loss;
  return Json{{"name", name}, {"checkpoint", path.string()}, {"predictions", predictions}, {"details", d}};
}

constexpr UnitKind kTuneModelUnit{"models.tune_model", &tune_model_unit};

class TunePeft : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("tune.peft",
               "Tune models of a hub on a target task (linear probe, partial, adapter, LoRA or full) with a new head; write the "
               "tuned checkpoints and predict");
    s.input("data", "Dataset", "the target task, with model inputs");
    declare_hub(s);
    s.output("checkpoints", "Checkpoint", "the tuned models (.safetensors in the node's folder)");
    s.output("predictions", "Predictions", "class probabilities (or values) of every tuned model on the predicted splits");
    declare_tuning_params(s, "linear_probe");
    s.param(ParamSpec::integer("seed", 0, "seed of the new head, the adapter/LoRA initialisation, minibatch order and subsampling").at_least(0));
    s.param(ParamSpec::string("train_split", "train", "the split to tune on"));
    s.param(ParamSpec::string("validation_split", "val", "early stopping on this split when the dataset has it (\"\": none)"));
    s.param(ParamSpec::integer("train_samples", 0, "tune on a seeded subsample of this many training samples (0: all)").at_least(0));
    s.param(ParamSpec::list("predict", "the splits to predict (default: every split with inputs)"));
    s.param(ParamSpec::choice("save", "merged", {"merged", "delta", "none"},
                              "merged: a self-contained checkpoint (LoRA folded in, adapters kept); delta: only the tuned "
                              "tensors, with the pre-trained checkpoint as base; none"));
    s.param(ParamSpec::string("suffix", "", "appended to each model's name in the outputs (e.g. \":lora\" to tell runs apart)"));
    s.check = check_tuning;
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const std::vector<CheckpointRef> models = hub_models(ctx);
    tuning_data(p, *data);  // every split and the subsample are checked before any unit starts
    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    const std::string suffix = p.string("suffix"), save = p.string("save");
    auto checkpoints = std::make_shared<Checkpoint>();
    auto predictions = std::make_shared<Predictions>();
    predictions->kind = data->kind;
    checkpoints->models.resize(models.size());
    predictions->models.resize(models.size());
    std::vector<Json> details(models.size());
    std::vector<std::string> names;
    for (const auto& m : models) names.push_back(m.model);

    Json common = Json::object();
    common["node"] = ctx.id();
    common["params"] = params_to_json(p);
    common["data"] = dataset_to_json(*data);
    common["dir"] = dir.string();
    std::vector<Json> descriptions;
    for (std::size_t i = 0; i < models.size(); ++i) {
      Json d = common;
      d["index"] = i;
      d["model"] = models[i].model;
      d["checkpoint"] = models[i].path.string();
      descriptions.push_back(std::move(d));
    }
    const std::vector<Json> results = ctx.run_units("model", names, kTuneModelUnit, descriptions);
    for (std::size_t i = 0; i < models.size(); ++i) {
      const Json& r = results[i];
      ModelPredictions& mp = predictions->models[i];
      mp.model = r.at("name").get<std::string>();
      for (const auto& [split, m] : r.at("predictions").items()) mp.splits[split] = matrix_from_json(m);
      CheckpointRef& ref = checkpoints->models[i];
      ref.model = mp.model;
      ref.path = r.at("checkpoint").get<std::string>();
      details[i] = r.at("details");
    }
    Json& sum = ctx.summary();
    for (std::size_t i = 0; i < models.size(); ++i) sum[models[i].model + suffix] = details[i];
    if (save == "none") checkpoints->models.clear();
    ctx.publish("checkpoints", std::move(checkpoints));
    ctx.publish("predictions", std::move(predictions));
  }
};

}  // namespace

void register_tune_peft(PluginRegistrar& r) {
  r.add_node<TunePeft>();
  r.add_unit_function(kTuneModelUnit);
}

}  // namespace caulk::models
