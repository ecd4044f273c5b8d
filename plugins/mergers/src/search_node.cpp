// search.merge_coefficients: chooses the per-model coefficients (and lambda) of task arithmetic,
// TIES or Fisher merging on held-out data, scoring every candidate merge with the model it makes (an
// MLP or a TorchScript module with the merged weights); reports every candidate and publishes the best
// merged checkpoint.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "caulk/models/inputs.hpp"
#include "caulk/data_check.hpp"
#include "caulk/units.hpp"

#include "caulk/figures/charts.hpp"
#include "caulk/metrics/prediction_metrics.hpp"
#include "mergers/algorithms/coefficient_search.hpp"
#include "mergers/algorithms/merge_methods.hpp"
#include "mergers/algorithms/merge_output.hpp"
#include "mergers/src/merge_node_support.hpp"
#include "mergers/src/native_models.hpp"
#include "mergers/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::mergers {

namespace {

struct Candidate {
  std::vector<double> coefficients;  // per model, on the simplex
  double lambda = 1;
  double score = 0;
};

std::unique_ptr<merge::MergeMethod> make_method(const std::string& method, const Candidate& c, const Params& p) {
  std::vector<merge::TensorParameter> w;
  for (double x : c.coefficients) w.emplace_back(x);
  if (method == "task_arithmetic")
    return std::make_unique<merge::TaskArithmeticMerge>(std::move(w), merge::TensorParameter(c.lambda), false);
  if (method == "ties")
    return std::make_unique<merge::TiesMerge>(std::move(w), merge::TensorParameter(p.real("density")), merge::TensorParameter(c.lambda));
  return fisher_method(p, std::move(w));
}

// The score of one candidate on the held-out split, on any rank: the candidate merge is written to
// a scratch file, run (an MLP with the native runtime, a TorchScript module with the candidate's
// weights through the model interface), scored and removed.
double score(const Matrix& out, const DatasetSplit& truth, const std::string& metric) {
  if (metric == "accuracy") return metrics::accuracy(out, truth.classes);
  if (metric == "log_loss") return metrics::log_loss(out, truth.classes);
  return (out - truth.targets).squaredNorm() / static_cast<double>(out.size());
}

Json score_candidate_unit(UnitContext& ctx, const Json& d) {
  const Params& p = ctx.params();
  const MergeJob job = merge_job_from_json(d.at("job"));
  const auto data = ctx.dataset("data");
  const std::string split = p.string("split"), label = "candidate " + d.at("candidate").get<std::string>();
  const Candidate c{d.at("coefficients").get<std::vector<double>>(), d.at("lambda").get<double>(), 0};
  const fs::path file = d.at("file").get<std::string>();
  merge::MergeOptions o;
  o.precision = p.string("precision") == "float64" ? merge::Precision::F64 : merge::Precision::F32;
  o.overwrite = true;
  o.allow_non_finite = p.flag("allow_non_finite");
  o.metadata = io::Checkpoint::open(job.models.front().checkpoint).metadata();  // the native format's structure keys
  auto m = make_method(p.string("method"), c, p);
  merge::run_merge(merge::MergeInputs::open(job.models, job.base, m->uses_fisher()), *m, file, o);
  Matrix out;
  if (job.module.empty()) {
    out = predict(load_native(file, label, "search.merge_coefficients"), split_inputs(*data, split), label, split);
  } else {  // the TorchScript module with the candidate's weights, through the model interface
    models::ModelSource source;
    source.name = label;
    source.torchscript = job.module;
    source.feature_method = job.feature_method;
    source.weights = file;
    out = predict_model(source, *data, split);
  }
  fs::remove(file);
  return Json{{"score", score(out, data->split(split), d.at("metric").get<std::string>())}};
}

// The chosen candidate's method, rebuilt wherever an output file of the final merge is written.
std::unique_ptr<merge::MergeMethod> build_chosen(const Params& p, const Json& extra, const std::vector<merge::MergeModel>&) {
  const Candidate c{extra.at("coefficients").get<std::vector<double>>(), extra.at("lambda").get<double>(), 0};
  return make_method(p.string("method"), c, p);
}

class SearchMergeCoefficients : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("search.merge_coefficients",
               "Choose merge coefficients on held-out data: each model's coefficient (a grid for two models, seeded Dirichlet draws for "
               "more) and lambda for task arithmetic, TIES or Fisher merging; MLP checkpoints, or TorchScript models of one module");
    declare_merge_node(s);
    s.input("data", "Dataset", "the held-out data (with model inputs) the candidates are scored on");
    s.output("table", "Table", "every candidate: its coefficients, lambda and score");
    s.output("figure", "Figure", "the held-out score of every candidate, the chosen one marked (drawn in report.html)");
    s.param(
        ParamSpec::choice("method", "task_arithmetic", {"task_arithmetic", "ties", "fisher"}, "the merge whose coefficients are chosen"));
    s.param(ParamSpec::string("split", "val", "the held-out split to score on"));
    s.param(ParamSpec::choice("metric", "auto", {"auto", "accuracy", "log_loss", "mse"},
                              "score (auto: accuracy for classification, mse for regression); ties keep the earlier candidate"));
    s.param(ParamSpec::integer("grid", 11, "two models: coefficients 0, 1/(grid-1), ..., 1 for the first").range(2, 10001));
    s.param(ParamSpec::integer("draws", 20, "three or more models: Dirichlet draws besides the uniform point").range(0, 100000));
    s.param(ParamSpec::integer("seed", 0, "seed of the Dirichlet draws").at_least(0));
    s.param(ParamSpec::list("lambdas", "task_arithmetic, ties: the lambda values tried with every coefficient vector (default [1.0])"));
    s.param(ParamSpec::real("density", 0.2, "ties: fraction of each task vector kept").range(0, 1));
    declare_fisher_params(s, "fisher: ");
    // The merge nodes' check (base), and the split scored on is one the data have (caulk/data_check.hpp).
    s.data_check = [merge_check = s.data_check](DataCheck& check) {
      if (merge_check) merge_check(check);
      check.expect_split("split", "data");
    };
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const std::string method = p.string("method");
    const MergeJob job = collect_models(ctx, method != "fisher");
    const auto data = ctx.input<Dataset>("data");
    const std::string split = p.string("split");
    std::string metric = p.string("metric");
    if (metric == "auto") metric = data->kind == TaskKind::Classification ? "accuracy" : "mse";
    if ((metric == "mse") != (data->kind == TaskKind::Regression))
      throw Error(fmt::format("metric '{}' does not fit a {} dataset", metric, task_kind_name(data->kind)));
    const bool higher_is_better = metric == "accuracy";
    if (job.module.empty()) {
      split_inputs(*data, split);  // the split has inputs: checked before any unit
      // Every input must be a native MLP: say so before any merging.
      for (const auto& m : job.models) load_native(m.checkpoint, m.name, "search.merge_coefficients");
      if (job.base) load_native(job.base->checkpoint, job.base->name, "search.merge_coefficients");
    } else {
      models::split_with_inputs(*data, split);
    }
    merge::MergeOptions options = read_merge_options(ctx);
    const fs::path output = output_path(ctx);
    merge::check_output_target(output, options.overwrite);

