// simulate.local_experts: the regression simulation of simulation.hpp written as files (a dataset
// and a predictions manifest) and published, so a demo needs no external step.
#include <fmt/format.h>

#include "averagers/algorithms/simulation.hpp"
#include "averagers/src/common.hpp"
#include "averagers/src/nodes.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/npy.hpp"

namespace fs = std::filesystem;

namespace caulk::averagers {

namespace {

class SimulateLocalExperts : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("simulate.local_experts",
               "Simulate z ~ U[0,1]^2 in three regions and three models, each accurate in its own region (or one uniformly best), "
               "with y = sin(2 pi z1) + cos(2 pi z2) + noise");
    s.output("data", "Dataset", "regression targets with covariates (and inputs) z for train, val and test");
    s.output("predictions", "Predictions", "expert_a, expert_b, expert_c on train, val, test, and 'loo' (= train: the models are fixed)");
    s.param(ParamSpec::integer("seed", 0, "seed of every draw").at_least(0));
    s.param(ParamSpec::choice("scenario", "regional", {"regional", "uniform"},
                              "regional: model k is accurate in region k only; uniform: expert_a is best everywhere"));
    s.param(ParamSpec::integer("train", 500, "training rows (where Mallows and jackknife averaging fit)").range(1, 10000000));
    s.param(ParamSpec::integer("validation", 1000, "validation rows (split 'val', where the other combiners fit)").range(1, 10000000));
    s.param(ParamSpec::integer("test", 2000, "test rows").range(1, 10000000));
    s.param(ParamSpec::real("noise", 0.1, "standard deviation of y around g(z)").range(0, 1e6));
    s.param(ParamSpec::real("expert_noise", 0.1, "standard deviation of a model's error in its own region").range(0, 1e6));
    s.param(ParamSpec::real("far_noise", 0.5, "standard deviation of a model's error outside its region").range(0, 1e6));
    s.param(ParamSpec::real("far_bias", 1.0, "amplitude of a model's bias outside its region").range(0, 1e6));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    avg::LocalExpertsOptions o;
    o.seed = static_cast<std::uint64_t>(p.integer("seed"));
    o.scenario = p.string("scenario");
    o.train = static_cast<int>(p.integer("train"));
    o.validation = static_cast<int>(p.integer("validation"));
    o.test = static_cast<int>(p.integer("test"));
    o.noise = p.real("noise");
    o.expert_noise = p.real("expert_noise");
    o.far_noise = p.real("far_noise");
    o.far_bias = p.real("far_bias");
    const avg::LocalExperts sim = avg::simulate_local_experts(o);

    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    auto data = std::make_shared<Dataset>();
    data->kind = TaskKind::Regression;
    auto predictions = std::make_shared<Predictions>();
    predictions->kind = TaskKind::Regression;
    for (const auto& name : sim.models) predictions->models.push_back({name, {}});
    std::string manifest =
        fmt::format("# Written by simulate.local_experts (seed {}, scenario {}).\n[hub]\nname = \"local_experts\"\nkind = \"regression\"\n",
                    o.seed, o.scenario);
    std::vector<std::string> files(sim.models.size());
    Json regions = Json::object();
    for (const auto& [name, split] : {std::pair{"train", &sim.train}, {"val", &sim.validation}, {"test", &sim.test}}) {
      const fs::path z_file = dir / fmt::format("{}_z.npy", name), y_file = dir / fmt::format("{}_y.npy", name);
      io::write_npy(z_file, split->z);
      io::write_npy(y_file, split->y);
      DatasetSplit d;
      d.name = name;
      d.rows = static_cast<std::size_t>(split->y.rows());
      d.targets = split->y;
      d.covariates = ArrayFile{z_file, {}};
      d.inputs = ArrayFile{z_file, {}};
      d.labels_file = y_file;
      data->splits.push_back(std::move(d));
      std::vector<int> count(3, 0);
      for (int r : split->region) ++count[static_cast<std::size_t>(r)];
      regions[name] = count;
      for (std::size_t k = 0; k < sim.models.size(); ++k) {
        const Matrix column = split->predictions.col(static_cast<Eigen::Index>(k));
        const std::string file = fmt::format("{}.{}.npy", sim.models[k], name);
        io::write_npy(dir / file, column);
        predictions->models[k].splits[name] = column;
        files[k] += fmt::format("{}{} = \"{}\"", files[k].empty() ? "" : ", ", name, file);
      }
    }
    for (std::size_t k = 0; k < sim.models.size(); ++k) {
      // Fixed functions of z: leaving a row out changes nothing, so the leave-one-out predictions
      // on the training rows are the predictions there.
      predictions->models[k].splits["loo"] = predictions->models[k].splits["train"];
      files[k] += fmt::format(", loo = \"{}.train.npy\"", sim.models[k]);
      manifest += fmt::format("\n[[model]]\nname = \"{}\"\npredictions = {{ {} }}\n", sim.models[k], files[k]);
    }
    io::write_file_atomic(dir / "predictions.toml", manifest);
    ctx.summary()["scenario"] = o.scenario;
    ctx.summary()["rows_per_region"] = regions;
    ctx.publish("data", std::move(data));
    ctx.publish("predictions", std::move(predictions));
  }
};

}  // namespace

void register_simulation(PluginRegistrar& r) { r.add_node<SimulateLocalExperts>(); }

}  // namespace caulk::averagers
