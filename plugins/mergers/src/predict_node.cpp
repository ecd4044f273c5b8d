// predict.checkpoints: predictions of models of any family (MLP checkpoints, TorchScript modules
// with their merged or tuned weights) on a dataset's splits, through the model interface, for
// eval.classification / eval.regression.
#include <fmt/format.h>

#include "caulk/models/inputs.hpp"
#include "caulk/context.hpp"
#include "caulk/models/hub.hpp"
#include "caulk/units.hpp"
#include "mergers/src/native_models.hpp"
#include "mergers/src/nodes.hpp"

namespace caulk::mergers {

namespace {

// One model's predictions on the listed splits, on any rank (the inputs are read from the
// dataset's files; the predictions, N x C doubles per split, come back).
Json predict_model_unit(UnitContext& ctx, const Json& d) {
  const auto data = ctx.dataset("data");
  const models::ModelSource source = models::source_from_json(d.at("source"));
  const std::int64_t batch_size = ctx.params().integer("batch_size");
  Json out = Json::object();
  for (const auto& split : d.at("splits").get<std::vector<std::string>>())
    out[split] = matrix_to_json(predict_model(source, *data, split, batch_size));
  return out;
}

class PredictCheckpoints : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("predict.checkpoints",
               "Predict with models of any family (MLP checkpoints, TorchScript modules with merged or tuned weights) on a "
               "dataset's splits");
    s.inputs_many("checkpoints", "Checkpoint", "the models (MLP checkpoints, or TorchScript modules with their weights)");
    s.input("data", "Dataset", "the task, with model inputs");
    s.output("predictions", "Predictions", "class probabilities (or values) of every model on every predicted split");
    s.param(ParamSpec::list("splits", "the splits to predict (default: every split with inputs)"));
    s.param(ParamSpec::integer("batch_size", 64, "samples per forward batch of a TorchScript model (batches run in parallel within --jobs)")
                .range(1, 1 << 20));
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
    for (const auto& s : splits) models::split_with_inputs(*data, s);  // every split has inputs: checked before any unit

    auto out = std::make_shared<Predictions>();
    out->kind = data->kind;
    out->models.resize(models.size());
    std::vector<std::string> names;
    for (const auto& m : models) names.push_back(m.model);
    for (std::size_t i = 0; i < names.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (names[i] == names[j]) throw Error(fmt::format("model '{}' arrives twice on `checkpoints`", names[i]));
    const Json common{{"splits", splits}};
    std::vector<Json> descriptions;
    for (const auto& m : models) {
      Json d = common;
      d["model"] = m.model;
      d["source"] = models::source_to_json(models::source_of(m));
      descriptions.push_back(std::move(d));
    }
    const std::vector<Json> results = ctx.run_units("model", names, descriptions);
    for (std::size_t i = 0; i < models.size(); ++i) {
      out->models[i].model = models[i].model;
      for (const auto& split : splits) out->models[i].splits[split] = matrix_from_json(results[i].at(split));
    }
    ctx.summary()["models"] = names;
    ctx.summary()["splits"] = splits;
    ctx.publish("predictions", std::move(out));
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return predict_model_unit(ctx, payload); }
};

}  // namespace

void register_predict(PluginRegistrar& r) { r.add_node<PredictCheckpoints>(); }

}  // namespace caulk::mergers
