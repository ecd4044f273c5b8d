// The data check of every node with a model hub (declare_model_hub; caulk/data_check.hpp): before
// anything runs, the hub is given exactly one way, its manifest reads, each model names exactly one
// family and its files are there, and `only` names models of the hub, with a did-you-mean.
#include <fmt/format.h>

#include <algorithm>

#include "caulk/data_check.hpp"
#include "caulk/manifest.hpp"
#include "caulk/models/hub.hpp"
#include "caulk/models/model.hpp"

namespace fs = std::filesystem;

namespace caulk::models {

namespace {

// The models of the manifest (every problem with it said), or nothing when it cannot be read.
std::optional<std::vector<std::string>> manifest_models(DataCheck& check) {
  const fs::path file = check.params().path("manifest");
  if (!check.expect_file("manifest", file, "model hub manifest")) return std::nullopt;
  Manifest m;
  try {
    m = read_manifest(file, model_hub_schema());
  } catch (const DataError& e) {
    check.problem("manifest", e.what());
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (const ManifestModel& model : m.models) {
    names.push_back(model.name);
    const int families = model.has("checkpoint") + model.has("torchscript") + model.has("onnx");
    if (families != 1)
      check.problem("manifest", fmt::format("{}: model '{}' must name exactly one of checkpoint, torchscript or onnx ({} given)",
                                            model.location(), model.name, families));
    for (const char* key : {"checkpoint", "torchscript", "onnx", "weights"}) {
      if (!model.has(key)) continue;
      const fs::path path = model.path(key);
      if (auto why = data_file_problem(path))
        check.problem("manifest", fmt::format("{}: model '{}': {} {}: {}", model.location(key), model.name, key, path.string(), *why));
    }
  }
  return names;
}

// The models the `models` input carries, when the checks upstream know them ({"models": [...]}).
std::optional<std::vector<std::string>> input_models(const DataCheck& check) {
  std::vector<std::string> names;
  for (const auto* facts : check.inputs("models")) {
    if (!facts || !facts->contains("models")) return std::nullopt;  // made while running
    for (const auto& n : facts->at("models")) names.push_back(n.get<std::string>());
  }
  return names;
}

}  // namespace

void check_model_hub(DataCheck& check) {
  const bool manifest = check.params().has("manifest"), port = !check.inputs("models").empty();
  if (manifest && port) {
    check.problem("manifest", "give the models either through the `models` input or the `manifest` parameter, not both");
    return;
  }
  if (!manifest && !port) {
    check.problem("", "no models: connect the `models` input or give the `manifest` parameter");
    return;
  }
  const auto names = manifest ? manifest_models(check) : input_models(check);
  if (!names || !check.params().has("only")) return;
  for (const Value& v : check.params().get("only").as_array()) {
    const std::string name = v.as_string();
    if (std::find(names->begin(), names->end(), name) == names->end())
      check.problem("only", fmt::format("no model '{}' in the hub{}", name, did_you_mean_among(name, *names)));
  }
}

}  // namespace caulk::models
