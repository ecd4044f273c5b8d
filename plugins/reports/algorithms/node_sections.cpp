// The sections that know what each family of nodes publishes (summaries and tables of run.json,
// files in the run folder). Each draws only what the run produced.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "caulk/error.hpp"
#include "caulk/io/csv.hpp"
#include "reports/algorithms/charts.hpp"
#include "reports/algorithms/html_text.hpp"
#include "reports/algorithms/report_page.hpp"

namespace fs = std::filesystem;

namespace caulk::report {

namespace {

bool starts_with(const std::string& s, std::string_view prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

std::string code(const std::string& id) { return "<code>" + html_escape(id) + "</code>"; }

std::string charts_div(const std::string& inner) { return inner.empty() ? "" : "<div class=\"charts\">\n" + inner + "</div>\n"; }

std::string table_title(const Json& table) {
  return table.contains("title") && table["title"].is_string() ? table["title"].get<std::string>() : std::string();
}

// The text between `before` and `after` in s ("" when absent).
std::string between(const std::string& s, const std::string& before, const std::string& after) {
  const std::size_t a = s.find(before);
  if (a == std::string::npos) return {};
  const std::size_t from = a + before.size(), b = s.find(after, from);
  return b == std::string::npos ? std::string() : s.substr(from, b - from);
}

// A CSV file a node wrote (a table a node prints but does not publish: report.averaging's trust table, merge.greedy_soup's ingredients), as an
// HTML table, read by the framework's CSV reader (quoted fields included); empty when the file is
// missing, a note when it cannot be read.
std::string csv_table_html(const fs::path& file, const std::string& title) {
  if (!fs::exists(file)) return {};
  io::CsvTable table;
  try {
    table = io::read_csv(file);
  } catch (const Error& e) {
    return "<p class=\"note\">" + html_escape(title) + ": " + html_escape(e.what()) + "</p>\n";
  }
  std::string out = "<tr>";
  for (const auto& name : table.header) out += "<th>" + html_escape(name) + "</th>";
  out += "</tr>\n";
  for (const auto& row : table.rows) {
    out += "<tr>";
    for (const auto& cell : row) {
      char* end = nullptr;
      const double v = std::strtod(cell.c_str(), &end);
      if (!cell.empty() && end == cell.c_str() + cell.size())
        out += "<td class=\"num\" title=\"" + html_escape(cell) + "\">" + html_escape(format_number(v)) + "</td>";
      else
        out += "<td>" + html_escape(cell) + "</td>";
    }
    out += "</tr>\n";
  }
  return "<p><strong>" + html_escape(title) + "</strong></p>\n<table>" + out + "</table>\n";
}


// ------------------------------------------------------------------------------ rankings

// Ground truth per model, from the first report.ranking table with a "ground truth" column.
std::map<std::string, double> ground_truth_of(const std::vector<RunNode>& nodes) {
  std::map<std::string, double> truth;
  for (const auto& n : nodes) {
    if (n.type != "report.ranking" || n.status != "ok") continue;
    const Json* t = n.table("table");
    if (!t) continue;
    auto model = column_index(*t, "model"), value = column_index(*t, "ground truth");
    if (!model || !value) continue;
    for (const auto& row : (*t)["rows"])
      if (auto v = number_at(row, *value)) truth[text_at(row, *model)] = *v;
    if (!truth.empty()) return truth;
  }
  return truth;
}

}  // namespace

void add_ranking_section(Page& page, const std::vector<RunNode>& nodes) {
  std::vector<const RunNode*> rankers;
  for (const auto& n : nodes)
    if (starts_with(n.type, "rank.") && n.status == "ok" && n.summary().contains("scores") && n.summary()["scores"].is_object())
      rankers.push_back(&n);
  if (rankers.empty()) return;
  const std::map<std::string, double> truth = ground_truth_of(nodes);
  // Weighted Kendall tau of each ranker, from the first eval.rank_correlation that judged it.
  std::map<std::string, double> tau;
  std::string truth_name = "ground truth";
  std::string body, bars, scatters, taus;
  for (const auto& n : nodes) {
    if (n.type != "eval.rank_correlation" || n.status != "ok") continue;
    std::vector<Bar> judged;
    for (const auto& [ranker, c] : n.summary().items())
      if (c.is_object() && c.contains("weighted_tau") && c["weighted_tau"].is_number()) {
        tau.emplace(ranker, c["weighted_tau"].get<double>());
        judged.push_back({ranker, c["weighted_tau"].get<double>()});
      }
    if (const Json* t = n.table("correlations")) {
      const std::string named = between(table_title(*t), "Rank correlation with ", " (");
      if (!named.empty()) truth_name = named;
    }
    if (!judged.empty())
      taus += page.chart(bar_chart({fmt::format("How well each ranker orders the models ({})", n.id),
                                    "weighted Kendall tau against the " + truth_name,
                                    "Bars: the weighted Kendall tau of each ranker's scores with the ground truth, best first"},
                                   "ranker", "weighted Kendall tau (-1 to 1, higher is better)", judged));
  }
  for (const RunNode* r : rankers) {
    const Json& s = r->summary();
    const bool higher = !s.contains("higher_is_better") || !s["higher_is_better"].is_boolean() || s["higher_is_better"].get<bool>();
    const std::string split = s.contains("split") && s["split"].is_string() ? s["split"].get<std::string>() : "";
    std::vector<Bar> scores;
    std::vector<LabelledPoint> points;
    for (const auto& [model, v] : s["scores"].items()) {
      if (!v.is_number()) continue;
      scores.push_back({model, v.get<double>()});
      auto t = truth.find(model);
      if (t != truth.end()) points.push_back({model, v.get<double>(), t->second});
    }
    const std::string value_title = fmt::format("{} score ({})", r->type.substr(5), higher ? "higher is better" : "lower is better");
    bars += page.chart(bar_chart({fmt::format("Scores of {} ({})", r->id, r->type), split.empty() ? "" : "on split '" + split + "'",
                                  fmt::format("Bars: the score {} gave each model, best first", r->id)},
                                 "model", value_title, scores, !higher));
    if (points.size() >= 2) {
      auto t = tau.find(r->id);
      scatters += page.chart(scatter_chart({fmt::format("{} against the {}", r->id, truth_name),
                                            t == tau.end() ? std::string() : fmt::format("weighted Kendall tau = {:.3f}", t->second),
                                            fmt::format("Points: each model's {} score (x) and its {} (y)", r->id, truth_name)},
                                           value_title, truth_name + " (as measured)", points));
    }
  }
  body += "<p>" + std::to_string(rankers.size()) + " rankers scored the models.</p>\n";
  if (!taus.empty()) body += "<h3>Rank correlation with the ground truth</h3>\n" + charts_div(taus);
  body += "<h3>Scores of each ranker</h3>\n" + charts_div(bars);
  if (!scatters.empty())
    body += "<h3>Scores against the ground truth</h3>\n<p>A good ranker's points rise from left to right (or fall, when lower "
            "scores are better).</p>\n" +
            charts_div(scatters);
  else
    body += "<p class=\"note\">No ground truth in this run (a <code>report.ranking</code> with its ground_truth input), so the "
            "scores are not plotted against it.</p>\n";
  page.add_section("rankings", "Rankings", body);
}

// ------------------------------------------------------------------------------ learning curves

void add_learning_curve_section(Page& page, const std::vector<RunNode>& nodes) {
  std::string body;
  for (const auto& n : nodes) {
    if (n.type != "eval.sample_complexity" || n.status != "ok") continue;
    const Json *points = n.table("points"), *curves = n.table("curves");
    if (!points) continue;
    auto model = column_index(*points, "model"), size = column_index(*points, "n"), risk = column_index(*points, "risk");
    if (!model || !size || !risk) continue;
    std::vector<SeriesPoint> measured;
    for (const auto& row : (*points)["rows"]) {
      auto x = number_at(row, *size), y = number_at(row, *risk);
      if (x && y) measured.push_back({text_at(row, *model), *x, *y});
    }
    std::vector<PowerLawCurve> fits;
    if (curves) {
      auto m = column_index(*curves, "model"), a = column_index(*curves, "a"), b = column_index(*curves, "b"), c = column_index(*curves, "c");
      if (m && a && b && c)
        for (const auto& row : (*curves)["rows"]) {
          auto va = number_at(row, *a), vb = number_at(row, *b), vc = number_at(row, *c);
          if (va && vb && vc) fits.push_back({text_at(row, *m), *va, *vb, *vc});
        }
    }
    std::optional<double> target;
    for (const auto& [name, entry] : n.summary().items())
      if (entry.is_object() && entry.contains("target_risk") && entry["target_risk"].is_number()) target = entry["target_risk"].get<double>();
    std::string risk_name = between(table_title(*points), "Learning-curve points: ", " on split");
    if (risk_name.empty()) risk_name = "risk";
    const std::string split = between(table_title(*points), "on split '", "'");
    body += "<h3>" + code(n.id) + "</h3>\n";
    body += page.chart(learning_curve_chart(
        {fmt::format("Learning curves ({}): test {} against training samples", n.id, risk_name),
         "points: each repetition; lines: fitted risk(n) = a n^-b + c; dotted rule: the target risk",
         fmt::format("Measured test {} of each model after tuning on n samples, with the fitted power law of each", risk_name)},
        fmt::format("test {} on split '{}' (lower is better)", risk_name, split), measured, fits, target));
  }
  if (!body.empty()) page.add_section("learning-curves", "Learning curves (sample complexity)", body);
}

// ------------------------------------------------------------------------------ evaluations

void add_evaluation_section(Page& page, const std::vector<RunNode>& nodes) {
  std::string body;
  for (const auto& n : nodes) {
    if ((n.type != "eval.classification" && n.type != "eval.regression") || n.status != "ok") continue;
    const Json* t = n.table("metrics");
    if (!t) continue;
    const bool classification = n.type == "eval.classification";
    const std::string metric = classification ? "accuracy" : "mse";
    auto model = column_index(*t, "model"), value = column_index(*t, metric);
    if (!model || !value) continue;
    auto split_col = column_index(*t, "split");
    std::map<std::string, std::vector<Bar>> by_split;
    for (const auto& row : (*t)["rows"])
      if (auto v = number_at(row, *value)) by_split[split_col ? text_at(row, *split_col) : std::string()].push_back({text_at(row, *model), *v});
    std::string split_title = between(table_title(*t), "on split '", "'");
    std::string charts;
    for (auto& [split, bars] : by_split) {
      const std::string on = split.empty() ? split_title : split;
      charts += page.chart(bar_chart({fmt::format("{} of every model ({})", classification ? "Held-out accuracy" : "Held-out MSE", n.id),
                                      on.empty() ? "" : "on split '" + on + "'",
                                      fmt::format("Bars: the {} of each model and combination, best first", metric)},
                                     "model or method",
                                     classification ? "accuracy (fraction correct, higher is better)" : "mean squared error (lower is better)",
                                     bars, !classification));
    }
    body += "<h3>" + code(n.id) + "</h3>\n" + charts_div(charts);
  }
  if (!body.empty()) page.add_section("evaluations", "Evaluations (held-out score per model and method)", body);
}

// ------------------------------------------------------------------------------ merges

namespace {

std::string coefficient_search_chart(Page& page, const RunNode& n) {
  const Json* t = n.table("table");
  if (!t) return {};
  const Json& columns = (*t)["columns"];
  std::vector<std::size_t> weights;
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i].is_string() && starts_with(columns[i].get<std::string>(), "w:")) weights.push_back(i);
  auto best = column_index(*t, "best"), lambda = column_index(*t, "lambda"), candidate = column_index(*t, "candidate");
  if (!best || *best == 0 || weights.empty() || !candidate) return {};
  const std::size_t metric = *best - 1;  // the score is the column before "best"
  const std::string metric_name = columns[metric].get<std::string>();
  std::set<double> lambdas;
  if (lambda)
    for (const auto& row : (*t)["rows"])
      if (auto l = number_at(row, *lambda)) lambdas.insert(*l);
  const bool two = weights.size() == 2;
  std::vector<SeriesPoint> points, chosen;
  for (const auto& row : (*t)["rows"]) {
    auto y = number_at(row, metric);
    auto x = two ? number_at(row, weights[0]) : number_at(row, *candidate);
    if (!x || !y) continue;
    std::string series = "candidates";
    if (lambda && lambdas.size() > 1)
      if (auto l = number_at(row, *lambda)) series = "lambda = " + format_number(*l);
    points.push_back({series, *x, *y});
    if (text_at(row, *best) == "*") chosen.push_back({series, *x, *y});
  }
  std::stable_sort(points.begin(), points.end(), [](const SeriesPoint& a, const SeriesPoint& b) { return a.series < b.series || (a.series == b.series && a.x < b.x); });
  LineChartOptions o;
  o.x_title = two ? "weight of " + columns[weights[0]].get<std::string>().substr(2) + " (fraction; the other model gets the rest)"
                  : "candidate (number, in the order drawn)";
  o.y_title = metric_name + " on the held-out split (higher is better)";
  o.series_title = "lambda";
  o.lines = two;
  o.highlighted = chosen;
  o.highlighted_label = "chosen";
  return page.chart(line_chart({fmt::format("Coefficient search ({}): {} of each candidate", n.id, metric_name),
                                "diamond: the chosen coefficients; " + between(table_title(*t), "", " coefficients") + " merge",
                                "Held-out score of every candidate set of merge coefficients"},
                               o, points));
}

std::string scale_stability_charts(Page& page, const RunNode& n) {
  const Json* t = n.table("table");
  if (!t) return {};
  auto model = column_index(*t, "model"), s = column_index(*t, "s"), acc = column_index(*t, "accuracy"), agree = column_index(*t, "agreement");
  if (!model || !s || !acc || !agree) return {};
  std::vector<SeriesPoint> accuracy, agreement;
  for (const auto& row : (*t)["rows"]) {
    auto x = number_at(row, *s), a = number_at(row, *acc), g = number_at(row, *agree);
    if (x && a) accuracy.push_back({text_at(row, *model), *x, *a});
    if (x && g) agreement.push_back({text_at(row, *model), *x, *g});
  }
  LineChartOptions o;
  o.x_title = "parameter scale factor s (times, log scale)";
  o.series_title = "model";
  o.x_log = true;
  o.y_min = 0;
  o.y_max = 1;
  o.y_title = "accuracy (fraction correct)";
  std::string out = page.chart(line_chart({fmt::format("Scale stability ({}): accuracy", n.id), between(table_title(*t), "scaling (", ")") + " scaled by s",
                                           "Accuracy of each model when its parameters are multiplied by s"},
                                          o, accuracy));
  o.y_title = "agreement with the unscaled predictions (fraction)";
  out += page.chart(line_chart({fmt::format("Scale stability ({}): agreement", n.id), "the share of predictions unchanged by scaling",
                                "Agreement of each model's scaled predictions with its unscaled ones"},
                               o, agreement));
  return out;
}

std::string weight_pattern_images(Page& page, const RunNode& n) {
  const Json& s = n.summary();
  const fs::path dir = n.id;
  std::string out;
  if (s.contains("first_layer_images") && s["first_layer_images"].is_object())
    for (const auto& [model, file] : s["first_layer_images"].items())
      if (file.is_string()) out += page.image(dir / file.get<std::string>());
  if (s.contains("cosine_images") && s["cosine_images"].is_array())
    for (const auto& file : s["cosine_images"])
      if (file.is_string()) out += page.image(dir / file.get<std::string>());
  if (fs::exists(page.run().dir / dir / "norms.png")) out += page.image(dir / "norms.png");
  return out;
}

}  // namespace

