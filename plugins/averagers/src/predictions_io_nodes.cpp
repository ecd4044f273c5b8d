// predictions.load and predictions.save: models' predictions as .npy files listed by a manifest,
// so that models fitted anywhere (PyTorch, scikit-learn, R) can be combined, and caulk's own
// combinations read elsewhere.
#include <fmt/format.h>

#include <cmath>

#include "averagers/src/common.hpp"
#include "averagers/src/nodes.hpp"
#include "averagers/src/predictions_manifest.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/io/npy.hpp"

namespace fs = std::filesystem;

namespace caulk::averagers {

namespace {

void check_probability_rows(const Matrix& m, const fs::path& file, const std::string& what) {
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    if (m.row(i).minCoeff() < 0) throw DataError(file.string(), fmt::format("{}: row {} has a negative probability", what, i));
    const double sum = m.row(i).sum();
    if (std::abs(sum - 1) > 1e-6)
      throw DataError(file.string(),
                      fmt::format("{}: the probabilities of row {} sum to {}, not 1 (kind is classification)", what, i, sum));
  }
}

class PredictionsLoad : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("predictions.load",
               "Load models' predictions (N x C probabilities or regression values, .npy per split) listed by a predictions manifest");
    s.output("predictions", "Predictions", "every model of the manifest on every split it lists");
    s.param(ParamSpec::path("manifest",
                            "predictions manifest (TOML): [hub] name, kind; [[model]] name, predictions = { split = file.npy }, "
                            "parameters, description"));
    s.param(ParamSpec::choice("kind", "auto", {"auto", "classification", "regression"},
                              "the kind of predictions (auto: the manifest's [hub] kind)"));
    add_predictions_data_check(s);
    return s;
  }

  void run(NodeContext& ctx) override {
    const fs::path file = ctx.params().path("manifest");
    const Manifest m = read_manifest(file, predictions_manifest_schema());
    std::string kind = ctx.params().string("kind");
    if (kind == "auto") {
      kind.clear();
      for (const auto& [k, v] : m.header)
        if (k == "kind") {
          if (!v.is_string()) throw DataError(v.where().str(), "[hub] kind must be \"classification\" or \"regression\"");
          kind = v.as_string();
        }
      if (kind.empty())
        throw DataError(file.string(),
                        "says no kind: write kind = \"classification\" or \"regression\" under [hub], or set the node's 'kind'");
    }
    if (kind != "classification" && kind != "regression")
      throw DataError(file.string(), fmt::format("kind '{}' (expected classification or regression)", kind));

    auto out = std::make_shared<LoadedPredictions>();
    out->kind = kind == "classification" ? TaskKind::Classification : TaskKind::Regression;
    Eigen::Index columns = -1;
    std::map<std::string, std::pair<Eigen::Index, std::string>> rows_of;  // split -> (rows, first model)
    Json parameters = Json::object();
    for (const auto& model : m.models) {
      ModelPredictions mp;
      mp.model = model.name;
      for (const auto& [split, path] : model.split_paths("predictions")) {
        const std::string what =
            fmt::format("predictions of model '{}' on split '{}' ({})", model.name, split, model.location("predictions"));
        if (auto problem = io::input_file_problem(path)) throw DataError(path.string(), what + ": " + *problem);
        Matrix values = ArrayFile{path, {}}.open(what).to_double();
        if (values.rows() == 0 || values.cols() == 0) throw DataError(path.string(), what + ": the array is empty");
        if (columns < 0) columns = values.cols();
        if (values.cols() != columns)
          throw DataError(path.string(),
                          fmt::format("{}: has {} columns but model '{}' has {}", what, values.cols(), m.models.front().name, columns));
        auto [it, fresh] = rows_of.emplace(split, std::pair{values.rows(), model.name});
        if (!fresh && it->second.first != values.rows())
          throw DataError(path.string(), fmt::format("{}: has {} rows but model '{}' has {} on that split", what, values.rows(),
                                                     it->second.second, it->second.first));
        if (out->kind == TaskKind::Classification) check_probability_rows(values, path, what);
        mp.splits[split] = std::move(values);
        out->files[model.name][split] = path;
      }
      if (const Value* p = model.get("parameters")) parameters[model.name] = p->as_number();
      out->models.push_back(std::move(mp));
    }
    Json& sum = ctx.summary();
    sum["manifest"] = m.name;
    sum["kind"] = kind;
    sum["models"] = out->models.size();
    Json rows = Json::object();
    for (const auto& [split, r] : rows_of) rows[split] = r.first;
    sum["rows"] = rows;
    if (!parameters.empty()) sum["parameters"] = parameters;
    ctx.publish("predictions", std::move(out));
  }
};

