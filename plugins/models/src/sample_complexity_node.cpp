// eval.sample_complexity: how many target samples each model of a hub needs to reach a risk
// (docs/models.md). For every model, every training-set size n and every repetition, a
// seeded subsample of n training samples tunes the model (the tune.peft parameters) and its risk
// on the test split is measured; a learning curve risk(n) = a n^-b + c is fitted per model and
// inverted at the target risk. Each (model, n, repetition) is one unit of work (caulk/units.hpp),
// which any rank of an mpirun can run.
//
// Seeding (identical output with any --jobs and any number of ranks; the node derives every
// subsample and seed, the units only use them):
//   - the training subsamples depend on (seed, repetition) only and are nested: repetition r draws
//     one permutation of the training split and the subsample of size n is its first n samples
//     (without replacement). Every model sees the same subsamples, so models are compared on the
//     same data (a paired design) and each repetition's curve is smooth in n;
//   - the tuning (new head, adapter or LoRA initialisation, minibatch order) is seeded from
//     (seed, the model's index in the hub, n, repetition).
// Curves: the main fit is on every point (n, risk) of the model; with the same number of
// repetitions at every n it has the same a, b, c as the fit to the per-n mean risks. Each
// repetition's points are also fitted alone; n_needed_low and n_needed_high are the smallest and
// largest n needed over those per-repetition fits (the range across seeds). The curves are
// non-linear in the data, so this range need not contain the pooled fit's n_needed, least of all
// when the target lies beyond the largest measured n (run.json flags that as "extrapolated").
// Infinity (a target at or under a curve's floor c: unreachable) is "inf" in the tables and null
// in run.json.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <tuple>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/figures/charts.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/metrics/prediction_metrics.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/model_nodes/model_inputs.hpp"
#include "caulk/model_nodes/tuning_params.hpp"
#include "caulk/models/hub.hpp"
#include "caulk/models/inputs.hpp"
#include "caulk/models/training.hpp"
#include "caulk/seeding/seeding.hpp"
#include "caulk/units.hpp"
#include "models/algorithms/learning_curve.hpp"
#include "models/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

const std::vector<std::int64_t> kDefaultSizes = {10, 20, 50, 100, 200, 500};

constexpr std::uint64_t kSubsampleTag = 1, kTuningTag = 2;

std::string check_sizes(const Value& v) {
  if (!v.is_array()) return "expected an array of sample sizes";
  std::set<std::int64_t> seen;
  for (const Value& e : v.as_array()) {
    if (!e.is_int()) return fmt::format("sample sizes must be integers, found {}", e.to_toml());
    if (e.as_int() < 1) return fmt::format("sample sizes must be positive, found {}", e.as_int());
    if (!seen.insert(e.as_int()).second) return fmt::format("sample size {} is listed twice", e.as_int());
  }
  if (seen.size() < 3)
    return fmt::format("a learning curve a n^-b + c has 3 parameters: give at least 3 sample sizes, found {}", seen.size());
  return "";
}

std::vector<std::int64_t> read_sizes(const Params& p) {
  std::vector<std::int64_t> sizes;
  if (!p.has("sizes")) return kDefaultSizes;
  for (const Value& v : p.get("sizes").as_array()) sizes.push_back(v.as_int());
  std::sort(sizes.begin(), sizes.end());
  return sizes;
}

enum class Risk { Error, LogLoss, Mse };

Risk parse_risk(const std::string& name, TaskKind kind) {
  if (name == "mse") {
    if (kind != TaskKind::Regression)
      throw Error("risk = \"mse\" is for regression, but the dataset is a classification task (use \"error\" or \"log_loss\")");
    return Risk::Mse;
  }
  if (kind != TaskKind::Classification)
    throw Error(fmt::format("risk = \"{}\" is for classification, but the dataset is a regression task (use \"mse\")", name));
  return name == "log_loss" ? Risk::LogLoss : Risk::Error;
}

