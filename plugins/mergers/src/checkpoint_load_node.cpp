// checkpoint.load: a hub manifest of checkpoints as lazy handles (nothing is read but the
// manifest; files are opened and validated by the merge that uses them).
#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/manifest.hpp"
#include "caulk/models/hub.hpp"
#include "caulk/models/model.hpp"
#include "mergers/src/checkpoint_checks.hpp"
#include "mergers/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::mergers {

// The model hub schema (checkpoint, or torchscript with feature_method and weights; base) plus
// `fisher` (a .safetensors of the same tensor names).
const ManifestSchema& merge_hub_schema() {
  static const ManifestSchema schema = [] {
    ManifestSchema s = models::model_hub_schema();
    s.model_keys.push_back({"fisher", ManifestSchema::Key::Path, false});
    return s;
  }();
  return schema;
}

namespace {

class CheckpointLoad : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("checkpoint.load",
               "Checkpoints listed in a hub manifest ([[model]] name, checkpoint = file or sharded folder, or torchscript = .pt with "
               "feature_method and weights; optional fisher, at most one base = true), as lazy handles for the merge nodes");
    s.output("checkpoints", "Checkpoint", "every model of the manifest");
    s.param(ParamSpec::path("manifest", "the hub manifest (paths relative to it)"));
    add_checkpoint_load_data_check(s);
    return s;
  }
  void run(NodeContext& ctx) override {
    const fs::path file = ctx.params().path("manifest");
    const Manifest m = read_manifest(file, merge_hub_schema());
    auto out = std::make_shared<Checkpoint>();
    const ManifestModel* base = nullptr;
    for (const ManifestModel& model : m.models) {
      if (model.has("checkpoint") == model.has("torchscript") || model.has("onnx"))
        throw DataError(model.location(), fmt::format("model '{}' must name one of checkpoint (a caulk MLP or any safetensors) or "
                                                      "torchscript (a .pt, with optional weights); ONNX models cannot be merged",
                                                      model.name));
      CheckpointRef ref = models::checkpoint_of(models::source_of(model));
      ref.fisher = model.has("fisher") ? model.path("fisher") : fs::path();
      ref.base = model.flag("base");
      std::error_code ec;
      for (const char* key : {"checkpoint", "torchscript", "weights"})
        if (model.has(key) && !fs::exists(model.path(key), ec))
          throw DataError(model.location(key), fmt::format("model '{}': {} {} does not exist", model.name, key, model.path(key).string()));
      if (!ref.fisher.empty() && !fs::exists(ref.fisher, ec))
        throw DataError(model.location("fisher"),
                        fmt::format("model '{}': Fisher file {} does not exist", model.name, ref.fisher.string()));
      if (ref.base) {
        if (base)
          throw DataError(model.location("base"), fmt::format("model '{}' is marked base = true, but so is '{}' (at {}): at most one base",
                                                              model.name, base->name, base->location("base")));
        base = &model;
      }
      out->models.push_back(std::move(ref));
    }
    Json& sum = ctx.summary();
    sum["hub"] = m.name;
    sum["models"] = out->models.size();
    if (base) sum["base"] = base->name;
    ctx.publish("checkpoints", std::move(out));
  }
};

}  // namespace

void register_checkpoint_load(PluginRegistrar& r) { r.add_node<CheckpointLoad>(); }

}  // namespace caulk::mergers
