// analysis.fisher: the diagonal Fisher information of each checkpoint on a dataset (docs/models.md),
// written as .safetensors with the checkpoint's tensor names for the mergers.
#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/data_check.hpp"
#include "caulk/mlp/backprop.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/model_nodes/model_inputs.hpp"
#include "caulk/units.hpp"
#include "models/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

// The samples the Fisher averages over: the split's inputs, the first max_samples of them.
mlp::Mat<double> fisher_inputs(const Params& p, const Dataset& data) {
  mlp::Samples samples = split_samples(data, p.string("split"));
  const auto max = static_cast<Eigen::Index>(p.integer("max_samples"));
  if (max > 0 && max < samples.size()) samples.X = samples.X.leftCols(max).eval();
  return samples.X.cast<double>();
}

// One model's Fisher diagonal from its payload (the checkpoint's path, the Fisher file's) and the
// node's parameters and data: any rank can run it. The rank that computed it writes the Fisher
// file (atomically: io::write_safetensors goes through AtomicFile) to its final path; the file's
// name and the facts for run.json come back.
Json fisher_model_unit(UnitContext& ctx, const Json& desc) {
  const Params& p = ctx.params();
  const auto data = ctx.dataset("data");
  const mlp::Mat<double> X = fisher_inputs(p, *data);
  const fs::path model_path = desc.at("checkpoint").get<std::string>();
  const fs::path file = desc.at("file").get<std::string>();
  const mlp::Model<double> m = mlp::load_model(model_path).cast<double>();
  if (m.input_dim() != X.rows())
    throw Error(fmt::format("the model takes {} inputs but split '{}' has {} columns", m.input_dim(), p.string("split"), X.rows()));
  const mlp::Model<double> F = mlp::fisher_diagonal(m, X);
  mlp::save_tensors(file, F,
                    {{"format", "caulk.fisher"},
                     {"of", model_path.filename().string()},
                     {"samples", std::to_string(X.cols())},
                     {"expectation", m.output == mlp::Output::Softmax ? "model's predicted classes" : "unit Gaussian"}});
  double total = 0;
  for (const auto& t : mlp::parameters(F))
    for (std::size_t k = 0; k < t.size(); ++k) total += t.data[k];
  return Json{{"file", file.filename().string()}, {"trace", total}, {"samples", X.cols()}};
}

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
    s.data_check = [](DataCheck& check) { check.expect_split("split", "data"); };  // caulk/data_check.hpp
    s.param(ParamSpec::integer("max_samples", 0, "use the first this many samples (0: all)").at_least(0));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const std::vector<CheckpointRef> models = hub_models(ctx);
    split_samples(*data, p.string("split"));  // the split and its inputs are checked before any unit starts

    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    auto out = std::make_shared<Checkpoint>();
    out->models = models;
    std::vector<std::string> names;
    for (const auto& m : models) names.push_back(m.model);
    std::vector<Json> descriptions;
    for (const auto& m : models) {
      Json d = Json::object();
      d["model"] = m.model;
      d["checkpoint"] = m.path.string();
      d["file"] = (dir / (m.model + ".fisher.safetensors")).string();
      descriptions.push_back(std::move(d));
    }
    const std::vector<Json> details = ctx.run_units("model", names, descriptions);
    for (std::size_t i = 0; i < models.size(); ++i) out->models[i].fisher = descriptions[i].at("file").get<std::string>();
    Json& sum = ctx.summary();
    for (std::size_t i = 0; i < models.size(); ++i) sum[models[i].model] = details[i];
    ctx.publish("checkpoints", std::move(out));
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return fisher_model_unit(ctx, payload); }
};

}  // namespace

void register_fisher(PluginRegistrar& r) {
  r.add_node<FisherNode>();
}

}  // namespace caulk::models
