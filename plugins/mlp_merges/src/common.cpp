#include "mlp_merges/src/common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "caulk/io/safetensors.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/seeding/seeding.hpp"
#include "caulk/units.hpp"

namespace fs = std::filesystem;

namespace caulk::mlp_merges {

void declare_checkpoints(NodeSpec& s, const std::string& doc) { s.inputs_many("checkpoints", "Checkpoint", doc); }

namespace {
// Why a node cannot take a TorchScript model (what of an MLP it needs).
std::string mlp_internals(const std::string& type) {
  if (type == "merge.regmean")
    return "it needs the Gram matrix of the inputs of each linear layer, which caulk computes for its MLPs' layers only";
  if (type == "analysis.weight_patterns") return "it draws an MLP's first-layer weights as images, one per input";
  if (type == "ensemble.features")
    return "head = \"average\" averages the heads of MLPs (the layers after the feature layer); use head = \"refit\"";
  return "it runs its models with caulk's MLP runtime";
}
}  // namespace

void refuse_torchscript(const NodeContext& ctx, const std::vector<CheckpointRef>& refs) {
  for (const auto& ref : refs)
    if (!ref.module.empty())
      throw Error(fmt::format(
          "{} cannot take model '{}', a TorchScript model ({}{}): {} (docs/models.md lists what takes "
          "TorchScript models)",
          ctx.type(), ref.model, ref.module.string(), ref.path.empty() ? "" : ", weights " + ref.path.string(), mlp_internals(ctx.type())));
}

LoadedModels list_checkpoints(const NodeContext& ctx, std::size_t minimum, bool torchscript) {
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
  if (!torchscript) refuse_torchscript(ctx, out.refs);
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

namespace {

// The first NaN or infinite value of a .safetensors file, as "tensor 'x', element 8 (index [1, 3])
// is NaN" (the element counted in the file's row-major order), or "" when there is none.
std::string first_non_finite_value(const fs::path& file) {
  try {
    const io::SafetensorsFile f = io::SafetensorsFile::open(file);
    for (const io::TensorInfo& t : f.tensors()) {
      const std::vector<double> v = f.to_double(t.name);
      for (std::size_t k = 0; k < v.size(); ++k) {
        if (std::isfinite(v[k])) continue;
        std::string index;
        for (std::size_t d = t.shape.size(), rest = k; d-- > 0;) {
          index = fmt::format("{}{}", rest % std::max<std::size_t>(t.shape[d], 1), index.empty() ? "" : ", " + index);
          rest /= std::max<std::size_t>(t.shape[d], 1);
        }
        return fmt::format("tensor '{}', element {} (index [{}]) is {}", t.name, k, index,
                           std::isnan(v[k]) ? "NaN"
                           : v[k] > 0       ? "inf"
                                            : "-inf");
      }
    }
  } catch (const std::exception&) {
    // Not readable as one file: the loader's own message stands.
  }
  return {};
}

}  // namespace

mlp::Model<float> load_checkpoint(const fs::path& path, bool fold) {
  mlp::Model<float> m;
  try {
    m = mlp::load_model(path);
  } catch (const DataError& e) {
    // The runtime refuses NaN and infinity naming the tensor only: find the element (only on this
    // error path, so loading reads each file once).
    if (const std::string where = first_non_finite_value(e.file()); !where.empty())
      throw DataError(e.file(), where + ": the MLP runtime refuses non-finite parameters (repair the checkpoint or leave the model out)");
    throw;
  }
  if (fold) return mlp::fold_lora(m);
  return m;
}

void declare_merge_output(NodeSpec& s) {
  s.param(ParamSpec::string("name", "", "the merged model's name (default: the node id)"));
  s.param(ParamSpec::string(
      "output", "", "the merged checkpoint (.safetensors), relative to OUT unless absolute (default: <node id>/<name>.safetensors)"));
  s.param(ParamSpec::flag(
      "overwrite", false,
      "replace an existing output that caulk wrote (anything else, and any existing output without it, is an error and stays untouched)"));
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
  if (fs::is_directory(path, ec)) throw Error(fmt::format("the output {} is a folder, not a file", path.string()));
  // Temporaries killed merges left beside it go first; then the same rule the commit enforces.
  io::recover_stale_temporaries(path.parent_path().empty() ? fs::path(".") : path.parent_path());
  io::check_replaceable(path, merge_output_rule(ctx));
  return path;
}

io::OnExisting merge_output_rule(const NodeContext& ctx) {
  return ctx.params().flag("overwrite") ? io::OnExisting::ReplaceOwn : io::OnExisting::Refuse;
}

std::map<std::string, std::string> marked_output(std::map<std::string, std::string> metadata) {
  metadata[io::kWrittenByKey] = io::kWrittenByValue;
  return metadata;
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
  return s.subset(seeding::first_of(seeding::seeded_order(n, seed), max));
}

}  // namespace caulk::mlp_merges
