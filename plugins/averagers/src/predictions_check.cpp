// The data check of predictions.load (caulk/data_check.hpp): the manifest reads, every
// predictions file is a .npy (its header only), and the models agree on the rows of each split.
// Its facts ({"splits": {SPLIT: {"rows", "file"}}, "models": [...]}) let eval.classification and
// eval.regression compare those rows with the labels'.
#include <fmt/format.h>

#include <map>

#include "averagers/src/nodes.hpp"
#include "averagers/src/predictions_manifest.hpp"
#include "caulk/data_check.hpp"
#include "caulk/node.hpp"

namespace caulk::averagers {

namespace {

void check_predictions(DataCheck& check) {
  const auto file = check.params().path("manifest");
  if (!check.expect_file("manifest", file, "predictions manifest")) return;
  Manifest m;
  try {
    m = read_manifest(file, predictions_manifest_schema());
  } catch (const DataError& e) {
    check.problem("manifest", e.what());
    return;
  }
  std::map<std::string, std::pair<std::size_t, std::string>> rows_of;  // split -> (rows, the first model's file)
  Json names = Json::array();
  bool complete = true;
  for (const auto& model : m.models) {
    names.push_back(model.name);
    for (const auto& [split, path] : model.split_paths("predictions")) {
      auto h = check.expect_npy(
          "manifest", path, fmt::format("{}: model '{}': predictions on split '{}',", model.location("predictions"), model.name, split));
      if (!h) {
        complete = false;
        continue;
      }
      const std::size_t rows = h->shape.empty() ? 0 : h->shape[0];
      auto [it, fresh] = rows_of.emplace(split, std::pair{rows, path.string()});
      if (!fresh && it->second.first != rows) {
        check.problem("manifest", fmt::format("{}: model '{}': predictions on split '{}' ({}) have {} rows but {} has {}; every model "
                                              "predicts the same samples of a split",
                                              model.location("predictions"), model.name, split, path.string(), rows, it->second.second,
                                              it->second.first));
        complete = false;
      }
    }
  }
  if (!complete) return;
  Json splits = Json::object();
  for (const auto& [split, r] : rows_of) splits[split] = Json{{"rows", r.first}, {"file", r.second}};
  check.facts()["predictions"] =
      Json{{"splits", std::move(splits)}, {"models", std::move(names)}, {"where", check.location_json("manifest")}};
}

}  // namespace

void add_predictions_data_check(NodeSpec& spec) { spec.data_check = check_predictions; }

}  // namespace caulk::averagers
