// What the mlp_merges nodes share: the checkpoints they read (listed for units that load their own
// model, or loaded into memory: native MLPs are small), a dataset split as samples, the merged
// file's path under the `overwrite` rule, and checks that models fit a dataset.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/io/durable.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/model_nodes/model_inputs.hpp"

namespace caulk::mlp_merges {

struct LoadedModels {
  std::vector<CheckpointRef> refs;
  std::vector<std::string> names;
  std::vector<mlp::Model<float>> models;
};

// Declares the `checkpoints` input (several sources allowed).
void declare_checkpoints(NodeSpec& s, const std::string& doc);
// Throws Error naming the node, the model and why, for the first TorchScript model of `refs`.
void refuse_torchscript(const NodeContext& ctx, const std::vector<CheckpointRef>& refs);
// Every checkpoint of every source, in order, not loaded (`models` stays empty): for nodes whose
// units load their own model. Throws Error when a model name occurs twice, a model is a
// TorchScript model (refuse_torchscript), or there are fewer than `minimum` models.
// `torchscript`: the node runs TorchScript models too (through the model interface).
LoadedModels list_checkpoints(const NodeContext& ctx, std::size_t minimum = 1, bool torchscript = false);
// The same, loaded (LoRA folded into its layers when `fold`), for nodes that need every model in
// memory. Throws Error as list_checkpoints does, or naming the model whose file fails to load.
LoadedModels load_checkpoints(const NodeContext& ctx, bool fold, std::size_t minimum = 1);
// One checkpoint's model (LoRA folded when `fold`), as load_checkpoints loads it: what a unit
// running on any rank loads from the checkpoint's path.
mlp::Model<float> load_checkpoint(const std::filesystem::path& path, bool fold);

// Declares `name` (the merged model's name), `output` (the merged file) and `overwrite`, with the
// mergers family's meaning, so merges of either family are configured alike.
void declare_merge_output(NodeSpec& s);
// `name`, or the node id.
std::string merged_name(const NodeContext& ctx);
// The merged file's path: `output` (relative to OUT unless absolute), or OUT/<id>/<name>.safetensors.
// Throws Error when it exists and `overwrite` is false, or is not an output caulk wrote (checked
// before any work, so the file stays untouched; the commit enforces it again atomically,
// caulk/io/durable.hpp).
std::filesystem::path merge_output_path(const NodeContext& ctx);
// How the merged file's commit treats an existing one: refused, or replaced only if caulk wrote it.
io::OnExisting merge_output_rule(const NodeContext& ctx);
// `metadata` with the mark that lets a later `overwrite = true` replace the file.
std::map<std::string, std::string> marked_output(std::map<std::string, std::string> metadata);

// A split's model inputs as samples: the models family's own reading, shared.
using models::split_samples;
// The `splits` list parameter, or every split with model inputs.
std::vector<std::string> requested_splits(const Params& p, const Dataset& data);
// Throws Error unless the model's outputs fit the dataset (softmax with C outputs for a
// classification task, identity with T outputs for regression) and it reads `inputs` columns.
void check_fits(const mlp::Model<float>& m, const std::string& name, const Dataset& data, long inputs);

// The first `max` of a seeded shuffle of the samples, in their original order (all when max is 0
// or at least the count).
mlp::Samples subsample(const mlp::Samples& s, std::size_t max, std::uint64_t seed);

}  // namespace caulk::mlp_merges
