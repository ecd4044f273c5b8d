// eval.aggregate: mean and standard deviation of repeated runs from metric tables, grouped by row
// name with the part that tells the runs apart (a seed tag) removed.
#include <fmt/format.h>

#include <cmath>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "tuners/algorithms/repeated_runs.hpp"
#include "tuners/src/nodes.hpp"

namespace caulk::tuners {

namespace {

std::optional<double> number(const TableCell& c) {
  if (const double* d = std::get_if<double>(&c)) return *d;
  if (const long long* i = std::get_if<long long>(&c)) return static_cast<double>(*i);
  return std::nullopt;
}

std::size_t column_index(const Table& t, const std::string& name) {
  for (std::size_t c = 0; c < t.columns.size(); ++c)
    if (t.columns[c] == name) return c;
  std::string have;
  for (const auto& c : t.columns) have += (have.empty() ? "" : ", ") + c;
  throw Error(fmt::format("table '{}' of '{}' has no column '{}' (columns: {})", t.title, t.producer_node, name, have));
}

class Aggregate : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("eval.aggregate",
               "Mean and standard deviation (n - 1) of repeated runs: rows of metric tables grouped by their name with a run tag "
               "(e.g. a seed) removed");
    s.inputs_many("tables", "Table", "metric tables (e.g. eval.classification's), one row per run");
    s.output("summary", "Table", "one row per group: runs, then the mean and std of each column");
    s.param(ParamSpec::string("key", "model", "the column naming each run"));
    s.param(ParamSpec::string("strip", ":s[0-9]+$",
                              "a regular expression (ECMAScript): its first match is removed from a run's name to "
                              "give its group"));
    s.param(ParamSpec::list("columns", "the numeric columns to summarise (default: every numeric column)"));
    s.param(ParamSpec::string("title", "mean and standard deviation over runs", "the output table's title"));
    s.param(ParamSpec::integer("digits", 4, "significant digits on stdout").range(1, 17));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto tables = ctx.inputs<Table>("tables");
    const std::string key = p.string("key");
    std::vector<std::string> columns;
    if (p.has("columns")) {
      for (const Value& v : p.get("columns").as_array()) columns.push_back(v.as_string());
    } else {
      // Every column (beside the key) that holds a number in the first table's first row.
      const Table& t = *tables.front();
      for (std::size_t c = 0; c < t.columns.size(); ++c)
        if (t.columns[c] != key && !t.rows.empty() && number(t.rows.front()[c])) columns.push_back(t.columns[c]);
    }
    if (columns.empty()) throw Error("no numeric columns to summarise: give `columns`");
    std::vector<std::string> keys;
    std::vector<std::vector<double>> rows;
    for (const auto& t : tables) {
      const std::size_t k = column_index(*t, key);
      std::vector<std::size_t> index;
      for (const auto& c : columns) index.push_back(column_index(*t, c));
      for (const auto& row : t->rows) {
        const std::string* name = std::get_if<std::string>(&row[k]);
        if (!name) throw Error(fmt::format("table '{}' of '{}': a row's '{}' is not text", t->title, t->producer_node, key));
        keys.push_back(*name);
        std::vector<double> values;
        for (std::size_t c : index) values.push_back(number(row[c]).value_or(std::nan("")));
        rows.push_back(std::move(values));
      }
    }
    Matrix values(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(columns.size()));
    for (std::size_t r = 0; r < rows.size(); ++r)
      for (std::size_t c = 0; c < columns.size(); ++c) values(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)) = rows[r][c];
    const auto groups = tune::summarize_groups(keys, values, p.string("strip"));

    auto out = std::make_shared<Table>();
    out->title = p.string("title");
    out->columns = {"group", "runs"};
    for (const auto& c : columns) {
      out->columns.push_back(c + " mean");
      out->columns.push_back(c + " std");
    }
    Json& sum = ctx.summary();
    for (const auto& g : groups) {
      std::vector<TableCell> row{g.group, static_cast<long long>(g.runs)};
      Json entry{{"runs", g.runs}};
      for (std::size_t c = 0; c < columns.size(); ++c) {
        row.emplace_back(g.mean[c]);
        row.push_back(std::isnan(g.std[c]) ? TableCell{} : TableCell{g.std[c]});
        entry[columns[c]] = Json{{"mean", g.mean[c]}, {"std", std::isnan(g.std[c]) ? Json() : Json(g.std[c])}};
      }
      out->rows.push_back(std::move(row));
      sum[g.group] = std::move(entry);
    }
    ctx.print(out->to_text(static_cast<int>(p.integer("digits"))));
    ctx.publish("summary", std::move(out));
  }
};

}  // namespace

void register_aggregate(PluginRegistrar& r) { r.add_node<Aggregate>(); }

}  // namespace caulk::tuners
