// The data check of eval.rank_correlation (caulk/data_check.hpp): the ground-truth CSV is there,
// has the `model` column and the value column, numbers in it, and names exactly the models the
// rankers upstream score (their facts), with a did-you-mean for a misspelt model name.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "caulk/data_check.hpp"
#include "caulk/io/csv.hpp"
#include "caulk/node.hpp"
#include "caulk/pipeline.hpp"
#include "evaluators/src/nodes.hpp"

namespace caulk::evaluators {

namespace {

void check_ground_truth(DataCheck& check) {
  const Params& p = check.params();
  if (!p.has("ground_truth")) return;
  const auto file = p.path("ground_truth");
  if (!check.expect_file("ground_truth", file, "ground-truth CSV")) return;
  io::CsvTable csv;
  try {
    csv = io::read_csv(file);  // a line per model: small
  } catch (const DataError& e) {
    check.problem("ground_truth", e.what());
    return;
  }
  bool columns_ok = true;
  for (const std::string& column : {std::string("model"), p.string("column")})
    if (!csv.has_column(column)) {
      check.problem(column == "model" ? "ground_truth" : "column",
                    fmt::format("{} has no column '{}'{}; its columns are '{}'", file.string(), column,
                                did_you_mean_among(column, csv.header), fmt::join(csv.header, "', '")));
      columns_ok = false;
    }
  if (!columns_ok) return;
  const std::size_t model_col = csv.column("model"), value_col = csv.column(p.string("column"));
  // The models the rankers score, when their checks know them.
  std::set<std::string> scored;
  bool known = true;
  for (const auto* facts : check.inputs("scores")) {
    if (!facts || !facts->contains("models")) {
      known = false;
      continue;
    }
    for (const auto& m : facts->at("models")) scored.insert(m.get<std::string>());
  }
  known = known && !scored.empty();
  const std::vector<std::string> scored_list(scored.begin(), scored.end());
  std::set<std::string> in_csv, suggested;
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    const std::string& model = csv.rows[r][model_col];
    const std::string where = fmt::format("{}:{}", file.string(), csv.row_lines[r]);
    try {
      csv.number(r, value_col);
    } catch (const DataError& e) {
      check.problem("ground_truth", e.what());
    }
    in_csv.insert(model);
    if (known && !scored.count(model)) {
      for (const auto& close : closest_names(model, scored_list, 1)) suggested.insert(close);
      check.problem("ground_truth",
                    fmt::format("{}: model '{}' is not a model the rankers score{}", where, model, did_you_mean_among(model, scored_list)));
    }
  }
  if (!known) return;
  std::vector<std::string> missing;
  for (const auto& m : scored)
    if (!in_csv.count(m) && !suggested.count(m)) missing.push_back(m);  // a misspelling is said once, above
  if (!missing.empty())
    check.problem("ground_truth", fmt::format("{} has no ground truth for model{} '{}', which the rankers score; add a row for each",
                                              file.string(), missing.size() == 1 ? "" : "s", fmt::join(missing, "', '")));
}

}  // namespace

void add_rank_correlation_data_check(NodeSpec& spec) { spec.data_check = check_ground_truth; }

}  // namespace caulk::evaluators
