// zoo.pretrain: a demo hub of MLPs pre-trained on synthetic source tasks of known relatedness to a
// synthetic target task, written as checkpoints and a hub manifest, with the target task's files.
#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/units.hpp"
#include "models/algorithms/zoo.hpp"
#include "models/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

std::vector<mlp::ZooModelSpec> read_model_specs(const Params& p) {
  if (!p.has("models")) return mlp::default_zoo_models();
  std::vector<mlp::ZooModelSpec> out;
  for (const Value& v : p.get("models").as_array()) {
    mlp::ZooModelSpec s;
    for (const auto& [key, value] : v.as_table()) {
      if (key == "name")
        s.name = value.as_string();
      else if (key == "relatedness")
        s.relatedness = value.as_number();
      else if (key == "hidden")
        for (const Value& w : value.as_array()) s.hidden.push_back(static_cast<int>(w.as_int()));
      else if (key == "region")
        s.region = value.as_string();
      else if (key == "activation")
        s.activation = mlp::parse_activation(value.as_string());
      else
        throw Error(fmt::format("{}: zoo model key '{}' is unknown (known: name, relatedness, hidden, region, activation)",
                                value.where().str(), key));
    }
    if (s.name.empty()) throw Error(fmt::format("{}: a zoo model needs a name", v.where().str()));
    if (s.region != "" && s.region != "left" && s.region != "right")
      throw Error(fmt::format("zoo model '{}': region '{}' (expected left or right)", s.name, s.region));
    for (int w : s.hidden)
      if (w < 1 || w > 100000) throw Error(fmt::format("zoo model '{}': hidden width {} is out of range", s.name, w));
    for (const auto& other : out)
      if (other.name == s.name) throw Error(fmt::format("zoo model '{}' is listed twice", s.name));
    out.push_back(std::move(s));
  }
  return out;
}

// A TOML string literal, escaped as the pipeline writer escapes them.
std::string toml_string(const std::string& s) { return Value(s).to_toml(); }

mlp::ZooOptions zoo_options(const Params& p) {
  mlp::ZooOptions o;
  o.seed = static_cast<std::uint64_t>(p.integer("seed"));
  o.inputs = static_cast<int>(p.integer("inputs"));
  o.latent = static_cast<int>(p.integer("latent"));
  o.classes = static_cast<int>(p.integer("classes"));
  o.source_classes = static_cast<int>(p.integer("source_classes"));
  o.label_noise = p.real("label_noise");
  o.source_samples = static_cast<int>(p.integer("source_samples"));
  o.train = static_cast<int>(p.integer("train"));
  o.validation = static_cast<int>(p.integer("validation"));
  o.test = static_cast<int>(p.integer("test"));
  o.epochs = static_cast<int>(p.integer("epochs"));
  o.models = read_model_specs(p);
  return o;
}

// One model of the zoo pre-trained from the node's parameters alone (the zoo is a pure function of
// them and the seed): any rank can run it and writes the checkpoint itself, atomically.
Json pretrain_unit(UnitContext& ctx, const Json& d) {
  const Params& p = ctx.params();
  const mlp::ZooOptions o = zoo_options(p);
  const std::size_t i = d.at("index").get<std::size_t>();
  const std::filesystem::path dir = d.at("dir").get<std::string>();
  const mlp::PretrainedModel pm = mlp::pretrain_zoo_model(o, i);
  const auto& spec = o.models.at(i);
  mlp::save_model(dir / "checkpoints" / (spec.name + ".safetensors"), pm.model,
                  {{"source_relatedness", fmt::format("{}", spec.relatedness)}, {"source_region", spec.region}});
  return Json{{"source_accuracy", pm.source_accuracy}};
}

