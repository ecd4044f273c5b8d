// report.averaging: one table of out-of-sample risk for every single model and every combiner,
// and, from a local average's weights, where in the covariate space each model is trusted
// (a table, and the weights as a function of chosen covariates: a Figure, and a CSV).
#include <fmt/format.h>

#include "averagers/src/common.hpp"
#include "averagers/src/nodes.hpp"
#include "caulk/figures/charts.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/metrics/prediction_metrics.hpp"

namespace fs = std::filesystem;

namespace caulk::averagers {

namespace {

std::string csv_number(double v) { return fmt::format("{:.17g}", v); }

class AveragingReport : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("report.averaging",
               "Compare single models and combiners by out-of-sample risk (one table), and show where a local average trusts each "
               "model; write risk.csv, risk.md, trust.csv and the weights against chosen covariates for plotting");
    s.inputs_many("predictions", "Predictions", "the single models and every combiner (each model is a row, in input order)");
    s.input("data", "Dataset", "the truth of the split to judge, and its covariates");
    s.input_optional("weights", "Weights", "a local average's weights, for the trust table and the plotting data");
    s.output("table", "Table", "the risk table");
    s.output("figure", "Figure", "the risk of every model and combiner as bars, lowest first (drawn in report.html)");
    s.output("trust", "Table", "where the local average trusts each model (no rows without the weights input)");
    s.output_optional("weights_figure", "Figure",
                      "the local average's weight of each model over one or two covariates (drawn in report.html; published only "
                      "with the weights input)");
    s.param(ParamSpec::string("split", "test", "the split to judge on (out of sample: not the fitting split)"));
    declare_loss_params(s);
    s.param(ParamSpec::choice("covariates", "auto", {"auto", "covariates", "inputs"}, "where the plotted covariates come from"));
    s.param(ParamSpec::list("plot_columns", "one or two covariate columns to plot the weights against (default: [0, 1], or [0])"));
    s.param(ParamSpec::integer("digits", 4, "significant digits on stdout and in risk.md").range(1, 17));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const std::string split = p.string("split");
    const Candidates c = gather_candidates(ctx.inputs<Predictions>("predictions"), data.get());
    const avg::Loss loss = loss_from(p, c.kind);
    avg::Stack s = stack_on(c, *data, split);
    check_magnitudes(ctx, c, *data, split, s, true);
    const Vector scaled_risks = avg::model_risks(s, loss.for_scale(s.scale));
    const Vector risks = scaled_risks.unaryExpr([&](double r) { return loss.in_given_units(r, s.scale); });

    auto table = std::make_shared<Table>();
    table->title = fmt::format("Out-of-sample risk on split '{}' ({} loss)", split, avg::loss_name(loss.kind));
    table->columns = {"model", "from", "risk"};
    if (c.kind == TaskKind::Classification)
      table->columns.insert(table->columns.end(), {"accuracy", "log_loss"});
    else
      table->columns.insert(table->columns.end(), {"mse", "mae"});
    Json& sum = ctx.summary();
    Json risk_json = Json::object();
    Eigen::Index best = 0;
    scaled_risks.minCoeff(&best);  // in the given units, risks may overflow
    for (std::size_t k = 0; k < c.names.size(); ++k) {
      const Matrix& values = c.on(k, split);
      std::vector<TableCell> row{c.names[k], c.producers[k], risks(static_cast<Eigen::Index>(k))};
      Json entry{{"risk", risks(static_cast<Eigen::Index>(k))}};
      if (c.kind == TaskKind::Classification) {
        const auto m = metrics::classification_metrics(values, s.classes);
        row.insert(row.end(), {m.accuracy, m.log_loss});
        entry["accuracy"] = m.accuracy;
        entry["log_loss"] = m.log_loss;
      } else {
        const auto m = metrics::regression_metrics(values, data->split(split).targets);
        row.insert(row.end(), {m.mse, m.mae});
        entry["mse"] = m.mse;
        entry["mae"] = m.mae;
      }
      table->rows.push_back(std::move(row));
      risk_json[c.names[k]] = entry;
    }
    sum["split"] = split;
    sum["loss"] = avg::loss_name(loss.kind);
    sum["risks"] = risk_json;
    sum["lowest_risk"] = c.names[static_cast<std::size_t>(best)];

    const int digits = static_cast<int>(p.integer("digits"));
    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    std::string text = table->to_text(digits);
    text.append(fmt::format("lowest risk: {}\n", c.names[static_cast<std::size_t>(best)]));
    std::string markdown = table->to_markdown(digits);
    io::write_file_atomic(dir / "risk.csv", table->to_csv());
    auto trust = std::make_shared<Table>();
    std::shared_ptr<Figure> weights_figure;
    if (ctx.has_input("weights")) {
      weights_figure = std::make_shared<Figure>();
      *trust = trust_table(ctx, *ctx.input<Weights>("weights"), *data, split, dir, *weights_figure);
      // Appended in two steps: GCC 12 warns (-Wrestrict, a false positive) on "\n" + temporary.
      text += '\n';
      text += trust->to_text(digits);
      markdown += '\n';
      markdown += trust->to_markdown(digits);
      io::write_file_atomic(dir / "trust.csv", trust->to_csv());
    } else {
      trust->title = "No local average's weights were given (the weights input), so no trust table";
      trust->columns = {"model", "mean_weight", "share_top"};
    }
    io::write_file_atomic(dir / "risk.md", markdown);
    ctx.print(text);
    std::vector<figures::Bar> bars;
    for (std::size_t k = 0; k < c.names.size(); ++k) bars.push_back({c.names[k], risks(static_cast<Eigen::Index>(k))});
    ctx.publish("figure",
                figures::make_figure(
                    figures::bar_chart({fmt::format("Out-of-sample risk of every model and combiner ({})", ctx.id()),
                                        fmt::format("on split '{}'; lowest first", split),
                                        "Bars: the risk of each single model and each way of combining them, lowest first"},
                                       "model or combiner", fmt::format("risk ({} loss, lower is better)", avg::loss_name(loss.kind)),
                                       std::move(bars), true),
                    fmt::format("The out-of-sample {} loss of every single model and combiner on split '{}', lowest first.",
                                avg::loss_name(loss.kind), split)));
    ctx.publish("table", std::move(table));
    ctx.publish("trust", std::move(trust));
    if (weights_figure) ctx.publish("weights_figure", std::move(weights_figure));
  }