void add_merge_section(Page& page, const std::vector<RunNode>& nodes) {
  std::string body;
  for (const auto& n : nodes) {
    if (n.status != "ok") continue;
    std::string part;
    if (n.type == "search.merge_coefficients") part = charts_div(coefficient_search_chart(page, n));
    else if (n.type == "analysis.scale_stability") part = charts_div(scale_stability_charts(page, n));
    else if (n.type == "analysis.weight_patterns") part = "<div class=\"images\">\n" + weight_pattern_images(page, n) + "</div>\n";
    else if (n.type == "merge.greedy_soup") {
      part = csv_table_html(page.run().dir / n.id / "ingredients.csv", "Ingredients as tried (" + n.id + "/ingredients.csv)");
      if (!part.empty()) page.report().tables += 1;
    }
    if (!part.empty() && part != "<div class=\"images\">\n</div>\n") body += "<h3>" + code(n.id) + " (" + html_escape(n.type) + ")</h3>\n" + part;
  }
  if (!body.empty()) page.add_section("merges", "Merges: coefficient search, greedy soup, scale stability, weight patterns", body);
}

// ------------------------------------------------------------------------------ local averaging

namespace {

// OUT/<id>/weights.<split>.csv: the plotted covariates (zQ columns), then one weight column per
// model (the models of the node's trust summary).
std::optional<CovariateWeights> read_weights_csv(const fs::path& file, std::size_t models) {
  if (models == 0 || !fs::exists(file)) return std::nullopt;
  try {
    const io::CsvTable t = io::read_csv(file);
    const std::size_t columns = t.header.size();
    if (columns <= models || columns - models > 2) return std::nullopt;
    CovariateWeights w;
    const std::size_t q = columns - models;
    w.covariate_names.assign(t.header.begin(), t.header.begin() + static_cast<long>(q));
    w.models.assign(t.header.begin() + static_cast<long>(q), t.header.end());
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
      std::vector<double> z, ws;
      for (std::size_t i = 0; i < q; ++i) z.push_back(t.number(r, i));
      for (std::size_t i = q; i < columns; ++i) ws.push_back(t.number(r, i));
      w.covariates.push_back(std::move(z));
      w.weights.push_back(std::move(ws));
    }
    if (w.covariates.empty()) return std::nullopt;
    return w;
  } catch (const Error&) {
    return std::nullopt;  // the caller says the file is unreadable
  }
}

}  // namespace

