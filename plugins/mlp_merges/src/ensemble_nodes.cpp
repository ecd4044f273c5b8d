// ensemble.predictions and ensemble.features: predictions of models averaged at their outputs or
// at their features, for the evaluators to judge beside merged weights. MLP checkpoints run with
// the MLP runtime; TorchScript models through the model interface (caulk/models/model.hpp).
#include <fmt/format.h>

#include <algorithm>

#include "caulk/models/hub.hpp"
#include "caulk/models/inputs.hpp"
#include "caulk/models/model.hpp"
#include "caulk/units.hpp"
#include "mlp_merges/algorithms/ensembles.hpp"
#include "mlp_merges/src/common.hpp"
#include "mlp_merges/src/nodes.hpp"

namespace caulk::mlp_merges {

namespace {

std::string check_string_list(const Value& v) {
  for (const auto& e : v.as_array())
    if (!e.is_string()) return fmt::format("expected split names, found a {}", e.kind_name());
  return "";
}

void declare_splits(NodeSpec& s) {
  s.param(ParamSpec::list("splits", "the splits to predict (default: every split with model inputs)").validate(check_string_list));
}

// The requested splits (each checked to have model inputs) and the checkpoints: loaded and checked
// against the dataset when `load` (the node needs them in memory), otherwise only listed (the units
// load and check them).
struct Prepared {
  LoadedModels in;
  std::vector<std::string> splits;
};

bool any_torchscript(const LoadedModels& in) {
  return std::any_of(in.refs.begin(), in.refs.end(), [](const CheckpointRef& r) { return !r.module.empty(); });
}

Prepared prepare(const NodeContext& ctx, const Dataset& data, bool load) {
  Prepared p;
  p.splits = requested_splits(ctx.params(), data);
  p.in = list_checkpoints(ctx, 1, true);
  if (any_torchscript(p.in)) {  // models of any input shape: their units check the inputs
    if (load) refuse_torchscript(ctx, p.in.refs);
    for (const auto& split : p.splits) models::split_with_inputs(data, split);
    return p;
  }
  long inputs = 0;
  for (std::size_t k = 0; k < p.splits.size(); ++k) {
    const mlp::Samples s = split_samples(data, p.splits[k]);
    if (k == 0) inputs = static_cast<long>(s.X.rows());
  }
  if (load) p.in = load_checkpoints(ctx, false);
  for (std::size_t i = 0; i < p.in.models.size(); ++i) check_fits(p.in.models[i], p.in.names[i], data, inputs);
  return p;
}

// A TorchScript member (any family the model interface opens): its probabilities (the softmax of
// its logits, in float64) or values, or its features, per split, in batches of 64 samples.
Json interface_member(const Dataset& data, const Json& d, bool features) {
  const models::ModelSource source = models::source_from_json(d.at("source"));
  const std::unique_ptr<models::Model> model = models::open_model(source);
  const bool classification = data.kind == TaskKind::Classification;
  if (!features && classification != (model->output_kind() == models::OutputKind::Logits))
    throw Error(fmt::format("{} outputs {} but the dataset is a {} task", model->describe(),
                            classification ? "regression values" : "class logits", task_kind_name(data.kind)));
  Json out = Json::object();
  for (const auto& split : d.at("splits").get<std::vector<std::string>>()) {
    const models::ModelInputs inputs = models::ModelInputs::of_split(data, split);
    const models::Outputs o = models::run_in_batches(*model, inputs, 64, features, !features);
    if (!features && static_cast<std::size_t>(o.outputs.cols()) != data.num_targets())
      throw Error(fmt::format("{} has {} outputs but the dataset has {} {}", model->describe(), o.outputs.cols(), data.num_targets(),
                              classification ? "classes" : "target columns"));
    const Matrix m = features         ? Matrix(o.features.cast<double>())
                     : classification ? models::softmax_rows(o.outputs)
                                      : Matrix(o.outputs.cast<double>());
    out[split] = matrix_to_json(m);
  }
  return Json{{"feature_dim", model->feature_dim()}, {"splits", std::move(out)}};
}

// One model's outputs (or features) on the listed splits, on any rank: the checkpoint (LoRA kept as
// factors, as the ensembles run it), checked against the dataset on the first split; N x C
// outputs (or N x D features) per split come back, exactly.
Json ensemble_member(UnitContext& ctx, const Json& d, bool features) {
  const auto data = ctx.dataset("data");
  if (d.contains("source")) return interface_member(*data, d, features);
  const std::string model = d.at("model").get<std::string>();
  const mlp::Model<float> m = load_checkpoint(d.at("checkpoint").get<std::string>(), false);
  const auto splits = d.at("splits").get<std::vector<std::string>>();
  Json out = Json::object();
  for (std::size_t k = 0; k < splits.size(); ++k) {
    const mlp::Samples s = split_samples(*data, splits[k]);
    if (k == 0) check_fits(m, model, *data, static_cast<long>(s.X.rows()));
    out[splits[k]] = matrix_to_json(features ? model_features(m, s.X) : model_outputs(m, s.X));
  }
  return Json{{"feature_dim", m.feature_dim()}, {"splits", std::move(out)}};
}

// Runs the node's unit (ensemble_member) on every model of `in` over `splits`: one unit per model.
std::vector<Json> run_members(const NodeContext& ctx, const LoadedModels& in, const std::vector<std::string>& splits) {
  const Json common{{"splits", splits}};
  std::vector<Json> descriptions;
  for (std::size_t i = 0; i < in.names.size(); ++i) {
    Json d{{"model", in.names[i]}, {"checkpoint", in.refs[i].path.string()}};
    if (!in.refs[i].module.empty()) d["source"] = models::source_to_json(models::source_of(in.refs[i]));
    d.update(common);
    descriptions.push_back(std::move(d));
  }
  return ctx.run_units("model", in.names, descriptions);
}

// The members' matrices on one split, in model order.
std::vector<mlp::Mat<double>> on_split(const std::vector<Json>& members, const std::string& split) {
  std::vector<mlp::Mat<double>> out;
  for (const Json& r : members) out.push_back(matrix_from_json(r.at("splits").at(split)));
  return out;
}

class OutputEnsemble : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("ensemble.predictions",
               "Output ensemble of models (MLP checkpoints, TorchScript modules): the mean of the models' class probabilities (or "
               "regression values)");
    declare_checkpoints(s, "the models (any architectures with the same inputs and outputs)");
    s.input("data", "Dataset", "the task, with model inputs for the splits to predict");
    s.output("predictions", "Predictions", "one model named after the node, on the requested splits");
    declare_splits(s);
    return s;
  }