 private:
  // Per model: its mean weight, the share of rows where it weighs most, and the weight-averaged
  // position along each plotted covariate. Writes weights.SPLIT.csv (covariates, then weights).
  // Draws the weights against the plotted covariates into `figure`.
  Table trust_table(NodeContext& ctx, const Weights& weights, const Dataset& data, const std::string& split, const fs::path& dir,
                    Figure& figure) {
    auto it = weights.splits.find(split);
    if (it == weights.splits.end()) throw Error(fmt::format("the weights of '{}' have no split '{}'", weights.producer_node, split));
    const Matrix& W = it->second;
    const Matrix all = covariates_of(data, split, ctx.params().string("covariates"), {});
    if (all.rows() != W.rows())
      throw Error(fmt::format("the weights of '{}' have {} rows on split '{}' but its covariates have {}", weights.producer_node, W.rows(),
                              split, all.rows()));
    std::vector<int> columns = column_list(ctx.params(), "plot_columns");
    if (columns.empty()) columns = all.cols() >= 2 ? std::vector<int>{0, 1} : std::vector<int>{0};
    if (columns.size() > 2) throw Error("plot_columns takes one or two columns");
    const Matrix z = covariates_of(data, split, ctx.params().string("covariates"), columns);

    std::string csv;
    for (int q : columns) csv += fmt::format("z{},", q);
    for (std::size_t k = 0; k < weights.models.size(); ++k) csv += fmt::format("{}{}", k ? "," : "", weights.models[k]);
    csv += "\n";
    for (Eigen::Index i = 0; i < W.rows(); ++i) {
      for (Eigen::Index q = 0; q < z.cols(); ++q) csv += csv_number(z(i, q)) + ",";
      for (Eigen::Index k = 0; k < W.cols(); ++k) csv.append(k ? "," : "").append(csv_number(W(i, k)));
      csv += "\n";
    }
    io::write_file_atomic(dir / fmt::format("weights.{}.csv", split), csv);

    figures::CovariateWeights plotted;
    plotted.models = weights.models;
    for (int q : columns) plotted.covariate_names.push_back(fmt::format("z{}", q));
    for (Eigen::Index i = 0; i < W.rows(); ++i) {
      plotted.covariates.emplace_back();
      for (Eigen::Index q = 0; q < z.cols(); ++q) plotted.covariates.back().push_back(z(i, q));
      std::vector<double> w;
      for (Eigen::Index k = 0; k < W.cols(); ++k) w.push_back(W(i, k));
      plotted.weights.push_back(std::move(w));
    }
    const bool two = columns.size() == 2;
    figure = *figures::make_figure(
        figures::covariate_weights_chart(
            {fmt::format("Where each model is trusted ({}): its weight over {}", ctx.id(), two ? "two covariates" : "the covariate"),
             fmt::format("mean weight per {} on split '{}' ({} rows)", two ? "cell" : "bin", split, W.rows()),
             "The local average's weight of each model as a function of the covariates"},
            plotted),
        fmt::format("The mean weight '{}' gives each model, over {}.", weights.producer_node,
                    two ? "a grid of two covariates" : "bins of one covariate"));

    Table t;
    t.title = fmt::format("Where '{}' trusts each model on split '{}'", weights.producer_node, split);
    t.columns = {"model", "mean_weight", "share_top"};
    for (int q : columns) t.columns.push_back(fmt::format("weighted_mean_z{}", q));
    std::vector<int> top(static_cast<std::size_t>(W.cols()), 0);
    for (Eigen::Index i = 0; i < W.rows(); ++i) {
      Eigen::Index k = 0;
      W.row(i).maxCoeff(&k);
      ++top[static_cast<std::size_t>(k)];
    }
    Json trust = Json::object();
    for (Eigen::Index k = 0; k < W.cols(); ++k) {
      const double mass = W.col(k).sum();
      std::vector<TableCell> row{weights.models[static_cast<std::size_t>(k)], mass / static_cast<double>(W.rows()),
                                 static_cast<double>(top[static_cast<std::size_t>(k)]) / static_cast<double>(W.rows())};
      Json entry{{"mean_weight", mass / static_cast<double>(W.rows())}};
      for (Eigen::Index q = 0; q < z.cols(); ++q) {
        const double centre = mass > 0 ? W.col(k).dot(z.col(q)) / mass : 0.0;
        row.emplace_back(centre);
        entry[fmt::format("weighted_mean_z{}", columns[static_cast<std::size_t>(q)])] = centre;
      }
      t.rows.push_back(std::move(row));
      trust[weights.models[static_cast<std::size_t>(k)]] = entry;
    }
    ctx.summary()["trust"] = trust;
    return t;
  }
};

}  // namespace

void register_report(PluginRegistrar& r) { r.add_node<AveragingReport>(); }

}  // namespace caulk::averagers