    std::vector<double> lambdas{1.0};
    if (p.has("lambdas") && method != "fisher") {
      lambdas.clear();
      for (const Value& v : p.get("lambdas").as_array()) lambdas.push_back(v.as_number());
      if (lambdas.empty()) throw Error("`lambdas` is empty");
    }
    std::vector<Candidate> candidates;
    for (const auto& c : merge::coefficient_candidates(job.models.size(), static_cast<int>(p.integer("grid")),
                                                       static_cast<int>(p.integer("draws")), static_cast<std::uint64_t>(p.integer("seed"))))
      for (double lambda : lambdas) candidates.push_back({c, lambda, 0});

    const fs::path scratch = ctx.out_dir() / ctx.id() / "candidates";
    fs::create_directories(scratch);
    std::vector<std::string> names;
    for (std::size_t i = 0; i < candidates.size(); ++i) names.push_back(std::to_string(i + 1));
    const Json common{{"job", merge_job_to_json(job)}, {"metric", metric}};
    std::vector<Json> descriptions;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      Json d = common;
      d["candidate"] = names[i];
      d["coefficients"] = candidates[i].coefficients;
      d["lambda"] = candidates[i].lambda;
      d["file"] = (scratch / fmt::format("candidate-{}.safetensors", i + 1)).string();
      descriptions.push_back(std::move(d));
    }
    const std::vector<Json> scores = ctx.run_units("candidate", names, descriptions);
    for (std::size_t i = 0; i < candidates.size(); ++i) candidates[i].score = scores[i].at("score").get<double>();
    std::error_code ec;
    fs::remove(scratch, ec);

    std::size_t best = 0;
    for (std::size_t i = 1; i < candidates.size(); ++i)
      if (higher_is_better ? candidates[i].score > candidates[best].score : candidates[i].score < candidates[best].score) best = i;

    auto table = std::make_shared<Table>();
    table->title = fmt::format("{} coefficients: {} on split '{}'", method, metric, split);
    table->columns.push_back("candidate");
    for (const auto& m : job.models) table->columns.push_back("w:" + m.name);
    if (method != "fisher") table->columns.push_back("lambda");
    table->columns.push_back(metric);
    table->columns.push_back("best");
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      std::vector<TableCell> row{static_cast<long long>(i + 1)};
      for (double c : candidates[i].coefficients) row.emplace_back(c);
      if (method != "fisher") row.emplace_back(candidates[i].lambda);
      row.emplace_back(candidates[i].score);
      row.emplace_back(std::string(i == best ? "*" : ""));
      table->rows.push_back(std::move(row));
    }
    ctx.print(table->to_text() + "\n");

    // Two models: the score against the first model's weight, a line per lambda; more: against the
    // candidate's number.
    const bool two = job.models.size() == 2;
    std::vector<figures::SeriesPoint> points, chosen_point;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      const std::string series = lambdas.size() > 1 ? fmt::format("lambda = {:g}", candidates[i].lambda) : "candidates";
      points.push_back({series, two ? candidates[i].coefficients[0] : double(i + 1), candidates[i].score});
      if (i == best) chosen_point.push_back(points.back());
    }
    std::stable_sort(points.begin(), points.end(), [](const figures::SeriesPoint& a, const figures::SeriesPoint& b) {
      return a.series < b.series || (a.series == b.series && a.x < b.x);
    });
    figures::LineChartOptions chart;
    chart.x_title =
        two ? "weight of " + job.models[0].name + " (fraction; the other model gets the rest)" : "candidate (number, in the order drawn)";
    chart.y_title = fmt::format("{} on the held-out split ({} is better)", metric, higher_is_better ? "higher" : "lower");
    chart.series_title = "lambda";
    chart.lines = two;
    chart.highlighted = chosen_point;
    chart.highlighted_label = "chosen";
    auto figure = figures::make_figure(
        figures::line_chart(
            {fmt::format("Coefficient search ({}): {} of each candidate", ctx.id(), metric),
             "diamond: the chosen coefficients; " + method + " merge", "Held-out score of every candidate set of merge coefficients"},
            chart, points),
        fmt::format("The {} of every candidate on split '{}'; the diamond marks the coefficients chosen.", metric, split));

    std::map<std::string, std::string> parameters{{"merge_search_metric", metric},
                                                  {"merge_search_score", fmt::format("{}", candidates[best].score)},
                                                  {"merge_lambda", fmt::format("{}", candidates[best].lambda)}};
    for (std::size_t i = 0; i < job.models.size(); ++i)
      parameters["merge_weight:" + job.models[i].name] = fmt::format("{}", candidates[best].coefficients[i]);
    Json& sum = ctx.summary();
    sum["candidates"] = candidates.size();
    sum["best"] = best + 1;
    sum["best_score"] = candidates[best].score;
    Json weights = Json::object();
    for (std::size_t i = 0; i < job.models.size(); ++i) weights[job.models[i].name] = candidates[best].coefficients[i];
    sum["best_weights"] = weights;
    if (method != "fisher") sum["best_lambda"] = candidates[best].lambda;
    const MethodRecipe chosen{&build_chosen, Json{{"coefficients", candidates[best].coefficients}, {"lambda", candidates[best].lambda}}};
    run_and_publish(ctx, job, chosen, parameters);
    ctx.publish("table", std::move(table));
    ctx.publish("figure", std::move(figure));
  }

  // Two kinds of unit: scoring a candidate (its payload names it), and under mpirun one output
  // file of the final merge with the chosen candidate's method.
  static Json run_unit(UnitContext& ctx, const Json& payload) {
    if (payload.contains("candidate")) return score_candidate_unit(ctx, payload);
    return merge_file_unit(ctx, payload, &build_chosen);
  }
};

}  // namespace

void register_search(PluginRegistrar& r) { r.add_node<SearchMergeCoefficients>(); }

}  // namespace caulk::mergers
