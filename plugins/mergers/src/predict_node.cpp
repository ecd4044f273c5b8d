// predict.checkpoints: predictions of native MLP checkpoints (e.g. merged ones) on a dataset's
// splits, for eval.classification / eval.regression.
#include <fmt/format.h>

#include "caulk/context.hpp"
#include "native_models.hpp"
#include "nodes.hpp"

namespace caulk::mergers {

namespace {

class PredictCheckpoints : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("predict.checkpoints", "Predict with native MLP checkpoints (e.g. merged models) on a dataset's splits");
    s.inputs_many("checkpoints", "Checkpoint", "the models (native MLP checkpoints)");
    s.input("data", "Dataset", "the task, with model inputs");
    s.output("predictions", "Predictions", "class probabilities (or values) of every model on every predicted split");
    s.param(ParamSpec::list("splits", "the splits to predict (default: every split with inputs)"));
    return s;
  }
  void run(NodeContext& ctx) override {
    const auto data = ctx.input<Dataset>("data");
    std::vector<CheckpointRef> models;
    for (const auto& c : ctx.inputs<Checkpoint>("checkpoints"))
      for (const auto& m : c->models) models.push_back(m);
    std::vector<std::string> splits;
    if (ctx.params().has("splits"))
      for (const Value& v : ctx.params().get("splits").as_array()) splits.push_back(v.as_string());
    else
      for (const auto& s : data->splits)
        if (s.inputs) splits.push_back(s.name);
    std::vector<mlp::Mat<float>> inputs;
    for (const auto& s : splits) inputs.push_back(split_inputs(*data, s));

    auto out = std::make_shared<Predictions>();
    out->kind = data->kind;
    out->models.resize(models.size());
    std::vector<std::string> names;
    for (const auto& m : models) names.push_back(m.model);
    for (std::size_t i = 0; i < names.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (names[i] == names[j]) throw Error(fmt::format("model '{}' arrives twice on `checkpoints`", names[i]));
    ctx.for_each_unit("model", names, [&](std::size_t i) {
      const mlp::Model<float> m = load_native(models[i].path, models[i].model, "predict.checkpoints");
      out->models[i].model = models[i].model;
      for (std::size_t k = 0; k < splits.size(); ++k) out->models[i].splits[splits[k]] = predict(m, inputs[k], models[i].model, splits[k]);
    });
    ctx.summary()["models"] = names;
    ctx.summary()["splits"] = splits;
    ctx.publish("predictions", std::move(out));
  }
};

}  // namespace

void register_predict(PluginRegistrar& r) { r.add_node<PredictCheckpoints>(); }

}  // namespace caulk::mergers
