#include "caulk/model_nodes/model_inputs.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "caulk/models/inputs.hpp"
#include "caulk/manifest.hpp"
#include "caulk/models/hub.hpp"

namespace caulk::models {

void declare_hub(NodeSpec& s) {
  s.input_optional("models", "Checkpoint", "the models (e.g. from zoo.pretrain); or give `manifest`");
  s.param(ParamSpec::path("manifest",
                          "model hub manifest: [[model]] name and checkpoint (MLP) or torchscript (.pt, with feature_method and "
                          "optional weights; docs/models.md); or connect `models`")
              .optional());
  s.param(ParamSpec::list("only", "model names to use (default: every model of the hub)"));
}

std::vector<CheckpointRef> hub_models(const NodeContext& ctx) {
  const Params& p = ctx.params();
  const bool port = ctx.has_input("models"), manifest = p.has("manifest");
  if (port == manifest)
    throw Error(port ? "give the models either through the `models` input or the `manifest` parameter, not both"
                     : "no models: connect the `models` input or give the `manifest` parameter");
  std::vector<CheckpointRef> all;
  if (port) {
    all = ctx.input<Checkpoint>("models")->models;
  } else {
    // Any family's manifest (MLP checkpoints, TorchScript modules); an ONNX entry is refused by
    // checkpoint_of (inference only).
    const Manifest m = read_manifest(p.path("manifest"), model_hub_schema());
    for (const auto& model : m.models) {
      CheckpointRef ref = checkpoint_of(source_of(model));
      ref.base = model.flag("base");
      all.push_back(std::move(ref));
    }
  }
  if (!p.has("only")) return all;
  std::vector<CheckpointRef> chosen;
  for (const Value& v : p.get("only").as_array()) {
    const std::string name = v.as_string();
    auto it = std::find_if(all.begin(), all.end(), [&](const CheckpointRef& r) { return r.model == name; });
    if (it == all.end()) throw Error(fmt::format("`only` names model '{}', which is not in the hub", name));
    chosen.push_back(*it);
  }
  return chosen;
}

mlp::Samples split_samples(const Dataset& data, const std::string& split) {
  const DatasetSplit& s = split_with_inputs(data, split);
  const MatrixView X = s.inputs->open(fmt::format("inputs of split '{}'", split));
  mlp::Samples out;
  if (X.scalar_type() == ScalarType::F32 && X.row_major()) {
    out.X = Eigen::Map<const mlp::Mat<float>>(static_cast<const float*>(X.data()), static_cast<Eigen::Index>(X.cols()),
                                              static_cast<Eigen::Index>(X.rows()));
    X.check_intact();  // read from the mapping directly
  } else {
    out.X = X.to_double().transpose().cast<float>();
  }
  if (data.kind == TaskKind::Classification)
    out.y.classes = s.classes;
  else
    out.y.values = s.targets.transpose().cast<float>();
  return out;
}

std::vector<std::string> splits_with_inputs(const Dataset& data) {
  std::vector<std::string> out;
  for (const auto& s : data.splits)
    if (s.inputs) out.push_back(s.name);
  return out;
}

}  // namespace caulk::models
