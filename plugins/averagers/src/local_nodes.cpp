// average.local: localized model averaging, weights that are functions of the covariates, fitted
// on one split and applied to every split; average.apply: a saved weight function on new data.
#include <fmt/format.h>

#include "averagers/algorithms/local_average.hpp"
#include "averagers/src/common.hpp"
#include "averagers/src/nodes.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/units.hpp"

namespace fs = std::filesystem;

namespace caulk::averagers {

namespace {

void declare_covariate_params(NodeSpec& s) {
  s.param(
      ParamSpec::choice("covariates", "auto", {"auto", "covariates", "inputs"},
                        "where z comes from: the dataset's covariates, its model inputs, or auto (covariates when given, else inputs)"));
  s.param(ParamSpec::list("columns", "the columns of z to use, e.g. [0, 3] (default: all)"));
}

std::vector<double> real_list(const Params& p, const std::string& name) {
  std::vector<double> out;
  for (const Value& v : p.get(name).as_array()) {
    if (!v.is_number() || !(v.as_number() >= 0)) throw Error(fmt::format("'{}' must list non-negative numbers", name));
    out.push_back(v.as_number());
  }
  if (out.empty()) throw Error(fmt::format("'{}' is empty", name));
  return out;
}

// Weights on every split the candidates share and the dataset has covariates for (others are
// skipped with a note); writes weights.SPLIT.npy beside the function file.
std::map<std::string, Matrix> weights_on_splits(NodeContext& ctx, const Candidates& c, const Dataset& data, const avg::WeightFunction& f,
                                                const std::string& source, const std::vector<int>& columns, const fs::path& dir) {
  std::map<std::string, Matrix> out;
  for (const auto& split : c.common_splits()) {
    const DatasetSplit* d = data.find_split(split);
    if (!d || (!d->covariates && !d->inputs)) {
      ctx.log(fmt::format("split '{}' is skipped: the dataset has no covariates for it", split));
      continue;
    }
    const Matrix z = covariates_of(data, split, source, columns);
    if (z.rows() != c.on(0, split).rows())
      throw Error(fmt::format("split '{}': the covariates have {} rows but the predictions of model '{}' have {}", split, z.rows(),
                              c.names[0], c.on(0, split).rows()));
    out[split] = f.weights(z);
    io::write_npy(dir / fmt::format("weights.{}.npy", split), out[split]);
  }
  if (out.empty()) throw Error("no split has both the candidates' predictions and covariates");
  return out;
}

// average.local's fitting options from its parameters (the node and the fold unit share them).
avg::LocalOptions local_options(const Params& p, TaskKind kind) {
  avg::LocalOptions o;
  o.function = avg::parse_weight_function(p.string("weight_function"));
  o.basis = avg::parse_basis(p.string("basis"));
  o.knots = static_cast<int>(p.integer("knots"));
  o.features = static_cast<int>(p.integer("features"));
  o.fourier_bandwidth = p.real("fourier_bandwidth");
  o.hidden = static_cast<int>(p.integer("hidden"));
  o.bandwidth = p.real("bandwidth");
  if (p.has("bandwidth_grid")) o.bandwidth_grid = real_list(p, "bandwidth_grid");
  o.penalty = p.has("penalty") ? p.real("penalty") : -1;
  if (p.has("penalty_grid")) o.penalty_grid = real_list(p, "penalty_grid");
  o.folds = static_cast<int>(p.integer("folds"));
  o.intercept_penalty = p.real("intercept_penalty");
  o.max_iterations = static_cast<int>(p.integer("max_iterations"));
  o.tolerance = p.real("tolerance");
  o.seed = static_cast<std::uint64_t>(p.integer("seed"));
  o.loss = loss_from(p, kind);
  return o;
}

// The stack travels as exact matrices (its row-major blocks as column-major copies).
Json stack_to_json(const avg::Stack& s) {
  return Json{{"kind", task_kind_name(s.kind)},
              {"K", s.K},
              {"C", s.C},
              {"models", s.models},
              {"F", matrix_to_json(Matrix(s.F))},
              {"Y", matrix_to_json(Matrix(s.Y))},
              {"classes", s.classes},
              {"scale", s.scale}};
}

avg::Stack stack_from_json(const Json& j) {
  avg::Stack s;
  s.kind = j.at("kind").get<std::string>() == task_kind_name(TaskKind::Classification) ? TaskKind::Classification : TaskKind::Regression;
  s.K = j.at("K").get<int>();
  s.C = j.at("C").get<int>();
  s.models = j.at("models").get<std::vector<std::string>>();
  s.F = matrix_from_json(j.at("F"));
  s.Y = matrix_from_json(j.at("Y"));
  s.classes = j.at("classes").get<std::vector<int>>();
  s.scale = j.at("scale").get<double>();
  return s;
}

// One fold of average.local's cross-validation, on any rank: the stack and covariates of the
// fitting split travel in the payload (they are in memory on rank 0, not in files).
Json cv_fold_unit(UnitContext& ctx, const Json& d) {
  const Params& p = ctx.params();
  const avg::Stack s = stack_from_json(d.at("stack"));
  const Matrix z = matrix_from_json(d.at("covariates"));
  avg::LocalOptions o = local_options(p, s.kind);
  o.loss = o.loss.for_scale(s.scale);  // a stack rescaled on rank 0 (check_magnitudes)
  return Json{{"totals", avg::cross_validation_fold(s, z, o, d.at("fold").get<std::size_t>())}};
}

class AverageLocal : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("average.local",
               "Localized model averaging: weights w(z) on the simplex that depend on the covariates, fitted to minimise the "
               "combination's loss plus a ridge penalty chosen by cross-validation");
    s.inputs_many("predictions", "Predictions", "the K candidate models (every model of every input)");
    s.input("data", "Dataset", "labels of the fitting split, and covariates (or model inputs) of every split to combine");
    s.output("predictions", "Predictions", "one model named after this node, on every split with predictions and covariates");
    s.output("weights", "Weights", "w(z) at every row of those splits, and the fitted function's file (weight_function.json)");
    declare_fit_split(s);
    declare_loss_params(s);
    declare_covariate_params(s);
    s.param(ParamSpec::choice("weight_function", "softmax_linear", {"softmax_linear", "mlp", "kernel"},
                              "softmax of a linear map of a basis of z; a one-hidden-layer MLP; or kernel-local simplex weights"));
    s.param(ParamSpec::choice("basis", "raw", {"raw", "spline", "fourier"},
                              "softmax_linear: standardised z, additive cubic B-splines, or random Fourier features"));
    s.param(ParamSpec::integer("knots", 4, "spline: interior knots per covariate").range(0, 1000));
    s.param(ParamSpec::integer("features", 32, "fourier: number of random features").range(1, 100000));
    s.param(ParamSpec::real("fourier_bandwidth", 1.0, "fourier: kernel bandwidth on the standardised scale").range(1e-9, 1e9));
    s.param(ParamSpec::integer("hidden", 8, "mlp: hidden width").range(1, 100000));
    s.param(ParamSpec::real("bandwidth", 0.0, "kernel: Gaussian bandwidth on the standardised scale (0: chosen by cross-validation)")
                .range(0, 1e9));
    s.param(ParamSpec::list("bandwidth_grid", "kernel: bandwidths tried by cross-validation (default [0.05, 0.1, 0.2, 0.4, 0.8, 1.6])"));
    s.param(ParamSpec::real("penalty", 0.0, "ridge strength on the weight function's parameters (default: chosen by cross-validation)")
                .range(0, 1e12)
                .optional());
    s.param(ParamSpec::list("penalty_grid", "penalties tried by cross-validation (default [1, 0.1, ..., 1e-6])"));
    s.param(ParamSpec::integer("folds", 5, "folds of the cross-validation on the fitting split").range(2, 1000));
    s.param(ParamSpec::real("intercept_penalty", 1e-6, "ridge strength on the intercepts (keeps them finite)").range(0, 1e12));
    s.param(ParamSpec::integer("max_iterations", 1000, "L-BFGS iterations per fit (per smoothing stage)").range(1, 1000000));
    s.param(ParamSpec::real("tolerance", 1e-8, "L-BFGS: stop when ||gradient|| <= tolerance max(1, ||theta||)").range(0, 1));
    s.param(ParamSpec::integer("seed", 0, "seed of the folds, the Fourier features and the MLP's initialisation").at_least(0));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const Candidates c = gather_candidates(ctx.inputs<Predictions>("predictions"), data.get());
    avg::LocalOptions o = local_options(p, c.kind);
    const avg::Loss loss = o.loss;

