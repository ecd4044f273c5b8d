// A node's hub of models of any family: the `models` input (Checkpoint) or a manifest whose
// [[model]]s name a checkpoint, a TorchScript file or an ONNX file (model_hub_schema()).
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "caulk/context.hpp"
#include "caulk/data_check.hpp"
#include "caulk/models/model.hpp"

namespace caulk::models {

// Declares the optional `models` input (Checkpoint), the optional `manifest` parameter (a model
// hub manifest of any family) and `only` (model names to keep); a node takes its models from
// exactly one of `models` and `manifest`. Installs check_model_hub as the node's data check: a
// node that adds a check of its own calls it from there.
void declare_model_hub(NodeSpec& s);

// The data check of a node with a model hub (caulk/data_check.hpp): exactly one of `models` and
// `manifest`; the manifest reads, each model names one family and its files exist (with a
// did-you-mean); `only` names models of the hub, when the hub is known before running.
void check_model_hub(DataCheck& check);

// The models of the `models` input (each entry as source_of gives it) or the manifest, in hub
// order, restricted to `only`. Throws Error when neither or both are given, or when `only` names
// a model the hub lacks.
std::vector<ModelSource> hub_sources(const NodeContext& ctx);
// The same hub as Checkpoint entries: the `models` input's as they came, a manifest's through
// checkpoint_of (with its `base` flag). For nodes that tune, analyse or merge (no ONNX).
std::vector<CheckpointRef> hub_checkpoints(const NodeContext& ctx);

// A Checkpoint entry as the model it names, and back: an MLP checkpoint is `checkpoint`; a
// TorchScript entry is its module (`torchscript`), feature method and overriding `weights`.
// checkpoint_of refuses an ONNX model (inference only: no weights a Checkpoint can carry).
ModelSource source_of(const CheckpointRef& ref);
CheckpointRef checkpoint_of(const ModelSource& s);

// A ModelSource in a unit description and back (paths as strings, exactly).
nlohmann::ordered_json source_to_json(const ModelSource& s);
ModelSource source_from_json(const nlohmann::ordered_json& j);

}  // namespace caulk::models
