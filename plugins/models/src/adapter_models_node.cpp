// adapter.models: runs every model of a hub, of any family (caulk MLP checkpoints, TorchScript
// modules), on a dataset's model inputs through the model interface (caulk/models/model.hpp) and
// publishes its features and source-class probabilities, so every ranker works on real models.
#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/figures/summaries.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/models/hub.hpp"
#include "caulk/models/inputs.hpp"
#include "caulk/models/model.hpp"
#include "caulk/units.hpp"
#include "models/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

// One model on every split, from its payload (the model's source, the splits, the output folder)
// and the node's Params and Dataset, which the engine hands every unit, so any rank can run it. The model is opened here: a process that
// runs no TorchScript model never loads libtorch. Batches of a split run in parallel on this
// process's pool; each writes its own rows, so the numbers do not depend on --jobs.
Json embed_any_model_unit(UnitContext& ctx, const Json& d) {
  const ModelSource source = source_from_json(d.at("source"));
  const fs::path dir = d.at("dir").get<std::string>();
  const auto data = ctx.dataset("data");
  const std::int64_t batch_size = ctx.params().integer("batch_size");
  const std::unique_ptr<Model> model = open_model(source);
  // Without source probabilities a TorchScript model runs its feature method only, not forward too.
  const bool logits = model->output_kind() == OutputKind::Logits && ctx.params().flag("source_probs");
  Json features = Json::object(), probs_files = Json::object();
  for (const auto& split : d.at("splits")) {
    const std::string s = split.get<std::string>();
    const ModelInputs inputs = ModelInputs::of_split(*data, s);
    const Outputs out = run_in_batches(*model, inputs, batch_size, true, logits);
    const fs::path f = dir / fmt::format("{}.{}.features.npy", source.name, s);
    io::write_npy(f, out.features);
    features[s] = f.string();
    if (logits) {
      const fs::path sp = dir / fmt::format("{}.{}.source_probs.npy", source.name, s);
      io::write_npy(sp, softmax_rows(out.outputs));
      probs_files[s] = sp.string();
    }
  }
  const std::vector<ParameterInfo> infos = model->parameters();
  std::int64_t parameters = 0;
  for (const auto& p : infos) parameters += p.size();
  Json details = Json{{"family", model->family()},
                      {"feature_dim", model->feature_dim()},
                      {"source_outputs", model->output_dim()},
                      // null for a model that exposes none (an ONNX graph, inference only)
                      {"parameters", infos.empty() ? Json(nullptr) : Json(parameters)}};
  return Json{{"features", features}, {"source_probs", probs_files}, {"details", details}};
}

fs::path model_file(const ModelSource& s) { return !s.checkpoint.empty() ? s.checkpoint : !s.torchscript.empty() ? s.torchscript : s.onnx; }

class AdapterModels : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("adapter.models",
               "Run each model of a hub (MLP checkpoints, TorchScript modules, ONNX graphs) on a dataset's inputs: features and "
               "source-class probabilities, as Embeddings for the rankers");
    s.input("data", "Dataset", "the task, with model inputs (.npy of any rank) for the splits to embed");
    declare_model_hub(s);
    s.output("features", "Embeddings",
             "per model and split: features N x D (float32) and source probabilities N x Cs (float64, the softmax of the "
             "logits; none for regression models), .npy in the node's folder");
    s.output("summary", "Table", "per model and split: rows, feature columns, source-class columns");
    s.param(ParamSpec::list("splits", "the splits to embed (default: every split with inputs)"));
    s.param(ParamSpec::integer("batch_size", 64, "samples per forward batch (batches run in parallel within --jobs)").range(1, 1 << 20));
    s.param(ParamSpec::flag("source_probs", true,
                            "also compute source probabilities (LEEP, NCE need them); false: features only, one pass of the feature "
                            "method instead of it and forward"));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const std::vector<ModelSource> models = hub_sources(ctx);
    std::vector<std::string> splits;
    if (p.has("splits")) {
      for (const Value& v : p.get("splits").as_array()) splits.push_back(v.as_string());
    } else {
      for (const auto& s : data->splits)
        if (s.inputs) splits.push_back(s.name);
    }
    if (splits.empty()) throw Error("the dataset has no split with model inputs (give dataset.load `inputs`)");
    for (const auto& s : splits) split_with_inputs(*data, s);  // every split has inputs, before any unit

    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    auto out = std::make_shared<Embeddings>();
    out->hub = models.empty() ? "" : model_file(models.front()).parent_path().filename().string();
    out->models.resize(models.size());
    std::vector<std::string> names;
    for (const auto& m : models) names.push_back(m.name);
    std::vector<Json> payloads;
    for (const auto& m : models) payloads.push_back(Json{{"source", source_to_json(m)}, {"dir", dir.string()}, {"splits", splits}});
    const std::vector<Json> results = ctx.run_units("model", names, payloads);
    Json& sum = ctx.summary();
    for (std::size_t i = 0; i < models.size(); ++i) {
      ModelEmbedding& e = out->models[i];
      e.name = models[i].name;
      e.checkpoint = model_file(models[i]);
      for (const auto& [s, f] : results[i].at("features").items()) e.features[s] = ArrayFile{f.get<std::string>(), {}};
      for (const auto& [s, f] : results[i].at("source_probs").items()) e.source_probs[s] = ArrayFile{f.get<std::string>(), {}};
      sum[models[i].name] = results[i].at("details");
    }
    ctx.publish("summary", std::make_shared<Table>(figures::hub_summary_table(*out)));
    ctx.publish("features", std::move(out));
  }

  static Json run_unit(UnitContext& ctx, const Json& payload) { return embed_any_model_unit(ctx, payload); }
};

}  // namespace

void register_adapter_models(PluginRegistrar& r) { r.add_node<AdapterModels>(); }

}  // namespace caulk::models
