// adapter.mlp: runs each checkpoint of a hub on a dataset's model inputs and publishes its features
// and its own head's class probabilities, so every ranker works on models, not only on files.
#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/io/npy.hpp"
#include "mlp_checkpoint.hpp"
#include "model_inputs.hpp"
#include "nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

class AdapterMlp : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("adapter.mlp",
               "Run each MLP checkpoint of a hub on a dataset's inputs: features (the feature layer's output) and source-class "
               "probabilities, as Embeddings for the rankers");
    s.input("data", "Dataset", "the task, with model inputs for the splits to embed");
    declare_hub(s);
    s.output("features", "Embeddings", "per model and split: features N x D and source probabilities N x Cs (.npy in the node's folder)");
    s.param(ParamSpec::list("splits", "the splits to embed (default: every split with inputs)"));
    s.param(ParamSpec::integer("batch_size", 256, "rows per forward batch (batches run in parallel)").range(1, 1 << 20));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const std::vector<CheckpointRef> models = hub_models(ctx);
    std::vector<std::string> splits;
    if (p.has("splits"))
      for (const Value& v : p.get("splits").as_array()) splits.push_back(v.as_string());
    else
      splits = splits_with_inputs(*data);
    if (splits.empty()) throw Error("the dataset has no split with model inputs (give dataset.load `inputs`)");
    std::vector<mlp::Samples> samples;
    for (const auto& s : splits) samples.push_back(split_samples(*data, s));

    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    auto out = std::make_shared<Embeddings>();
    out->hub = models.empty() ? "" : models.front().path.parent_path().filename().string();
    out->models.resize(models.size());
    std::vector<std::string> names;
    for (const auto& m : models) names.push_back(m.model);
    std::vector<Json> details(models.size());
    ctx.for_each_unit("model", names, [&](std::size_t i) {
      const mlp::Model<float> model = mlp::load_model(models[i].path);
      ModelEmbedding& e = out->models[i];
      e.name = models[i].model;
      e.checkpoint = models[i].path;
      for (std::size_t k = 0; k < splits.size(); ++k) {
        if (samples[k].X.rows() != model.input_dim())
          throw Error(fmt::format("model '{}' takes {} inputs but split '{}' has {} columns", e.name, model.input_dim(), splits[k],
                                  samples[k].X.rows()));
        const bool probs = model.output == mlp::Output::Softmax;
        mlp::RunOutputs r = mlp::run_batches(model, samples[k].X, true, probs, static_cast<int>(p.integer("batch_size")));
        const fs::path f = dir / fmt::format("{}.{}.features.npy", e.name, splits[k]);
        io::write_npy(f, r.features);
        e.features[splits[k]] = ArrayFile{f, {}};
        if (probs) {
          const fs::path sp = dir / fmt::format("{}.{}.source_probs.npy", e.name, splits[k]);
          io::write_npy(sp, r.outputs);
          e.source_probs[splits[k]] = ArrayFile{sp, {}};
        }
      }
      details[i] = Json{{"layers", model.num_layers()},
                        {"feature_dim", model.feature_dim()},
                        {"source_outputs", model.output_dim()},
                        {"parameters", model.parameter_count()}};
    });
    Json& sum = ctx.summary();
    for (std::size_t i = 0; i < models.size(); ++i) sum[models[i].model] = details[i];
    ctx.publish("features", std::move(out));
  }
};

}  // namespace

void register_adapter_mlp(PluginRegistrar& r) { r.add_node<AdapterMlp>(); }

}  // namespace caulk::models
