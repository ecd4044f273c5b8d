// The data check every ranker shares (caulk/data_check.hpp): before anything runs, the split it
// asks for exists, every model of the hub has features (and source_probs, for rankers that read
// them) for that split with as many rows as the labels, and the task is one the ranker handles.
// It reads only the facts of the nodes upstream (dataset.load, adapter.precomputed).
#include <fmt/format.h>

#include "rankers/src/ranker_node.hpp"

namespace caulk::rankers {

namespace {

std::string quoted_names(const std::vector<std::string>& names, std::size_t limit = 5) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > limit) out += fmt::format(" and {} more", names.size() - limit);
  return out;
}

void check_ranker(DataCheck& check, bool needs_source_probs, bool supports_regression) {
  const std::string& split = check.params().string("split");
  const Json* data = check.input("data");
  if (data && data->value("kind", std::string()) == "regression" && !supports_regression)
    check.problem("",
                  "this ranker handles classification tasks only, and the data are a regression task (kind = \"regression\"); "
                  "use rank.logme, or load the labels with kind = \"classification\"");
  const Json* labels = check.expect_split("split", "data");
  const Json* hub = check.input("features");
  if (!hub) return;
  std::vector<std::string> names;
  for (const auto& m : hub->at("models")) names.push_back(m.at("name").get<std::string>());
  check.facts()["scores"] = Json{{"models", names}};
  const std::string hub_name = fmt::format("hub '{}'", hub->value("hub", std::string()));

  // Each kind of problem over all models: said once, naming the models, at the parameter that named
  // the files that disagree (the hub manifest's, or the labels' when every model disagrees with them).
  std::vector<std::string> no_split, no_probs;
  std::map<std::size_t, std::vector<std::string>> rows_by_count;  // features rows -> models, when != labels
  for (const auto& m : hub->at("models")) {
    const std::string name = m.at("name").get<std::string>();
    if (m.value("unreadable", false)) continue;  // its problem was said by the hub's check
    if (!m.contains("features") || !m.at("features").contains(split)) {
      no_split.push_back(name);
      continue;
    }
    const std::size_t rows = m.at("features").at(split).at("rows").get<std::size_t>();
    if (labels && labels->contains("rows") && rows != labels->at("rows").get<std::size_t>()) rows_by_count[rows].push_back(name);
    if (needs_source_probs && (!m.contains("source_probs") || !m.at("source_probs").contains(split))) no_probs.push_back(name);
  }
  const Json& hub_where = hub->at("where");
  // (When the data lack the split too, that was said, at the ranker's own parameter.)
  const bool data_lack_split = data && data->contains("splits") && !labels;
  if (!no_split.empty() && !data_lack_split)
    check.problem_at(hub_where,
                     fmt::format("{} of {} {} features for split '{}', which node '{}' ranks on; give them in the manifest "
                                 "as features = {{ {} = \"FILE.npy\", ... }}, or rank on a split the models have",
                                 no_split.size() == names.size() ? std::string("no model")
                                                                 : (no_split.size() == 1 ? "model " : "models ") + quoted_names(no_split),
                                 hub_name, no_split.size() == names.size() ? "has" : "have no", split, check.node_id(), split));
  if (!no_probs.empty())
    check.problem(
        "", fmt::format("this ranker reads each model's source_probs (the source head's class probabilities), but {} "
                        "gives none for split '{}' for {}; add source_probs = {{ {} = \"FILE.npy\" }} to each [[model]] of "
                        "its manifest, or use a ranker on features alone (rank.logme, rank.hscore, rank.nleep, ...)",
                        hub_name, split,
                        no_probs.size() == names.size() ? "any model"
                                                        : "model" + std::string(no_probs.size() == 1 ? " " : "s ") + quoted_names(no_probs),
                        split));
  if (labels && labels->contains("rows") && !rows_by_count.empty()) {
    const std::size_t label_rows = labels->at("rows").get<std::size_t>();
    const std::string labels_file = labels->at("file").get<std::string>();
    if (rows_by_count.size() == 1 && rows_by_count.begin()->second.size() == names.size()) {
      // Every model agrees with the others and not with the labels: the labels are the odd one out.
      check.problem_at(labels->at("where"),
                       fmt::format("labels file {} has {} rows for split '{}' but the features of every model of {} have {}; "
                                   "labels and features need one row per sample, in the same order",
                                   labels_file, label_rows, split, hub_name, rows_by_count.begin()->first));
    } else {
      for (const auto& [rows, models] : rows_by_count)
        check.problem_at(hub_where, fmt::format("{}: features of split '{}' have {} rows but the labels ({}) have {}: model{} {}", hub_name,
                                                split, rows, labels_file, label_rows, models.size() == 1 ? "" : "s", quoted_names(models)));
    }
  }
  // source_probs rows against features rows were checked by the hub's own check.
}

}  // namespace

std::function<void(DataCheck&)> ranker_data_check(bool needs_source_probs, bool supports_regression) {
  return [=](DataCheck& check) { check_ranker(check, needs_source_probs, supports_regression); };
}

}  // namespace caulk::rankers
