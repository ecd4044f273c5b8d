// The data checks of checkpoint.load and of the merge nodes (caulk/data_check.hpp): the manifest
// reads, every checkpoint and Fisher file named in it exists (a file, or a sharded folder) with a
// valid safetensors header, and a merge's `base` names a model of the checkpoints it merges, with a
// did-you-mean.
#include <fmt/format.h>

#include <algorithm>

#include "caulk/data_check.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/manifest.hpp"
#include "caulk/node.hpp"
#include "mergers/src/checkpoint_checks.hpp"

namespace fs = std::filesystem;

namespace caulk::mergers {

namespace {

void check_checkpoints(DataCheck& check) {
  const fs::path file = check.params().path("manifest");
  if (!check.expect_file("manifest", file, "hub manifest")) return;
  Manifest m;
  try {
    m = read_manifest(file, merge_hub_schema());
  } catch (const DataError& e) {
    check.problem("manifest", e.what());
    return;
  }
  Json names = Json::array();
  for (const ManifestModel& model : m.models) {
    names.push_back(model.name);
    for (const char* key : {"checkpoint", "torchscript", "weights", "fisher"}) {
      if (!model.has(key)) continue;
      const fs::path path = model.path(key);
      // Checkpoints (a sharded one is a folder), weights and Fisher files are safetensors, whose
      // headers are read here; a TorchScript module must be a regular file.
      const bool safetensors = std::string(key) != "torchscript";
      if (auto why = safetensors ? safetensors_problem(path) : data_file_problem(path))
        check.problem("manifest", fmt::format("{}: model '{}': {} {}: {}", model.location(key), model.name, key, path.string(), *why));
    }
  }
  check.facts()["checkpoints"] = Json{{"models", std::move(names)}};
}

void check_merge_base(DataCheck& check) {
  const std::string& base = check.params().string("base");
  if (base.empty()) return;
  std::vector<std::string> models;
  for (const auto* facts : check.inputs("checkpoints")) {
    if (!facts || !facts->contains("models")) return;  // made while running: cannot be known before
    for (const auto& n : facts->at("models")) models.push_back(n.get<std::string>());
  }
  if (std::find(models.begin(), models.end(), base) == models.end())
    check.problem("base", fmt::format("no model '{}' among the checkpoints merged{}", base, did_you_mean_among(base, models)));
}

}  // namespace

void add_checkpoint_load_data_check(NodeSpec& spec) { spec.data_check = check_checkpoints; }
void add_merge_data_check(NodeSpec& spec) { spec.data_check = check_merge_base; }

}  // namespace caulk::mergers