// The risk of a tuned model on the test samples: the error rate (argmax, lowest class on ties), the
// mean cross-entropy (exact, from the log-softmax: the model's own loss), or the squared error
// averaged over samples and target columns (libs/metrics, as eval.regression).
double test_risk(const mlp::Model<float>& m, const mlp::Samples& test, Risk risk) {
  if (risk == Risk::LogLoss) return mlp::mean_loss(m, test);
  const mlp::RunOutputs r = mlp::run_batches(m, test.X, false, true);
  if (risk == Risk::Error) return metrics::error_rate(metrics::predicted_classes(r.outputs.cast<double>()), test.y.classes);
  // A diverged model has no risk: NaN, which the caller reports.
  if (!r.outputs.allFinite()) return std::numeric_limits<double>::quiet_NaN();
  // values are T x N, outputs N x T
  return metrics::mean_squared_error(r.outputs.cast<double>(), test.y.values.transpose().cast<double>());
}

// One tuning run of the curve from the node's parameters and data and its payload (the
// checkpoint's path, the training rows of the subsample and the tuning seed, both derived by the
// node): any rank can run it. Only the test risk comes back.
// The risk of a model of any family tuned through the model interface, as test_risk's.
double test_risk(const Model& m, const TrainingSamples& test, Risk risk) {
  if (risk == Risk::LogLoss) return models::mean_loss(m, test);
  RowMatrixF outputs;
  const InputBatch x = test.all();
  for (std::int64_t first = 0, n = test.size(); first < n; first += 512) {
    const std::int64_t count = std::min<std::int64_t>(512, n - first);
    const Outputs out = m.run(x.slice(first, count), false, true);
    if (outputs.size() == 0) outputs.resize(n, out.outputs.cols());
    outputs.middleRows(first, count) = out.outputs;
  }
  if (risk == Risk::Error) return metrics::error_rate(metrics::predicted_classes(outputs.cast<double>()), test.classes);
  if (!outputs.allFinite()) return std::numeric_limits<double>::quiet_NaN();
  return metrics::mean_squared_error(outputs.cast<double>(), test.values.cast<double>());
}

// One tuning run of a TorchScript model (a Checkpoint entry with a module) through the model
// interface, as tuning_run_unit's for the MLP: the same subsample, seed and options.
Json any_model_run_unit(UnitContext& ctx, const Json& desc) {
  const Params& p = ctx.params();
  const auto data = ctx.dataset("data");
  const Risk risk = parse_risk(p.string("risk"), data->kind);
  const auto n = desc.at("n").get<std::int64_t>();
  const auto r = desc.at("repetition").get<std::size_t>();
  const std::uint64_t s = desc.at("seed").get<std::uint64_t>();
  const auto index = desc.at("rows").get<std::vector<std::size_t>>();
  std::unique_ptr<Model> model = open_model(source_from_json(desc.at("source")));
  const TrainingSamples train = training_samples(*data, p.string("train_split"), *model).subset(index);
  const TrainingSamples test = training_samples(*data, p.string("test_split"), *model);
  prepare_model(*model, p, *data, s, train);
  mlp::TrainOptions o = train_options(p, s);
  o.patience = 0;  // no validation split: train for the given epochs (the parameter is fixed at 0)
  models::train(*model, train, nullptr, o);
  const double value = test_risk(*model, test, risk);
  if (!std::isfinite(value))
    throw Error(fmt::format("the test risk is not finite after tuning {} on n = {} (repetition {}): lower the learning rate",
                            model->describe(), n, r));
  return Json{{"risk", value}};
}