class PredictionsSave : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("predictions.save",
               "Write predictions as .npy files (one per model and split) with a predictions manifest that predictions.load reads");
    s.inputs_many("predictions", "Predictions", "the predictions to write (model names must differ)");
    s.output("predictions", "Predictions", "the same predictions, all models together");
    s.param(ParamSpec::string("dir", "", "the folder, relative to the run's output folder (default: the node's id)"));
    s.param(ParamSpec::table("parameters", "models' numbers of parameters to record in the manifest: { model = N }"));
    return s;
  }

  void run(NodeContext& ctx) override {
    const auto inputs = ctx.inputs<Predictions>("predictions");
    const Candidates c = gather_candidates(inputs, nullptr);
    const std::string dir_name = ctx.params().string("dir").empty() ? ctx.id() : ctx.params().string("dir");
    const fs::path dir = fs::path(dir_name).is_absolute() ? fs::path(dir_name) : ctx.out_dir() / dir_name;
    fs::create_directories(dir);
    std::map<std::string, double> counts;
    if (ctx.params().has("parameters"))
      for (const auto& [name, v] : ctx.params().get("parameters").as_table()) counts[name] = v.as_number();

    auto out = std::make_shared<Predictions>();
    out->kind = c.kind;
    std::string manifest = fmt::format("# Written by predictions.save ('{}').\n[hub]\nname = {}\nkind = \"{}\"\n", ctx.id(),
                                       Value(ctx.id()).to_toml(), task_kind_name(c.kind));
    for (std::size_t k = 0; k < c.models.size(); ++k) {
      const ModelPredictions& mp = *c.models[k];
      if (mp.model.find('/') != std::string::npos || mp.model.find('\\') != std::string::npos)
        throw Error(fmt::format("model '{}' cannot name a file: its name has a path separator", mp.model));
      std::string splits;
      for (const auto& [split, values] : mp.splits) {
        const std::string file = fmt::format("{}.{}.npy", mp.model, split);
        io::write_npy(dir / file, values);
        splits += fmt::format("{}{} = {}", splits.empty() ? "" : ", ", Value(split).to_toml(), Value(file).to_toml());
      }
      manifest += fmt::format("\n[[model]]\nname = {}\npredictions = {{ {} }}\n", Value(mp.model).to_toml(), splits);
      if (auto it = counts.find(mp.model); it != counts.end()) manifest += fmt::format("parameters = {}\n", it->second);
      out->models.push_back(mp);
    }
    for (const auto& [name, n] : counts)
      if (std::find(c.names.begin(), c.names.end(), name) == c.names.end())
        throw Error(fmt::format("'parameters' names model '{}', which is not among the predictions", name));
    io::write_file_atomic(dir / "predictions.toml", manifest);
    ctx.summary()["manifest"] = (fs::path(dir_name) / "predictions.toml").string();  // relative: run.json must not depend on --out
    ctx.summary()["models"] = c.names;
    ctx.publish("predictions", std::move(out));
  }
};

}  // namespace

void register_predictions_io(PluginRegistrar& r) {
  r.add_node<PredictionsLoad>();
  r.add_node<PredictionsSave>();
}

}  // namespace caulk::averagers
