// analysis.fisher: the diagonal Fisher information of each model of a hub (caulk MLP checkpoints,
// TorchScript modules) on a dataset split, through the model interface (caulk/models/model.hpp),
// written as .safetensors under the model's parameter names (PyTorch's, for TorchScript) for
// merge.fisher (docs/models.md).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/data_check.hpp"
#include "caulk/io/safetensors.hpp"
#include "caulk/mlp/backprop.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/models/hub.hpp"
#include "caulk/models/inputs.hpp"
#include "caulk/models/mlp_model.hpp"
#include "caulk/models/model.hpp"
#include "caulk/units.hpp"
#include "models/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

// The exact Fisher of an MLP: the MLP runtime's vectorised mean in float64, written with the
// checkpoint's tensor names and the metadata analysis.fisher has always written (so MLP runs keep
// their numbers and bytes). Returns the trace.
double mlp_exact_fisher(const MlpModel& model, const InputBatch& x, const fs::path& file, const fs::path& of) {
  const mlp::Model<double> m = model.mlp().cast<double>();
  const mlp::Mat<double> X =
      Eigen::Map<const mlp::Mat<float>>(static_cast<const float*>(x.data), m.input_dim(), static_cast<Eigen::Index>(x.rows()))
          .cast<double>();
  const mlp::Model<double> F = mlp::fisher_diagonal(m, X);
  mlp::save_tensors(file, F,
                    {{"format", "caulk.fisher"},
                     {"of", of.filename().string()},
                     {"samples", std::to_string(X.cols())},
                     {"expectation", m.output == mlp::Output::Softmax ? "model's predicted classes" : "unit Gaussian"}});
  double total = 0;
  for (const auto& t : mlp::parameters(F))
    for (std::size_t k = 0; k < t.size(); ++k) total += t.data[k];
  return total;
}

// Samples [0, rows) of a split's inputs as the model takes them, checked against the model's
// sample shape. Throws Error naming the inputs' file and the model.
InputBatch fisher_batch(const Model& model, const ModelInputs& inputs, const std::string& split, std::int64_t rows,
                        std::vector<std::byte>& buffer) {
  const std::vector<std::int64_t> expected = model.input_shape();
  const std::vector<std::int64_t> sample(inputs.shape().begin() + 1, inputs.shape().end());
  if (!expected.empty() && expected != sample) {
    if (expected.size() == 1 && sample.size() == 1)  // rows of numbers, as an MLP takes
      throw Error(fmt::format("the model takes {} inputs but split '{}' has {} columns ({}; {})", expected[0], split, sample[0],
                              inputs.describe(), model.describe()));
    throw Error(fmt::format("the model takes samples of shape [{}] but split '{}' has samples of shape [{}] ({}; {})",
                            fmt::join(expected, ", "), split, fmt::join(sample, ", "), inputs.describe(), model.describe()));
  }
  return inputs.batch(0, rows, inputs.dtype_for(model), buffer);
}

// One model's Fisher diagonal from its payload (the model's source, the Fisher file's path) and
// the node's parameters and data: any rank can run it. The model is opened here, so a process
// that runs no TorchScript model never loads libtorch. The file is written atomically to its
// final path; its name and the facts for run.json come back.
Json fisher_model_unit(UnitContext& ctx, const Json& desc) {
  const Params& p = ctx.params();
  const auto data = ctx.dataset("data");
  const ModelSource source = source_from_json(desc.at("source"));
  const fs::path file = desc.at("file").get<std::string>();
  const std::string split = p.string("split");
  const bool sampled = p.string("expectation") == "sampled";

  const std::unique_ptr<Model> model = open_model(source);
  const ModelInputs inputs = ModelInputs::of_split(*data, split);
  std::int64_t rows = inputs.rows();
  if (const std::int64_t max = p.integer("max_samples"); max > 0) rows = std::min(rows, max);
  if (rows == 0) throw DataError(inputs.describe(), "the Fisher information needs at least one sample; these inputs have none");
  std::vector<std::byte> buffer;
  const InputBatch x = fisher_batch(*model, inputs, split, rows, buffer);

  double trace = 0;
  const auto* mlp = dynamic_cast<const MlpModel*>(model.get());
  if (mlp && !sampled) {
    trace = mlp_exact_fisher(*mlp, x, file, source.checkpoint);
  } else {
    FisherDiagonal F;
    try {
      F = model->fisher_diagonal(x, sampled, static_cast<std::uint64_t>(p.integer("seed")));
    } catch (const DataError& e) {
      throw DataError(e.file(), fmt::format("{} (inputs: {})", e.problem(), inputs.describe()));
    }
    save_fisher(*model, F, file, double(rows));  // the mean over the samples, atomically
    for (const auto& values : F.values)
      for (double v : values) trace += v / double(rows);
  }
  Json facts{{"file", file.filename().string()}, {"trace", trace}, {"samples", rows}};
  if (!mlp) facts["family"] = model->family();
  if (sampled) facts["expectation"] = "sampled";
  return facts;
}

class FisherNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("analysis.fisher",
               "Diagonal Fisher information of each model (MLP checkpoint or TorchScript module) on a dataset split: the exact "
               "expectation over the model's own predicted classes (or one class drawn per sample), or under its unit-variance "
               "Gaussian (regression models)");
    s.input("data", "Dataset", "samples (model inputs, .npy of any rank) to average over; labels are not used");
    declare_model_hub(s);
    s.output("checkpoints", "Checkpoint",
             "the same models, each with its Fisher file attached (for merge.fisher): safetensors of the mean over the samples, "
             "under the model's parameter names");
    s.param(ParamSpec::string("split", "train", "the split whose inputs the Fisher averages over"));
    s.data_check = [](DataCheck& check) {  // caulk/data_check.hpp
      check_model_hub(check);
      check.expect_split("split", "data");
    };
    s.param(ParamSpec::integer("max_samples", 0, "use the first this many samples (0: all)").at_least(0));
    s.param(ParamSpec::choice("expectation", "exact", {"exact", "sampled"},
                              "exact: every class weighted by its predicted probability; sampled: one class per sample drawn "
                              "from the model's prediction (cheaper for many classes; classification only)"));
    s.param(ParamSpec::integer("seed", 0, "the generator of the sampled classes (sample i takes draw i)").at_least(0));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const std::vector<CheckpointRef> models = hub_checkpoints(ctx);
    const std::string split = p.string("split");
    split_with_inputs(*data, split);  // checked before any unit starts

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
      d["source"] = source_to_json(source_of(m));
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

void register_fisher(PluginRegistrar& r) { r.add_node<FisherNode>(); }

}  // namespace caulk::models
