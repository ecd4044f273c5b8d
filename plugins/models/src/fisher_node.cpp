// analysis.fisher: the diagonal Fisher information of each checkpoint on a dataset (methods.md
// section 3), written as .safetensors with the checkpoint's tensor names for the mergers.
#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "backprop.hpp"
#include "mlp_checkpoint.hpp"
#include "model_inputs.hpp"
#include "nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

class FisherNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("analysis.fisher",
               "Diagonal Fisher information of each checkpoint on a dataset split: the exact expectation over the model's own "
               "predicted classes (softmax models) or under its unit-variance Gaussian (regression models)");
    s.input("data", "Dataset", "samples (model inputs) to average over; labels are not used");
    declare_hub(s);
    s.output("checkpoints", "Checkpoint", "the same checkpoints, each with its Fisher file attached (for merge.fisher)");
    s.param(ParamSpec::string("split", "train", "the split whose inputs the Fisher averages over"));
    s.param(ParamSpec::integer("max_samples", 0, "use the first this many samples (0: all)").at_least(0));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const std::vector<CheckpointRef> models = hub_models(ctx);
    mlp::Samples samples = split_samples(*data, p.string("split"));
    const auto max = static_cast<Eigen::Index>(p.integer("max_samples"));
    if (max > 0 && max < samples.size()) samples.X = samples.X.leftCols(max).eval();
    const mlp::Mat<double> X = samples.X.cast<double>();

    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    auto out = std::make_shared<Checkpoint>();
    out->models = models;
    std::vector<std::string> names;
    for (const auto& m : models) names.push_back(m.model);
    std::vector<Json> details(models.size());
    ctx.for_each_unit("model", names, [&](std::size_t i) {
      const mlp::Model<double> m = mlp::load_model(models[i].path).cast<double>();
      if (m.input_dim() != X.rows())
        throw Error(fmt::format("the model takes {} inputs but split '{}' has {} columns", m.input_dim(), p.string("split"), X.rows()));
      const mlp::Model<double> F = mlp::fisher_diagonal(m, X);
      const fs::path file = dir / (models[i].model + ".fisher.safetensors");
      mlp::save_tensors(file, F,
                        {{"format", "caulk.fisher"},
                         {"of", models[i].path.filename().string()},
                         {"samples", std::to_string(X.cols())},
                         {"expectation", m.output == mlp::Output::Softmax ? "model's predicted classes" : "unit Gaussian"}});
      out->models[i].fisher = file;
      double total = 0;
      for (const auto& t : mlp::parameters(F))
        for (std::size_t k = 0; k < t.size(); ++k) total += t.data[k];
      details[i] = Json{{"file", file.filename().string()}, {"trace", total}, {"samples", X.cols()}};
    });
    Json& sum = ctx.summary();
    for (std::size_t i = 0; i < models.size(); ++i) sum[models[i].model] = details[i];
    ctx.publish("checkpoints", std::move(out));
  }
};

}  // namespace

void register_fisher(PluginRegistrar& r) { r.add_node<FisherNode>(); }

}  // namespace caulk::models
