#include "caulk/figures/summaries.hpp"

#include <fmt/format.h>

#include <set>

namespace caulk::figures {

namespace {
TableCell count(std::size_t n) { return static_cast<long long>(n); }
}  // namespace

Table dataset_summary_table(const Dataset& data) {
  Table t;
  const bool classification = data.kind == TaskKind::Classification;
  t.title = classification ? fmt::format("Dataset: classification, {} classes", data.num_classes())
                           : fmt::format("Dataset: regression, {} target column(s)", data.num_targets());
  t.columns = {"split", "rows", classification ? "classes present" : "targets", "input columns", "covariate columns"};
  for (const auto& split : data.splits) {
    std::vector<TableCell> row{split.name, count(split.rows)};
    if (classification)
      row.push_back(count(std::set<int>(split.classes.begin(), split.classes.end()).size()));
    else
      row.push_back(count(static_cast<std::size_t>(split.targets.cols())));
    row.push_back(split.inputs ? count(split.inputs->shape().second) : TableCell{});
    row.push_back(split.covariates ? count(split.covariates->shape().second) : TableCell{});
    t.rows.push_back(std::move(row));
  }
  return t;
}

Table hub_summary_table(const Embeddings& hub) {
  Table t;
  t.title = fmt::format("Hub{}: {} model(s), feature sizes per split", hub.hub.empty() ? "" : " '" + hub.hub + "'", hub.models.size());
  t.columns = {"model", "split", "rows", "feature columns", "source classes"};
  for (const auto& m : hub.models)
    for (const auto& [split, file] : m.features) {
      const auto [rows, cols] = file.shape();
      auto probs = m.source_probs.find(split);
      t.rows.push_back(
          {m.name, split, count(rows), count(cols), probs == m.source_probs.end() ? TableCell{} : count(probs->second.shape().second)});
    }
  return t;
}

}  // namespace caulk::figures