Json tuning_run_unit(UnitContext& ctx, const Json& desc) {
  if (desc.contains("source")) return any_model_run_unit(ctx, desc);
  const Params& p = ctx.params();
  const auto data = ctx.dataset("data");
  const Risk risk = parse_risk(p.string("risk"), data->kind);
  const std::string model = desc.at("model").get<std::string>(), train_split = p.string("train_split");
  const auto n = desc.at("n").get<std::int64_t>();
  const auto r = desc.at("repetition").get<std::size_t>();
  const std::uint64_t s = desc.at("seed").get<std::uint64_t>();
  const auto index = desc.at("rows").get<std::vector<std::size_t>>();

  const mlp::Samples train = split_samples(*data, train_split);
  const mlp::Samples test = split_samples(*data, p.string("test_split"));
  const mlp::Model<float> pretrained = mlp::load_model(desc.at("checkpoint").get<std::string>());
  if (pretrained.input_dim() != train.X.rows())
    throw Error(fmt::format("model '{}' takes {} inputs but split '{}' has {} columns", model, pretrained.input_dim(), train_split,
                            train.X.rows()));
  const mlp::Samples sub = train.subset(index);
  check_mlp_params(p, model);
  mlp::TuningSetup setup = mlp::prepare_tuning(pretrained, peft_options(p, *data, s));
  mlp::TrainOptions o = train_options(p, s);
  o.patience = 0;  // no validation split: train for the given epochs (the parameter is fixed at 0)
  mlp::train(setup.model, setup.trainable, sub, nullptr, o);  // lbfgs: fit_head_lbfgs
  const double value = test_risk(setup.model, test, risk);
  if (!std::isfinite(value))
    throw Error(fmt::format("the test risk is not finite after tuning on n = {} (repetition {}): lower the learning rate", n, r));
  return Json{{"risk", value}};
}