class ZooPretrain : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("zoo.pretrain",
               "Build a demo hub: MLPs pre-trained on synthetic source tasks of known relatedness to a synthetic target "
               "task (one pair of regional experts), with checkpoints, a hub manifest and the target's files");
    s.output("models", "Checkpoint", "the pre-trained checkpoints (also listed in hub.toml in the node's folder)");
    s.output("data", "Dataset", "the target task: inputs and labels for train, val and test");
    s.param(ParamSpec::integer("seed", 0, "seed of every random choice (tasks, initialisation, minibatches)").at_least(0));
    s.param(ParamSpec::integer("inputs", 32, "input dimension P").range(2, 100000));
    s.param(ParamSpec::integer("latent", 4, "dimension K of the target's latent (K < P makes unrelated features poor)").range(1, 10000));
    s.param(ParamSpec::integer("classes", 4, "target classes").range(2, 1000));
    s.param(ParamSpec::integer("source_classes", 8, "classes of every source task").range(2, 1000));
    s.param(ParamSpec::real("label_noise", 0.1, "standard deviation of the noise on the class scores").range(0, 100));
    s.param(ParamSpec::integer("source_samples", 4000, "pre-training samples per model").range(10, 10000000));
    s.param(ParamSpec::integer("train", 300, "target training samples").range(2, 10000000));
    s.param(ParamSpec::integer("validation", 300, "target validation samples (split 'val')").range(2, 10000000));
    s.param(ParamSpec::integer("test", 2000, "target test samples").range(2, 10000000));
    s.param(ParamSpec::integer("epochs", 20, "pre-training epochs (Adam, lr 1e-3, batch 64)").range(1, 100000));
    s.param(ParamSpec::list("models",
                            "the hub: [{ name, relatedness (0..1), hidden = [widths], region = \"left\"|\"right\", "
                            "activation }, ...] (default: 7 models from unrelated to closely related, and two regional experts)"));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const mlp::ZooOptions o = zoo_options(p);

    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir / "checkpoints");
    fs::create_directories(dir / "target");

    // The target task's files, so that later runs (and other tools) can load them with dataset.load.
    const mlp::ZooTask task = mlp::make_target_task(o);
    auto data = std::make_shared<Dataset>();
    data->kind = TaskKind::Classification;
    for (int c = 0; c < o.classes; ++c) data->class_names.push_back(std::to_string(c));
    for (const auto& [name, samples] : {std::pair{"train", &task.train}, {"val", &task.validation}, {"test", &task.test}}) {
      const fs::path inputs = dir / "target" / fmt::format("{}_inputs.npy", name),
                     labels = dir / "target" / fmt::format("{}_labels.npy", name);
      const RowMatrixF rows = samples->X.transpose();
      io::write_npy(inputs, rows);
      io::write_npy(labels, std::vector<std::int64_t>(samples->y.classes.begin(), samples->y.classes.end()));
      DatasetSplit s;
      s.name = name;
      s.rows = samples->y.classes.size();
      s.classes = samples->y.classes;
      s.inputs = ArrayFile{inputs, {}};
      s.labels_file = labels;
      data->splits.push_back(std::move(s));
    }

    std::vector<std::string> names;
    for (const auto& m : o.models) names.push_back(m.name);
    std::vector<Json> descriptions;
    for (std::size_t i = 0; i < o.models.size(); ++i) descriptions.push_back(Json{{"index", i}, {"dir", dir.string()}});
    const std::vector<Json> results = ctx.run_units("pre-train", names, descriptions);
    std::vector<double> source_accuracy(o.models.size());
    for (std::size_t i = 0; i < o.models.size(); ++i) source_accuracy[i] = results[i].at("source_accuracy").get<double>();

    auto models = std::make_shared<Checkpoint>();
    std::string manifest = fmt::format("# Written by zoo.pretrain (seed {}).\n[hub]\nname = \"zoo\"\ndescription = {}\n", o.seed,
                                       toml_string("synthetic source tasks of known relatedness to the target in ./target"));
    Json& sum = ctx.summary();
    for (std::size_t i = 0; i < o.models.size(); ++i) {
      const auto& spec = o.models[i];
      const fs::path file = dir / "checkpoints" / (spec.name + ".safetensors");
      models->models.push_back({spec.name, file, {}, false, {}, {}});
      std::string hidden;
      for (int w : spec.hidden) hidden += (hidden.empty() ? "" : "-") + std::to_string(w);
      const std::string description =
          fmt::format("relatedness {}{}, hidden {}, {}", spec.relatedness, spec.region.empty() ? "" : " on the " + spec.region + " half",
                      hidden, mlp::activation_name(spec.activation));
      manifest += fmt::format("\n[[model]]\nname = {}\ncheckpoint = {}\ndescription = {}\n", toml_string(spec.name),
                              toml_string("checkpoints/" + spec.name + ".safetensors"), toml_string(description));
      sum[spec.name] = Json{{"relatedness", spec.relatedness}, {"region", spec.region}, {"source_accuracy", source_accuracy[i]}};
    }
    io::write_file_atomic(dir / "hub.toml", manifest);
    ctx.print(fmt::format("zoo.pretrain: {} models and the target task written to {}\n", o.models.size(), dir.string()));
    ctx.publish("models", std::move(models));
    ctx.publish("data", std::move(data));
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return pretrain_unit(ctx, payload); }
};

}  // namespace

void register_zoo_pretrain(PluginRegistrar& r) { r.add_node<ZooPretrain>(); }

}  // namespace caulk::models
