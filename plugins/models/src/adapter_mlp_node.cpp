// adapter.mlp: runs each checkpoint of a hub on a dataset's model inputs and publishes its features
// and its own head's class probabilities, so every ranker works on models, not only on files.
#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/figures/summaries.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/model_nodes/model_inputs.hpp"
#include "caulk/units.hpp"
#include "models/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

// One model's features and source probabilities for every split, from its payload (checkpoint
// path, splits, output folder) and the node's data and parameters: any rank can run it, and the
// .npy files are written (atomically) by the rank that made them, straight to their final paths.
Json embed_model_unit(UnitContext& ctx, const Json& d) {
  const std::string name = d.at("model").get<std::string>();
  const fs::path checkpoint = d.at("checkpoint").get<std::string>();
  const fs::path dir = d.at("dir").get<std::string>();
  const auto data = ctx.dataset("data");
  const int batch_size = static_cast<int>(ctx.params().integer("batch_size"));
  const mlp::Model<float> model = mlp::load_model(checkpoint);
  Json features = Json::object(), probs_files = Json::object();
  for (const auto& split : d.at("splits")) {
    const std::string s = split.get<std::string>();
    const mlp::Samples samples = split_samples(*data, s);
    if (samples.X.rows() != model.input_dim())
      throw Error(fmt::format("model '{}' takes {} inputs but split '{}' has {} columns", name, model.input_dim(), s, samples.X.rows()));
    const bool probs = model.output == mlp::Output::Softmax;
    mlp::RunOutputs r = mlp::run_batches(model, samples.X, true, probs, batch_size);
    const fs::path f = dir / fmt::format("{}.{}.features.npy", name, s);
    io::write_npy(f, r.features);
    features[s] = f.string();
    if (probs) {
      const fs::path sp = dir / fmt::format("{}.{}.source_probs.npy", name, s);
      io::write_npy(sp, r.outputs);
      probs_files[s] = sp.string();
    }
  }
  Json details = Json{{"layers", model.num_layers()},
                      {"feature_dim", model.feature_dim()},
                      {"source_outputs", model.output_dim()},
                      {"parameters", model.parameter_count()}};
  return Json{{"features", features}, {"source_probs", probs_files}, {"details", details}};
}

class AdapterMlp : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("adapter.mlp",
               "Run each MLP checkpoint of a hub on a dataset's inputs: features (the feature layer's output) and source-class "
               "probabilities, as Embeddings for the rankers");
    s.input("data", "Dataset", "the task, with model inputs for the splits to embed");
    declare_model_hub(s);
    s.output("features", "Embeddings", "per model and split: features N x D and source probabilities N x Cs (.npy in the node's folder)");
    s.output("summary", "Table", "per model and split: rows, feature columns, source-class columns");
    s.param(ParamSpec::list("splits", "the splits to embed (default: every split with inputs)"));
    s.param(ParamSpec::integer("batch_size", 256, "rows per forward batch (batches run in parallel)").range(1, 1 << 20));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const std::vector<CheckpointRef> models = hub_checkpoints(ctx);
    std::vector<std::string> splits;
    if (p.has("splits"))
      for (const Value& v : p.get("splits").as_array()) splits.push_back(v.as_string());
    else
      splits = splits_with_inputs(*data);
    if (splits.empty()) throw Error("the dataset has no split with model inputs (give dataset.load `inputs`)");
    for (const auto& s : splits) split_samples(*data, s);  // every split has inputs, before any unit

    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    auto out = std::make_shared<Embeddings>();
    out->hub = models.empty() ? "" : models.front().path.parent_path().filename().string();
    out->models.resize(models.size());
    std::vector<std::string> names;
    for (const auto& m : models) names.push_back(m.model);
    std::vector<Json> payloads;
    for (const auto& m : models)
      payloads.push_back(Json{{"model", m.model}, {"checkpoint", m.path.string()}, {"dir", dir.string()}, {"splits", splits}});
    const std::vector<Json> results = ctx.run_units("model", names, payloads);
    Json& sum = ctx.summary();
    for (std::size_t i = 0; i < models.size(); ++i) {
      ModelEmbedding& e = out->models[i];
      e.name = models[i].model;
      e.checkpoint = models[i].path;
      for (const auto& [s, f] : results[i].at("features").items()) e.features[s] = ArrayFile{f.get<std::string>(), {}};
      for (const auto& [s, f] : results[i].at("source_probs").items()) e.source_probs[s] = ArrayFile{f.get<std::string>(), {}};
      sum[models[i].model] = results[i].at("details");
    }
    ctx.publish("summary", std::make_shared<Table>(figures::hub_summary_table(*out)));
    ctx.publish("features", std::move(out));
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return embed_model_unit(ctx, payload); }
};

}  // namespace

void register_adapter_mlp(PluginRegistrar& r) { r.add_node<AdapterMlp>(); }

}  // namespace caulk::models