    const std::string fit_split = p.string("fit_split"), source = p.string("covariates");
    const std::vector<int> columns = column_list(p, "columns");
    avg::Stack s = stack_on(c, *data, fit_split);
    // Kernel weights are simplex fits of a loss per point, whatever the values' unit; the other
    // weight functions' penalty does not scale with the loss.
    check_magnitudes(
        ctx, c, *data, fit_split, s, o.function == avg::WeightFunctionKind::Kernel,
        fmt::format("average.local's fit of the {} weight function depends on that scale (its ridge penalty does not scale with the "
                    "loss)",
                    p.string("weight_function")));
    o.loss = loss.for_scale(s.scale);
    const Matrix z = covariates_of(*data, fit_split, source, columns);
    // Under mpirun each fold is a unit; in one process the folds run on the pool without copying
    // the stack into descriptions. Both give the same numbers (cross_validation_fold).
    avg::FoldRunner runner;
    if (ctx.distributed())
      runner = [&](std::size_t folds) {
        const Json common{{"stack", stack_to_json(s)}, {"covariates", matrix_to_json(z)}};
        std::vector<Json> descriptions;
        std::vector<std::string> names;
        for (std::size_t f = 0; f < folds; ++f) {
          Json d = common;
          d["fold"] = f;
          descriptions.push_back(std::move(d));
          names.push_back(std::to_string(f + 1));
        }
        std::vector<std::vector<double>> totals;
        for (const Json& r : ctx.run_units("fold", names, descriptions)) totals.push_back(r.at("totals").get<std::vector<double>>());
        return totals;
      };
    const avg::LocalFit fit = avg::fit_local_average(s, z, o, runner);

    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    const fs::path function_file = dir / "weight_function.json";
    fit.function.save(function_file, Json{{"covariates", Json{{"source", source}, {"columns", columns}}}});
    auto weights = weights_on_splits(ctx, c, *data, fit.function, source, columns, dir);

