// What every merge node shares: the `checkpoints` input, the engine's parameters (output,
// overwrite, dtype, precision, max_shard_size, allow_non_finite, base, name), per-model weights
// with per-tensor rules, Fisher merging's parameters, progress bars, the summary and the
// published Checkpoint.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/units.hpp"
#include "mergers/algorithms/merge_engine.hpp"
#include "mergers/algorithms/merge_methods.hpp"
#include "mergers/algorithms/tensor_rules.hpp"

namespace caulk::mergers {

// Fisher merging's parameters `floor`, `floor_mode` and `normalize_fisher` (merge.fisher, and
// search.merge_coefficients with `prefix` "fisher: "), and the method they describe.
void declare_fisher_params(NodeSpec& s, const std::string& prefix);
std::unique_ptr<merge::FisherMerge> fisher_method(const Params& p, std::vector<merge::TensorParameter> lambdas);

// The models to merge and the base they are task vectors of. TorchScript models merge their
// weights (by PyTorch's parameter names); the merged model is the first model's module (and
// feature method) with the merged weights.
struct MergeJob {
  std::vector<merge::MergeModel> models;
  std::optional<merge::MergeModel> base;
  std::filesystem::path module;  // TorchScript .pt of the merged model (empty: MLP checkpoints)
  std::string feature_method;
  std::vector<std::string> names() const;
};

// The models and base as unit descriptions carry them (paths, not open files).
Json merge_job_to_json(const MergeJob& job);
MergeJob merge_job_from_json(const Json& j);

// Declares the `checkpoints` input, the `checkpoints` output and the engine's parameters.
void declare_merge_node(NodeSpec& s);
// Declares `weights` (a table of model name -> number or per-tensor rules).
void declare_weights(NodeSpec& s, const std::string& doc);
// Declares a per-tensor number parameter (a number, or rules) in [lo, hi].
void declare_tensor_param(NodeSpec& s, const std::string& name, double fallback, double lo, double hi, const std::string& doc);

// Every model on the `checkpoints` port. The base is the model the `base` parameter names, else the
// one marked base = true (at most one); it is never among the merged models. Throws Error on a
// model name given twice, an unknown `base`, two bases, or a base the method needs but lacks.
// TorchScript models and MLP checkpoints do not mix, nor do different feature methods; a
// TorchScript model with its module's own weights (no `path`) has them written to
// <out>/<node id>/<model>.weights.safetensors first, so the engine merges files alike.
MergeJob collect_models(const NodeContext& ctx, bool uses_base);
// The per-model weights from `param` (absent models weigh `fallback`); unknown names are errors.
std::vector<merge::TensorParameter> read_weights(const Params& p, const std::string& param, const std::vector<merge::MergeModel>& models,
                                                 double fallback, double lo, double hi);
merge::TensorParameter read_tensor_param(const Params& p, const std::string& name, double fallback, double lo, double hi);
merge::MergeOptions read_merge_options(const NodeContext& ctx);
// `output` resolved: relative paths are relative to the run's output folder; the default is
// <out>/<node id>/<name>.safetensors.
std::filesystem::path output_path(const NodeContext& ctx);
// "5GB", "500MiB", "1024" (bytes), ... as bytes; throws Error naming the text.
std::uint64_t parse_size(const std::string& text);

// How to build a merge method in any process: the node class's static build function and what it
// needs beside the node's parameters. A node builds its own method from its recipe too, and its
// run_unit (merge_file_unit with the same build function) rebuilds it for an output file written
// on another rank, so every file uses exactly rank 0's method.
using MethodBuilder = std::unique_ptr<merge::MergeMethod> (*)(const Params& p, const Json& extra,
                                                              const std::vector<merge::MergeModel>& models);
struct MethodRecipe {
  MethodBuilder build = nullptr;
  Json extra = Json::object();
};

// Runs the merge, fills the summary and publishes the merged model on `checkpoints`. In a single
// process: with progress bars (tensors, and MiB read plus written). Under mpirun: each output
// file (shard) is a unit, written into the staged output by whichever rank takes it.
void run_and_publish(NodeContext& ctx, const MergeJob& job, const MethodRecipe& recipe,
                     const std::map<std::string, std::string>& parameters);

// The unit that writes one output file of a staged merge: a merge node's run_unit is
// `merge_file_unit(ctx, payload, &build)` with its own build function.
Json merge_file_unit(UnitContext& ctx, const Json& payload, MethodBuilder build);
// The merge with each output file a unit (run_and_publish under mpirun; merge_distribution.cpp).
merge::MergeReport run_distributed(const NodeContext& ctx, const MergeJob& job, const MethodRecipe& recipe, merge::MergeMethod& method,
                                   const std::filesystem::path& output, const merge::MergeOptions& options);

// The merge alone, with progress, returning the report (for nodes that merge several times).
merge::MergeReport run_with_progress(const NodeContext& ctx, const MergeJob& job, merge::MergeMethod& method,
                                     const std::filesystem::path& output, merge::MergeOptions options, const std::string& what);

}  // namespace caulk::mergers