Json finite_or_null(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

class SampleComplexity : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("eval.sample_complexity",
               "Sample complexity: tune every model on seeded subsamples of n training samples for a grid of n, fit the "
               "learning curve risk(n) = a n^-b + c per model and report the n needed to reach a target risk");
    s.input("data", "Dataset", "the task, with model inputs for the training and test splits");
    declare_model_hub(s);
    s.output("curves", "Table",
             "per model: a, b, c, n_needed, n_needed_low, n_needed_high (range over the repetitions' own fits), "
             "risk_at_max_n (mean over repetitions); inf = unreachable");
    s.output("points", "Table", "every measured point, for plotting: model, n, seed (the repetition), risk");
    s.output("figure", "Figure", "the measured points and fitted learning curves, with the target risk (drawn in report.html)");
    declare_tuning_params(s, "linear_probe");
    // There is no validation split here: every run trains for `epochs`, so early stopping is off.
    for (ParamSpec& q : s.params)
      if (q.name == "patience") {
        q.default_value = Value(0);
        q.range(0, 0);
        q.doc = "early stopping is off here (no validation split: every run trains for `epochs`); only 0";
      }
    ParamSpec sizes = ParamSpec::list("sizes", "the training-set sizes n of the curve (at least 3 different positive integers)");
    sizes.default_value = Value(Value::Array(kDefaultSizes.begin(), kDefaultSizes.end()));
    sizes.validate(check_sizes);
    s.param(std::move(sizes));
    s.param(ParamSpec::integer("seeds", 3, "repetitions per n, each with its own seeded subsample and tuning seed").range(1, 1000));
    s.param(ParamSpec::integer("seed", 0, "seed of the subsamples and of the tuning").range(0, 9007199254740991.0));
    s.param(ParamSpec::string("train_split", "train", "the split the subsamples are drawn from"));
    s.param(ParamSpec::string("test_split", "test", "the split the risk is measured on"));
    s.param(ParamSpec::choice("risk", "error", {"error", "log_loss", "mse"},
                              "error (1 - accuracy) or log_loss for classification, mse for regression"));
    s.param(ParamSpec::real("target_risk", 0,
                            "the risk to reach (default: halfway between the best model's mean risk at the largest n and "
                            "the worst model's mean risk at the smallest n)")
                .at_least(0)
                .optional());
    s.check = [](const Params& p) {
      std::vector<std::pair<std::string, std::string>> problems;
      if (p.string("optimizer") == "lbfgs" && p.string("mode") != "linear_probe")
        problems.emplace_back("optimizer", "lbfgs fits a convex head only: use it with mode = \"linear_probe\" (or use adam or sgd)");
      return problems;
    };
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    parse_risk(p.string("risk"), data->kind);  // checked before any unit starts, as the splits below
    const std::vector<CheckpointRef> models = hub_checkpoints(ctx);
    if (models.empty()) throw Error("the hub has no models");
    const std::vector<std::int64_t> sizes = read_sizes(p);
    const std::size_t reps = static_cast<std::size_t>(p.integer("seeds"));
    const std::uint64_t seed = static_cast<std::uint64_t>(p.integer("seed"));
    const std::string train_split = p.string("train_split"), test_split = p.string("test_split");

    // The splits are checked before any unit starts: as columns when every model is an MLP (which
    // reads them so), else by the shape of their inputs (images, token ids).
    const bool all_mlp = std::all_of(models.begin(), models.end(), [](const CheckpointRef& m) { return m.module.empty(); });
    std::int64_t n_train = 0, n_test = 0;
    std::vector<std::int64_t> train_shape, test_shape;
    for (auto [split, rows, shape] : {std::tuple{&train_split, &n_train, &train_shape}, std::tuple{&test_split, &n_test, &test_shape}}) {
      if (all_mlp) {
        const mlp::Samples samples = split_samples(*data, *split);
        *rows = static_cast<std::int64_t>(samples.size());
        *shape = {samples.X.rows()};
      } else {
        const ModelInputs inputs = ModelInputs::of_split(*data, *split);
        *rows = inputs.rows();
        shape->assign(inputs.shape().begin() + 1, inputs.shape().end());
      }
    }
    if (sizes.back() > n_train)
      throw Error(fmt::format("sample size {} is larger than the training split '{}' ({} samples): the sizes must be at most {}",
                              sizes.back(), train_split, n_train, n_train));
    if (n_test == 0) throw Error(fmt::format("the test split '{}' has no samples", test_split));
    if (train_shape != test_shape) {
      if (all_mlp)
        throw Error(fmt::format("split '{}' has {} input columns but split '{}' has {}", train_split, train_shape.front(), test_split,
                                test_shape.front()));
      throw Error(fmt::format("split '{}' has inputs of sample shape [{}] but split '{}' [{}]", train_split, fmt::join(train_shape, ", "),
                              test_split, fmt::join(test_shape, ", ")));
    }

    // The nested subsamples, one permutation per repetition, shared by every model.
    std::vector<std::vector<std::size_t>> permutation(reps);
    for (std::size_t r = 0; r < reps; ++r)
      permutation[r] = seeding::seeded_order(static_cast<std::size_t>(n_train), seeding::derive_seed(seed, kSubsampleTag, r));
    auto subsample = [&](std::size_t r, std::int64_t n) { return seeding::first_of(permutation[r], static_cast<std::size_t>(n)); };

    // risk[model][size][repetition]: one unit per model, size and repetition, in that order.
    std::vector<std::vector<std::vector<double>>> risks(models.size(),
                                                        std::vector<std::vector<double>>(sizes.size(), std::vector<double>(reps)));
    std::vector<std::string> names;
    std::vector<Json> descriptions;
    for (std::size_t i = 0; i < models.size(); ++i)
      for (std::size_t k = 0; k < sizes.size(); ++k)
        for (std::size_t r = 0; r < reps; ++r) {
          Json d = Json::object();
          d["model"] = models[i].model;
          d["checkpoint"] = models[i].path.string();
          if (!models[i].module.empty()) d["source"] = source_to_json(source_of(models[i]));
          d["n"] = sizes[k];
          d["repetition"] = r;
          d["seed"] = seeding::derive_seed(seed, kTuningTag, seeding::name_tag(models[i].model), static_cast<std::uint64_t>(sizes[k]), r);
          d["rows"] = subsample(r, sizes[k]);
          descriptions.push_back(std::move(d));
          names.push_back(fmt::format("{}, n = {}, repetition {}", models[i].model, sizes[k], r));
        }
    const std::vector<Json> results = ctx.run_units("tuning", names, descriptions);
    for (std::size_t i = 0, u = 0; i < models.size(); ++i)
      for (std::size_t k = 0; k < sizes.size(); ++k)
        for (std::size_t r = 0; r < reps; ++r) risks[i][k][r] = results[u++].at("risk").get<double>();

    // Mean risk per model and n.
    std::vector<std::vector<double>> mean(models.size(), std::vector<double>(sizes.size()));
    for (std::size_t i = 0; i < models.size(); ++i)
      for (std::size_t k = 0; k < sizes.size(); ++k) {
        double sum = 0;
        for (double v : risks[i][k]) sum += v;
        mean[i][k] = sum / double(reps);
      }

    double target = 0;
    if (p.has("target_risk")) {
      target = p.real("target_risk");
    } else {
      double best_final = std::numeric_limits<double>::infinity(), worst_first = -best_final;
      for (const auto& m : mean) {
        best_final = std::min(best_final, m.back());
        worst_first = std::max(worst_first, m.front());
      }
      target = (best_final + worst_first) / 2;
    }

    const std::string risk_name = p.string("risk");
    auto curves = std::make_shared<Table>();
    curves->title = fmt::format("Sample complexity on split '{}': {} = a n^-b + c, n needed to reach {} = {:.4g}{}", test_split, risk_name,
                                risk_name, target, p.has("target_risk") ? "" : " (default)");
    curves->columns = {"model", "a", "b", "c", "n_needed", "n_needed_low", "n_needed_high", "risk_at_max_n"};
    auto points = std::make_shared<Table>();
    points->title = fmt::format("Learning-curve points: {} on split '{}'", risk_name, test_split);
    points->columns = {"model", "n", "seed", "risk"};
    Json& summary = ctx.summary();
    std::vector<figures::SeriesPoint> measured;
    std::vector<figures::PowerLawCurve> fits;
    for (std::size_t i = 0; i < models.size(); ++i) {
      std::vector<double> n_all, risk_all;
      for (std::size_t k = 0; k < sizes.size(); ++k)
        for (std::size_t r = 0; r < reps; ++r) {
          n_all.push_back(double(sizes[k]));
          risk_all.push_back(risks[i][k][r]);
          points->rows.push_back({models[i].model, static_cast<long long>(sizes[k]), static_cast<long long>(r), risks[i][k][r]});
          measured.push_back({models[i].model, double(sizes[k]), risks[i][k][r]});
        }
      const curve::PowerLawFit fit = curve::fit_power_law(n_all, risk_all);
      fits.push_back({models[i].model, fit.a, fit.b, fit.c});
      const double needed = curve::samples_to_reach(fit, target);
      double low = std::numeric_limits<double>::infinity(), high = 0;
      for (std::size_t r = 0; r < reps; ++r) {
        std::vector<double> n_rep, risk_rep;
        for (std::size_t k = 0; k < sizes.size(); ++k) {
          n_rep.push_back(double(sizes[k]));
          risk_rep.push_back(risks[i][k][r]);
        }
        const double v = curve::samples_to_reach(curve::fit_power_law(n_rep, risk_rep), target);
        low = std::min(low, v);
        high = std::max(high, v);
      }
      curves->rows.push_back({models[i].model, fit.a, fit.b, fit.c, needed, low, high, mean[i].back()});
      summary[models[i].model] = Json{{"a", fit.a},
                                      {"b", fit.b},
                                      {"c", fit.c},
                                      {"n_needed", finite_or_null(needed)},
                                      {"n_needed_interval", Json::array({finite_or_null(low), finite_or_null(high)})},
                                      {"extrapolated", !(needed <= double(sizes.back()))},
                                      {"risk_at_max_n", mean[i].back()},
                                      {"rss", fit.rss},
                                      {"target_risk", target}};
    }

    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    io::write_file_atomic(dir / "curves.csv", curves->to_csv());
    io::write_file_atomic(dir / "points.csv", points->to_csv());
    ctx.print(curves->to_text());
    ctx.publish("curves", std::move(curves));
    ctx.publish("points", std::move(points));
    ctx.publish(
        "figure",
        figures::make_figure(
            figures::learning_curve_chart(
                {fmt::format("Learning curves ({}): test {} against training samples", ctx.id(), risk_name),
                 "points: each repetition; lines: fitted risk(n) = a n^-b + c; dotted rule: the target risk",
                 fmt::format("Measured test {} of each model after tuning on n samples, with the fitted power law of each", risk_name)},
                fmt::format("test {} on split '{}' (lower is better)", risk_name, test_split), measured, fits, target),
            fmt::format("How the test {} of each model falls with the number of training samples.", risk_name)));
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) { return tuning_run_unit(ctx, payload); }
};

}  // namespace

void register_sample_complexity(PluginRegistrar& r) { r.add_node<SampleComplexity>(); }

}  // namespace caulk::models