    Json& sum = ctx.summary();
    sum["weight_function"] = p.string("weight_function");
    if (o.function == avg::WeightFunctionKind::SoftmaxLinear) sum["basis"] = p.string("basis");
    sum["loss"] = avg::loss_name(o.loss.kind);
    sum[o.function == avg::WeightFunctionKind::Kernel ? "bandwidth" : "penalty"] = fit.chosen;
    Json cv = Json::array();
    for (const auto& point : fit.cv) cv.push_back(Json{{"value", point.value}, {"risk", loss.in_given_units(point.risk, s.scale)}});
    if (!fit.cv.empty()) sum["cross_validation"] = cv;
    sum["iterations"] = fit.iterations;
    const double fit_risk = loss.in_given_units(fit.fit_risk, s.scale);
    sum["fit_risk"] = fit_risk;
    sum["function_file"] = (fs::path(ctx.id()) / "weight_function.json").string();
    ctx.print(fmt::format("{}: {} weights fitted on split '{}' ({} rows, {} models), {} = {:.4g}, fit risk {:.6g}\n", ctx.id(),
                          p.string("weight_function"), fit_split, s.rows(), s.K,
                          o.function == avg::WeightFunctionKind::Kernel ? "bandwidth" : "penalty", fit.chosen, fit_risk));
    ctx.publish("predictions", combined_predictions(ctx.id(), c, weights));
    ctx.publish("weights", weights_artifact(c, std::move(weights), function_file));
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return cv_fold_unit(ctx, payload); }
};

class AverageApply : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("average.apply", "Combine predictions for new data with a weight function that average.local saved");
    s.inputs_many("predictions", "Predictions", "the same candidate models (by name) the function was fitted on");
    s.input("data", "Dataset", "covariates (or model inputs) of the splits to combine");
    s.input_optional("weights", "Weights", "average.local's weights: their function_file is used (or give 'function')");
    s.output("predictions", "Predictions", "one model named after this node, on every split with predictions and covariates");
    s.output("weights", "Weights", "w(z) at every row of those splits");
    s.param(ParamSpec::path("function", "a weight_function.json written by average.local").optional());
    return s;
  }

  void run(NodeContext& ctx) override {
    fs::path file;
    if (ctx.params().has("function"))
      file = ctx.params().path("function");
    else if (ctx.has_input("weights"))
      file = ctx.input<Weights>("weights")->function_file;
    if (file.empty()) throw Error("average.apply needs a weight function: connect average.local's weights or set 'function'");
    Json extra;
    const avg::WeightFunction f = avg::WeightFunction::load(file, &extra);
    const auto data = ctx.input<Dataset>("data");
    const Candidates given = gather_candidates(ctx.inputs<Predictions>("predictions"), data.get());
    if (given.kind != f.task)
      throw Error(fmt::format("{}: the function combines {} predictions but these are {}", file.string(), task_kind_name(f.task),
                              task_kind_name(given.kind)));
    // The candidates in the function's order.
    Candidates c;
    c.kind = given.kind;
    for (const auto& name : f.models) {
      auto it = std::find(given.names.begin(), given.names.end(), name);
      if (it == given.names.end())
        throw Error(fmt::format("{}: the function weighs model '{}', which is not among the predictions", file.string(), name));
      const auto k = static_cast<std::size_t>(it - given.names.begin());
      c.names.push_back(name);
      c.producers.push_back(given.producers[k]);
      c.models.push_back(given.models[k]);
      c.files.push_back(given.files[k]);
    }
    for (const auto& name : given.names)
      if (std::find(f.models.begin(), f.models.end(), name) == f.models.end())
        throw Error(fmt::format("model '{}' is not one of the models the function at {} was fitted on", name, file.string()));
    std::string source = "auto";
    std::vector<int> columns;
    if (extra.contains("covariates")) {
      source = extra["covariates"].value("source", "auto");
      columns = extra["covariates"].value("columns", std::vector<int>{});
    }
    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    auto weights = weights_on_splits(ctx, c, *data, f, source, columns, dir);
    Json splits = Json::array();
    for (const auto& [split, W] : weights) splits.push_back(split);
    ctx.summary()["splits"] = splits;
    ctx.summary()["weight_function"] = avg::weight_function_name(f.kind);
    ctx.publish("predictions", combined_predictions(ctx.id(), c, weights));
    ctx.publish("weights", weights_artifact(c, std::move(weights), file));
  }
};

}  // namespace

void register_local(PluginRegistrar& r) {
  r.add_node<AverageLocal>();
  r.add_node<AverageApply>();
}

}  // namespace caulk::averagers
