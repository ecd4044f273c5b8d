// ensemble.predictions and ensemble.features: predictions of native MLP checkpoints averaged at
// their outputs or at their features, for the evaluators to judge beside merged weights.
#include <fmt/format.h>

#include "common.hpp"
#include "ensembles.hpp"
#include "nodes.hpp"

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

// The models, checked against the dataset, and the requested splits' samples.
struct Prepared {
  LoadedModels in;
  std::vector<std::string> splits;
  std::vector<mlp::Samples> samples;
};

Prepared prepare(const NodeContext& ctx, const Dataset& data) {
  Prepared p;
  p.splits = requested_splits(ctx.params(), data);
  for (const auto& s : p.splits) p.samples.push_back(split_samples(data, s));
  p.in = load_checkpoints(ctx, false);
  for (std::size_t i = 0; i < p.in.models.size(); ++i) check_fits(p.in.models[i], p.in.names[i], data, static_cast<long>(p.samples[0].X.rows()));
  return p;
}

class OutputEnsemble : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("ensemble.predictions",
               "Output ensemble of native MLP checkpoints: the mean of the models' class probabilities (or regression values)");
    declare_checkpoints(s, "the models (any architectures with the same inputs and outputs)");
    s.input("data", "Dataset", "the task, with model inputs for the splits to predict");
    s.output("predictions", "Predictions", "one model named after the node, on the requested splits");
    declare_splits(s);
    return s;
  }

  void run(NodeContext& ctx) override {
    const auto data = ctx.input<Dataset>("data");
    const Prepared p = prepare(ctx, *data);
    auto out = std::make_shared<Predictions>();
    out->kind = data->kind;
    out->models.push_back({ctx.id(), {}});
    for (std::size_t k = 0; k < p.splits.size(); ++k) out->models[0].splits[p.splits[k]] = output_ensemble(p.in.models, p.samples[k].X);
    ctx.summary()["models"] = p.in.names;
    ctx.summary()["splits"] = p.splits;
    ctx.publish("predictions", std::move(out));
  }
};

class FeatureEnsemble : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("ensemble.features",
               "Feature ensemble of native MLP checkpoints: the mean of the models' features (the feature layer's output) through the "
               "averaged head, or through a linear head refitted on the mean features of the training split by L-BFGS");
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
    const Prepared p = prepare(ctx, *data);
    const mlp::Model<float>& first = p.in.models.front();
    mlp::Model<float> head;
    Json& sum = ctx.summary();
    if (params.string("head") == "average") {
      head = averaged_head(p.in.models);
    } else {
      const mlp::Samples train = split_samples(*data, params.string("train_split"));
      RefitOptions o;
      o.weight_decay = params.real("weight_decay");
      o.max_iterations = static_cast<int>(params.integer("lbfgs_iterations"));
      head = refit_linear_head(mean_features(p.in.models, train.X), train.y, first.output_dim(), first.output, o);
      sum["train_split"] = params.string("train_split");
      sum["train_samples"] = train.size();
    }
    auto out = std::make_shared<Predictions>();
    out->kind = data->kind;
    out->models.push_back({ctx.id(), {}});
    for (std::size_t k = 0; k < p.splits.size(); ++k)
      out->models[0].splits[p.splits[k]] = apply_head(head, mean_features(p.in.models, p.samples[k].X));
    sum["models"] = p.in.names;
    sum["head"] = params.string("head");
    sum["feature_dim"] = first.feature_dim();
    sum["splits"] = p.splits;
    ctx.publish("predictions", std::move(out));
  }
};

}  // namespace

void register_ensembles(PluginRegistrar& r) {
  r.add_node<OutputEnsemble>();
  r.add_node<FeatureEnsemble>();
}

}  // namespace caulk::mlp_merges
