#include "mlp_merges/src/common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/seeding/seeding.hpp"
#include "caulk/units.hpp"

namespace fs = std::filesystem;

namespace caulk::mlp_merges {

void declare_checkpoints(NodeSpec& s, const std::string& doc) { s.inputs_many("checkpoints", "Checkpoint", doc); }

LoadedModels list_checkpoints(const NodeContext& ctx, std::size_t minimum) {
  LoadedModels out;
  std::set<std::string> seen;
  for (const auto& c : ctx.inputs<Checkpoint>("checkpoints"))
    for (const auto& ref : c->models) {
      if (!seen.insert(ref.model).second)
        throw Error(fmt::format("model '{}' comes twice through `checkpoints` (from '{}' among others); names must differ", ref.model,
                                c->producer_node));
      out.refs.push_back(ref);
      out.names.push_back(ref.model);
    }
  if (out.refs.size() < minimum)
    throw Error(fmt::format("`checkpoints` holds {} model{}; this node needs at least {}", out.refs.size(), out.refs.size() == 1 ? "" : "s",
                            minimum));
  return out;
}

LoadedModels load_checkpoints(const NodeContext& ctx, bool fold, std::size_t minimum) {
  LoadedModels out = list_checkpoints(ctx, minimum);
  out.models.resize(out.refs.size());
  ctx.for_each_unit("model", out.names, [&](std::size_t i) { out.models[i] = load_checkpoint(out.refs[i].path, fold); });
  return out;
}

mlp::Model<float> load_checkpoint(const fs::path& path, bool fold) {
  mlp::Model<float> m = mlp::load_model(path);
  if (fold) return mlp::fold_lora(m);
  return m;
}

void declare_merge_output(NodeSpec& s) {
  s.param(ParamSpec::string("name", "", "the merged model's name (default: the node id)"));
  s.param(ParamSpec::string("output", "",
                            "the merged checkpoint (.safetensors), relative to OUT unless absolute (default: <node id>/<name>.safetensors)"));
  s.param(ParamSpec::flag("overwrite", false, "replace an existing output (otherwise an existing output is an error and stays untouched)"));
}

std::string merged_name(const NodeContext& ctx) {
  const std::string& name = ctx.params().string("name");
  return name.empty() ? ctx.id() : name;
}

fs::path merge_output_path(const NodeContext& ctx) {
  const Params& p = ctx.params();
  const std::string& output = p.string("output");
  fs::path path = ctx.out_dir() / ctx.id() / (merged_name(ctx) + ".safetensors");
  if (!output.empty()) path = fs::path(output).is_absolute() ? fs::path(output) : ctx.out_dir() / output;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(path, ec)) && !p.flag("overwrite"))
    throw Error(fmt::format("the output {} already exists; set overwrite = true to replace it (it was left untouched)", path.string()));
  if (fs::is_directory(path, ec)) throw Error(fmt::format("the output {} is a folder, not a file", path.string()));
  return path;
}

std::vector<std::string> requested_splits(const Params& p, const Dataset& data) {
  std::vector<std::string> out;
  if (p.has("splits")) {
    for (const Value& v : p.get("splits").as_array()) out.push_back(v.as_string());
  } else {
    for (const auto& s : data.splits)
      if (s.inputs) out.push_back(s.name);
  }
  if (out.empty()) throw Error("the dataset has no split with model inputs (give dataset.load `inputs`)");
  return out;
}

Json dataset_splits_to_json(const Dataset& data, const std::vector<std::string>& splits) {
  Dataset only;
  only.kind = data.kind;
  only.class_names = data.class_names;
  for (const auto& s : data.splits)
    if (std::find(splits.begin(), splits.end(), s.name) != splits.end()) only.splits.push_back(s);
  return dataset_to_json(only);
}

void check_fits(const mlp::Model<float>& m, const std::string& name, const Dataset& data, long inputs) {
  const bool classification = data.kind == TaskKind::Classification;
  if (classification != (m.output == mlp::Output::Softmax))
    throw Error(fmt::format("model '{}' outputs {} but the dataset is a {} task", name,
                            m.output == mlp::Output::Softmax ? "class probabilities" : "regression values", task_kind_name(data.kind)));
  if (static_cast<std::size_t>(m.output_dim()) != data.num_targets())
    throw Error(fmt::format("model '{}' has {} outputs but the dataset has {} {}", name, m.output_dim(), data.num_targets(),
                            classification ? "classes" : "target columns"));
  if (m.input_dim() != inputs)
    throw Error(fmt::format("model '{}' takes {} inputs but the dataset's inputs have {} columns", name, m.input_dim(), inputs));
}

mlp::Samples subsample(const mlp::Samples& s, std::size_t max, std::uint64_t seed) {
  const auto n = static_cast<std::size_t>(s.size());
  if (max == 0 || max >= n) return s;
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  seeding::SeededUniform rng(seed);
  rng.shuffle(order);
  order.resize(max);
  std::sort(order.begin(), order.end());
  return s.subset(order);
}

}  // namespace caulk::mlp_merges
