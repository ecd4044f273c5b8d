// eval.rank_correlation: how well each ranker's scores agree with the accuracy the models really
// reached (a CSV of ground truth), by weighted Kendall tau, Kendall tau-b, Spearman, Pearson and
// top-1 regret.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <map>
#include <set>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/figures/charts.hpp"
#include "caulk/io/csv.hpp"
#include "evaluators/algorithms/rank_correlation.hpp"
#include "evaluators/src/nodes.hpp"

namespace caulk::evaluators {

namespace {

// model -> value from a table with a `model` column (e.g. eval.classification's metrics).
std::map<std::string, double> truth_from_table(const Table& t, const std::string& column) {
  auto index_of = [&](const std::string& name) {
    auto it = std::find(t.columns.begin(), t.columns.end(), name);
    if (it == t.columns.end())
      throw Error(fmt::format("table '{}' has no column '{}' (it has: {})", t.title, name, fmt::join(t.columns, ", ")));
    return static_cast<std::size_t>(it - t.columns.begin());
  };
  const std::size_t model_col = index_of("model"), value_col = index_of(column);
  std::map<std::string, double> out;
  for (const auto& row : t.rows) {
    const auto* model = std::get_if<std::string>(&row.at(model_col));
    const auto* value = std::get_if<double>(&row.at(value_col));
    if (!model || !value) throw Error(fmt::format("table '{}': a row without a model name or a number in '{}'", t.title, column));
    if (!std::isfinite(*value))
      throw Error(fmt::format("table '{}': the ground truth of model '{}' in column '{}' is {}; it must be finite", t.title, *model, column,
                              *value));
    if (!out.emplace(*model, *value).second) throw Error(fmt::format("table '{}': model '{}' appears twice", t.title, *model));
  }
  return out;
}

class RankCorrelation : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("eval.rank_correlation",
               "Judge rankers against ground truth (e.g. accuracy after tuning): weighted Kendall tau (as "
               "scipy.stats.weightedtau), Kendall tau-b, Spearman, Pearson, top-1 regret");
    s.inputs_many("scores", "Scores", "one or several rankers' scores");
    s.input_optional("truth", "Table", "ground truth computed in this run (e.g. eval.classification's metrics); or give the CSV");
    s.output("correlations", "Table", "one row per ranker");
    s.output("ground_truth", "Scores", "the ground truth as scores, in the rankers' model order (for report.ranking)");
    s.output("tau_figure", "Figure", "the weighted Kendall tau of each ranker as bars, best first (drawn in report.html)");
    s.output("scatter_figure", "Figure", "each ranker's scores against the ground truth, one panel per ranker (drawn in report.html)");
    s.param(ParamSpec::path("ground_truth", "CSV with a header: a `model` column and the value column; or connect `truth`").optional());
    s.param(ParamSpec::string("column", "accuracy", "the ground-truth column of the CSV or table (higher is better)"));
    s.param(ParamSpec::integer("digits", 4, "significant digits on stdout").range(1, 17));
    add_rank_correlation_data_check(s);
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& params = ctx.params();
    const std::string column = params.string("column");
    std::map<std::string, double> truth;
    std::string source;  // where the ground truth came from, for messages and the title
    if (ctx.has_input("truth") == params.has("ground_truth"))
      throw Error("give the ground truth either as the `truth` input or as the `ground_truth` CSV, exactly one of them");
    if (params.has("ground_truth")) {
      const io::CsvTable csv = io::read_csv(params.path("ground_truth"));
      const std::size_t model_col = csv.column("model"), value_col = csv.column(column);
      for (std::size_t r = 0; r < csv.rows.size(); ++r) {
        const std::string& model = csv.rows[r][model_col];
        const double value = csv.number(r, value_col);
        if (!std::isfinite(value))
          throw DataError(csv.path.string(), csv.row_lines[r],
                          fmt::format("column '{}': the ground truth of model '{}' is {}; give a finite number", column, model, value));
        if (!truth.emplace(model, value).second)
          throw DataError(fmt::format("{}:{}", csv.path.string(), csv.row_lines[r]), fmt::format("model '{}' appears twice", model));
      }
      source = csv.path.string();
    } else {
      const auto table = ctx.input<Table>("truth");
      truth = truth_from_table(*table, column);
      source = "table '" + table->title + "'";
    }