  void run(NodeContext& ctx) override {
    const auto data = ctx.input<Dataset>("data");
    const Prepared p = prepare(ctx, *data, false);
    const std::vector<Json> members = run_members(ctx, p.in, p.splits);
    auto out = std::make_shared<Predictions>();
    out->kind = data->kind;
    out->models.push_back({ctx.id(), {}});
    for (const auto& split : p.splits) out->models[0].splits[split] = mean_of_outputs(on_split(members, split));
    ctx.summary()["models"] = p.in.names;
    ctx.summary()["splits"] = p.splits;
    ctx.publish("predictions", std::move(out));
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return ensemble_member(ctx, payload, false); }
};

class FeatureEnsemble : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("ensemble.features",
               "Feature ensemble of models: the mean of the models' features (an MLP's feature layer output, a TorchScript model's "
               "feature method) through the averaged head (MLPs only), or through a linear head refitted on the mean features of the "
               "training split by L-BFGS");
    declare_checkpoints(s, "the models (one feature width; one head architecture for head = \"average\")");
    s.input("data", "Dataset", "the task, with model inputs for the splits to predict (and the training split for a refit)");
    s.output("predictions", "Predictions", "one model named after the node, on the requested splits");
    s.param(ParamSpec::choice("head", "average", {"average", "refit"},
                              "average: the uniform average of the models' heads; refit: a new linear head fitted on the mean features"));
    declare_splits(s);
    s.param(ParamSpec::string("train_split", "train", "refit: the split the head is fitted on"));
    s.param(ParamSpec::real("weight_decay", 1e-3, "refit: the penalty (wd/2)||W||^2 on the head's weights").at_least(0));
    s.param(ParamSpec::integer("lbfgs_iterations", 500, "refit: L-BFGS iteration limit").range(1, 100000));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& params = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const bool refit = params.string("head") == "refit";
    // The averaged head needs every model's head in memory; a refitted one only their features.
    const Prepared p = prepare(ctx, *data, !refit);
    mlp::Model<float> head;
    Json& sum = ctx.summary();
    if (!refit) head = averaged_head(p.in.models);
    std::vector<std::string> splits = p.splits;
    mlp::Samples train;
    if (refit) {
      // The targets alone (a TorchScript model's inputs may be images: its unit reads them).
      const DatasetSplit& t = models::split_with_inputs(*data, params.string("train_split"));
      if (data->kind == TaskKind::Classification)
        train.y.classes = t.classes;
      else
        train.y.values = t.targets.transpose().cast<float>();
      if (std::find(splits.begin(), splits.end(), params.string("train_split")) == splits.end())
        splits.push_back(params.string("train_split"));
    }
    const std::vector<Json> members = run_members(ctx, p.in, splits);
    if (refit) {
      RefitOptions o;
      o.weight_decay = params.real("weight_decay");
      o.max_iterations = static_cast<int>(params.integer("lbfgs_iterations"));
      // Every model fits the dataset (checked by its unit): C outputs of the task's kind.
      const mlp::Output output = data->kind == TaskKind::Classification ? mlp::Output::Softmax : mlp::Output::Identity;
      head = refit_linear_head(mean_of_features(on_split(members, params.string("train_split"))), train.y,
                               static_cast<int>(data->num_targets()), output, o);
      sum["train_split"] = params.string("train_split");
      sum["train_samples"] = data->split(params.string("train_split")).rows;
    }
    auto out = std::make_shared<Predictions>();
    out->kind = data->kind;
    out->models.push_back({ctx.id(), {}});
    for (const auto& split : p.splits) out->models[0].splits[split] = apply_head(head, mean_of_features(on_split(members, split)));
    sum["models"] = p.in.names;
    sum["head"] = params.string("head");
    sum["feature_dim"] = members.front().at("feature_dim");
    sum["splits"] = p.splits;
    ctx.publish("predictions", std::move(out));
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return ensemble_member(ctx, payload, true); }
};

}  // namespace

void register_ensembles(PluginRegistrar& r) {
  r.add_node<OutputEnsemble>();
  r.add_node<FeatureEnsemble>();
}

}  // namespace caulk::mlp_merges
