#include "caulk/models/hub.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "caulk/error.hpp"
#include "caulk/manifest.hpp"
#include "onnx_entry.hpp"

namespace caulk::models {

void declare_model_hub(NodeSpec& s) {
  s.input_optional("models", "Checkpoint", "the models (e.g. from zoo.pretrain or tune.peft); or give `manifest`");
  s.param(ParamSpec::path("manifest",
                          "model hub manifest: [[model]] name and one of checkpoint (MLP), torchscript (.pt, with "
                          "feature_method and optional weights) or onnx (inference only; docs/models.md); or connect `models`")
              .optional());
  s.param(ParamSpec::list("only", "model names to use (default: every model of the hub)"));
  s.data_check = check_model_hub;
}

namespace {

const std::string& name_of(const ModelSource& s) { return s.name; }
const std::string& name_of(const CheckpointRef& r) { return r.model; }

// The hub's entries: from the `models` input or the manifest (exactly one of them), restricted to
// `only`, in hub order.
template <class Entry, class FromPort, class FromManifest>
std::vector<Entry> hub_entries(const NodeContext& ctx, FromPort from_port, FromManifest from_manifest) {
  const Params& p = ctx.params();
  const bool port = ctx.has_input("models"), manifest = p.has("manifest");
  if (port == manifest)
    throw Error(port ? "give the models either through the `models` input or the `manifest` parameter, not both"
                     : "no models: connect the `models` input or give the `manifest` parameter");
  std::vector<Entry> all;
  if (port) {
    for (const CheckpointRef& r : ctx.input<Checkpoint>("models")->models) all.push_back(from_port(r));
  } else {
    const Manifest m = read_manifest(p.path("manifest"), model_hub_schema());
    for (const auto& model : m.models) all.push_back(from_manifest(model));
  }
  if (!p.has("only")) return all;
  std::vector<Entry> chosen;
  for (const Value& v : p.get("only").as_array()) {
    const std::string name = v.as_string();
    auto it = std::find_if(all.begin(), all.end(), [&](const Entry& e) { return name_of(e) == name; });
    if (it == all.end()) throw Error(fmt::format("`only` names model '{}', which is not in the hub", name));
    chosen.push_back(*it);
  }
  return chosen;
}

}  // namespace

std::vector<ModelSource> hub_sources(const NodeContext& ctx) {
  return hub_entries<ModelSource>(
      ctx, [](const CheckpointRef& r) { return source_of(r); }, [](const ManifestModel& m) { return source_of(m); });
}

std::vector<CheckpointRef> hub_checkpoints(const NodeContext& ctx) {
  return hub_entries<CheckpointRef>(
      ctx, [](const CheckpointRef& r) { return r; },
      [](const ManifestModel& m) {
        CheckpointRef ref = checkpoint_of(source_of(m));  // an ONNX entry is refused (inference only)
        ref.base = m.flag("base");
        return ref;
      });
}

ModelSource source_of(const CheckpointRef& ref) {
  ModelSource s;
  s.name = ref.model;
  if (ref.module.empty()) {
    s.checkpoint = ref.path;
  } else {
    s.torchscript = ref.module;
    s.weights = ref.path;
    s.feature_method = ref.feature_method;
  }
  return s;
}

CheckpointRef checkpoint_of(const ModelSource& s) {
  if (!s.onnx.empty()) throw Error(onnx_inference_only(s.name, s.onnx.string()));
  CheckpointRef ref;
  ref.model = s.name;
  if (s.torchscript.empty()) {
    ref.path = s.checkpoint;
  } else {
    ref.module = s.torchscript;
    ref.path = s.weights;
    ref.feature_method = s.feature_method;
  }
  return ref;
}

nlohmann::ordered_json source_to_json(const ModelSource& s) {
  return {{"name", s.name},
          {"checkpoint", s.checkpoint.string()},
          {"torchscript", s.torchscript.string()},
          {"onnx", s.onnx.string()},
          {"feature_method", s.feature_method},
          {"feature_output", s.feature_output},
          {"weights", s.weights.string()},
          {"where", s.where}};
}

ModelSource source_from_json(const nlohmann::ordered_json& j) {
  ModelSource s;
  s.name = j.at("name").get<std::string>();
  s.checkpoint = j.at("checkpoint").get<std::string>();
  s.torchscript = j.at("torchscript").get<std::string>();
  s.onnx = j.at("onnx").get<std::string>();
  s.feature_method = j.at("feature_method").get<std::string>();
  s.feature_output = j.at("feature_output").get<std::string>();
  s.weights = j.at("weights").get<std::string>();
  s.where = j.at("where").get<std::string>();
  return s;
}

}  // namespace caulk::models
