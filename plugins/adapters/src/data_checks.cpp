// The data checks of dataset.load and adapter.precomputed (caulk/data_check.hpp): the files their
// parameters name, read only as far as headers, manifests and the labels vector, before anything
// runs. Their facts (docs/writing-plugins.md, "Data checks") tell the checks downstream the
// splits and rows of the Dataset and the models and files of the hub.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "adapters/algorithms/image_folder.hpp"
#include "adapters/src/nodes.hpp"
#include "caulk/data_check.hpp"
#include "caulk/io/csv.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/manifest.hpp"
#include "caulk/node.hpp"

namespace fs = std::filesystem;

namespace caulk::adapters {

namespace {

bool is_csv(const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".csv";
}

// The rows of one labels file, or nothing when it cannot be used (the problem is reported).
std::optional<std::size_t> check_labels_file(DataCheck& check, const std::string& param, const fs::path& file, bool classification,
                                             const std::string& column) {
  if (is_csv(file)) {
    if (!check.expect_file(param, file, "labels file")) return std::nullopt;
    try {
      const io::CsvTable t = io::read_csv(file);  // labels are small: the node's own reader
      if (!column.empty() && !t.has_column(column)) {
        check.problem(param, fmt::format("labels file {} has no column '{}' (label_column){}", file.string(), column,
                                         did_you_mean_among(column, t.header)));
        return std::nullopt;
      }
      if (t.rows.empty()) {
        check.problem(param, fmt::format("labels file {} has a header but no rows", file.string()));
        return std::nullopt;
      }
      return t.rows.size();
    } catch (const DataError& e) {
      check.problem(param, std::string("labels file ") + e.what());
      return std::nullopt;
    }
  }
  auto h = check.expect_npy(param, file, "labels file");
  if (!h) return std::nullopt;
  if (h->shape.empty() || h->shape[0] == 0) {
    check.problem(param, fmt::format("labels file {} holds no labels (shape {})", file.string(), h->shape.empty() ? "()" : "(0, ...)"));
    return std::nullopt;
  }
  if (classification && io::dtype_is_float(h->dtype)) {
    // Class labels stored as floats are fine when whole; the labels vector is small, so it is scanned.
    try {
      io::NpyArray::open(file).to_int64();
    } catch (const DataError&) {
      check.problem(param, fmt::format("labels file {} holds non-integer values, which are not class labels; for real-valued "
                                       "targets set kind = \"regression\"",
                                       file.string()));
      return std::nullopt;
    }
  }
  return h->shape[0];
}

void check_dataset(DataCheck& check) {
  const Params& p = check.params();
  const bool classification = p.string("kind") == "classification";
  Json splits = Json::object();
  for (const auto& [split, file] : p.split_paths("labels")) {
    const std::string param = "labels." + split;
    auto rows = check_labels_file(check, param, file, classification, p.string("label_column"));
    // Every split is named in the facts (a node asking for another one is told); rows only when known.
    splits[split] = Json{{"file", file.string()}, {"where", check.location_json(param)}};
    if (rows) splits[split]["rows"] = *rows;
  }
  for (const char* which : {"inputs", "covariates"}) {
    if (!p.has(which)) continue;
    for (const auto& [split, file] : p.split_paths(which)) {
      const std::string param = std::string(which) + "." + split;
      if (!splits.contains(split) || !splits[split].contains("rows")) {
        // The labels of this split are missing or bad (reported): the file itself is still checked.
        check.expect_npy(param, file, which);
        continue;
      }
      const auto& s = splits[split];
      check.expect_npy(param, file, which, s["rows"].get<std::size_t>(),
                       fmt::format("the labels of split '{}' ({}) have", split, s["file"].get<std::string>()));
    }
  }
  check.facts()["data"] = Json{{"kind", p.string("kind")}, {"splits", std::move(splits)}};
}

void check_hub(DataCheck& check) {
  const fs::path file = check.params().path("manifest");
  if (!check.expect_file("manifest", file, "hub manifest")) return;
  Manifest manifest;
  try {
    manifest = read_manifest(file, hub_manifest_schema());
  } catch (const DataError& e) {
    check.problem("manifest", e.what());
    return;
  }
  Json models = Json::array();
  for (const auto& m : manifest.models) {
    Json model{{"name", m.name}};
    bool complete = true;  // every file of the model could be read (else the checks downstream skip it)
    for (const char* key : {"features", "source_probs"}) {
      if (!m.has(key)) continue;
      Json by_split = Json::object();
      for (const auto& [split, path] : m.split_paths(key)) {
        auto h = check.expect_npy("manifest", path, fmt::format("{}: model '{}': {} of split '{}',", m.location(key), m.name, key, split));
        if (!h) {
          complete = false;
          continue;
        }
        by_split[split] = Json{{"rows", h->shape.empty() ? 0 : h->shape[0]}, {"file", path.string()}};
      }
      model[key] = std::move(by_split);
    }
    if (model.contains("source_probs") && model.contains("features"))
      for (const auto& [split, probs] : model["source_probs"].items()) {
        if (!model["features"].contains(split)) {
          check.problem("manifest", fmt::format("{}: model '{}': source_probs has split '{}' but its features have not",
                                                m.location("source_probs"), m.name, split));
          complete = false;
        } else if (probs["rows"] != model["features"][split]["rows"]) {
          check.problem("manifest", fmt::format("{}: model '{}': source_probs of split '{}' ({}) has {} rows but its features ({}) have {}",
                                                m.location("source_probs"), m.name, split, probs["file"].get<std::string>(),
                                                probs["rows"].get<std::size_t>(), model["features"][split]["file"].get<std::string>(),
                                                model["features"][split]["rows"].get<std::size_t>()));
          complete = false;
        }
      }
    if (!complete) model["unreadable"] = true;
    models.push_back(std::move(model));
  }
  check.facts()["features"] = Json{{"hub", manifest.name}, {"models", std::move(models)}, {"where", check.location_json("manifest")}};
}

// dataset.images: each split's folder or list file is there and lists images (their names and
// sizes only; no image is opened), and folders agree on their classes.
void check_images(DataCheck& check) {
  Json splits = Json::object();
  std::map<std::string, images::SplitListing> listings;
  for (const auto& [split, source] : check.params().split_paths("splits")) {
    const std::string param = "splits." + split;
    splits[split] = Json{{"file", source.string()}, {"where", check.location_json(param)}};
    std::error_code ec;
    if (!fs::exists(source, ec)) {
      const bool no_parent = !source.parent_path().empty() && !fs::is_directory(source.parent_path(), ec);
      check.problem(param, fmt::format("image folder or list file {}: no such folder or file{}", source.string(),
                                       no_parent ? " (its folder " + source.parent_path().string() + " does not exist either)"
                                                 : sibling_suggestion(source)));
      continue;
    }
    if (!fs::is_directory(source, ec)) {
      if (auto problem = data_file_problem(source)) {
        check.problem(param, fmt::format("image list file {}: {}", source.string(), *problem));
        continue;
      }
    }
    try {
      auto listing = images::list_split(source);
      splits[split]["rows"] = listing.images.size();
      listings.emplace(split, std::move(listing));
    } catch (const DataError& e) {
      check.problem(param, e.what());
    }
  }
  if (listings.size() == splits.size()) {  // every split listed: their classes can be compared
    std::vector<std::pair<std::string, std::string>> problems;
    images::shared_classes(listings, problems);
    for (const auto& [split, message] : problems) check.problem("splits." + split, message);
  }
  check.facts()["data"] = Json{{"kind", "classification"}, {"splits", std::move(splits)}};
}

}  // namespace

void add_images_data_check(NodeSpec& spec) { spec.data_check = check_images; }
void add_dataset_data_check(NodeSpec& spec) { spec.data_check = check_dataset; }
void add_hub_data_check(NodeSpec& spec) { spec.data_check = check_hub; }

}  // namespace caulk::adapters