    auto all = ctx.inputs<Scores>("scores");
    auto table = std::make_shared<Table>();
    table->title = fmt::format("Rank correlation with {} ({})", column, source);
    table->columns = {"ranker", "weighted_tau", "kendall_tau", "spearman", "pearson", "top1_regret"};
    Json& summary = ctx.summary();
    std::vector<figures::Bar> taus;
    std::vector<Json> scatters;
    for (const auto& scores : all) {
      std::set<std::string> scored;
      std::vector<double> x, y;
      for (const auto& s : scores->scores) {
        auto it = truth.find(s.model);
        if (it == truth.end())
          throw Error(fmt::format("model '{}' is scored by '{}' but has no ground truth in {}", s.model, scores->producer_node, source));
        if (!std::isfinite(s.score))
          throw Error(
              fmt::format("ranker '{}' ({}) gave model '{}' the score {}, which cannot be ranked against the ground truth in {}; "
                          "see that ranker's error or details for why",
                          scores->producer_node, scores->method, s.model, s.score, source));
        scored.insert(s.model);
        x.push_back(scores->higher_is_better ? s.score : -s.score);
        y.push_back(it->second);
      }
      for (const auto& [model, value] : truth)
        if (!scored.count(model))
          throw Error(fmt::format("model '{}' has ground truth in {} but is not scored by '{}'", model, source, scores->producer_node));
      if (x.size() < 2)
        throw Error(fmt::format("'{}' scored {} model(s); correlations need at least two", scores->producer_node, x.size()));
      double wtau = 0, tau = 0, rho = 0, r = 0, regret = 0;
      try {
        wtau = eval::weighted_tau(x, y);
        tau = eval::kendall_tau_b(x, y);
        rho = eval::spearman(x, y);
        r = eval::pearson(x, y);
        regret = eval::top1_regret(x, y);
      } catch (const std::invalid_argument& e) {
        throw Error(fmt::format("ranker '{}' against the ground truth in {}: {}", scores->producer_node, source, e.what()));
      }
      table->rows.push_back({scores->producer_node, wtau, tau, rho, r, regret});
      taus.push_back({scores->producer_node, wtau});
      std::vector<figures::LabelledPoint> points;
      for (const auto& s : scores->scores) points.push_back({s.model, s.score, truth.at(s.model)});
      scatters.push_back(figures::scatter_chart(
          {fmt::format("{} against the {}", scores->producer_node, column), fmt::format("weighted Kendall tau = {:.3f}", wtau),
           fmt::format("Points: each model's {} score (x) and its {} (y)", scores->producer_node, column)},
          fmt::format("{} score ({})", scores->method, scores->higher_is_better ? "higher is better" : "lower is better"),
          column + " (as measured)", points));
      // NaN (a constant side) is written as null in run.json.
      summary[scores->producer_node] =
          Json{{"weighted_tau", wtau}, {"kendall_tau", tau}, {"spearman", rho}, {"pearson", r}, {"top1_regret", regret}};
    }

    auto gt = std::make_shared<Scores>();
    gt->method = "ground_truth:" + column;
    gt->higher_is_better = true;
    for (const auto& s : all.front()->scores) gt->scores.push_back({s.model, truth.at(s.model), 0.0});

    ctx.print(table->to_text(static_cast<int>(params.integer("digits"))));
    ctx.publish("correlations", std::move(table));
    ctx.publish("ground_truth", std::move(gt));
    ctx.publish(
        "tau_figure",
        figures::make_figure(
            figures::bar_chart({"How well each ranker orders the models (" + ctx.id() + ")", "weighted Kendall tau against the " + column,
                                "Bars: the weighted Kendall tau of each ranker's scores with the ground truth, best first"},
                               "ranker", "weighted Kendall tau (-1 to 1, higher is better)", std::move(taus)),
            "Weighted Kendall tau of each ranker with the ground truth: 1 orders the models as they really did."));
    ctx.publish("scatter_figure",
                figures::make_figure(figures::concat_charts({"Scores against the " + column + " (" + ctx.id() + ")",
                                                             "the five best models by " + column + " are labelled; hover for the others",
                                                             "Each ranker's score of every model (x) against its " + column + " (y)"},
                                                            scatters),
                                     "A good ranker's points rise from left to right (or fall, when lower scores are better)."));
  }
};

}  // namespace

void register_rank_correlation(PluginRegistrar& r) { r.add_node<RankCorrelation>(); }

}  // namespace caulk::evaluators