void add_averaging_section(Page& page, const std::vector<RunNode>& nodes) {
  std::string body;
  for (const auto& n : nodes) {
    if (n.type != "report.averaging" || n.status != "ok") continue;
    const Json& s = n.summary();
    const std::string split = s.contains("split") && s["split"].is_string() ? s["split"].get<std::string>() : "test";
    const std::string loss = s.contains("loss") && s["loss"].is_string() ? s["loss"].get<std::string>() : "";
    std::string charts;
    if (const Json* t = n.table("table")) {
      auto model = column_index(*t, "model"), risk = column_index(*t, "risk");
      if (model && risk) {
        std::vector<Bar> bars;
        for (const auto& row : (*t)["rows"])
          if (auto v = number_at(row, *risk)) bars.push_back({text_at(row, *model), *v});
        charts += page.chart(bar_chart({fmt::format("Out-of-sample risk of every model and combiner ({})", n.id),
                                        fmt::format("on split '{}'; lowest first", split),
                                        "Bars: the risk of each single model and each way of combining them, lowest first"},
                                       "model or combiner", fmt::format("risk ({} loss, lower is better)", loss), bars, true));
      }
    }
    const std::size_t models = s.contains("trust") && s["trust"].is_object() ? s["trust"].size() : 0;
    const fs::path weights_file = fs::path(n.id) / ("weights." + split + ".csv");
    if (models > 0) {
      if (auto w = read_weights_csv(page.run().dir / weights_file, models)) {
        const bool two = w->covariate_names.size() == 2;
        charts += page.chart(covariate_weights_chart(
            {fmt::format("Where each model is trusted ({}): its weight over {}", n.id, two ? "two covariates" : "the covariate"),
             fmt::format("mean weight per {} on split '{}' ({} rows)", two ? "cell" : "bin", split, w->covariates.size()),
             "The local average's weight of each model as a function of the covariates"},
            *w));
      } else {
        charts += "<p class=\"note\">The weights file " + code(weights_file.generic_string()) + " is missing or unreadable.</p>\n";
      }
    }
    std::string trust;
    if (models > 0) trust = csv_table_html(page.run().dir / n.id / "trust.csv", "Where each model is trusted (" + n.id + "/trust.csv)");
    if (!trust.empty()) page.report().tables += 1;
    if (!charts.empty() || !trust.empty()) body += "<h3>" + code(n.id) + "</h3>\n" + charts_div(charts) + trust;
  }
  if (!body.empty()) page.add_section("averaging", "Local averaging: risks and weights", body);
}

}  // namespace caulk::report
