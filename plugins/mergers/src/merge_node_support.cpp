#include "mergers/src/merge_node_support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cctype>

#include "caulk/models/hub.hpp"
#include "caulk/models/model.hpp"
#include "mergers/algorithms/merge_output.hpp"
#include "mergers/src/checkpoint_checks.hpp"

namespace fs = std::filesystem;

namespace caulk::mergers {

std::vector<std::string> MergeJob::names() const {
  std::vector<std::string> out;
  for (const auto& m : models) out.push_back(m.name);
  return out;
}

void declare_merge_node(NodeSpec& s) {
  s.inputs_many("checkpoints", "Checkpoint", "the models to merge, of one architecture (and the base, for task-vector methods)");
  s.output("checkpoints", "Checkpoint", "the merged model (one checkpoint named after `name`)");
  s.param(ParamSpec::string("output", "",
                            "where to write: a .safetensors file, or a folder (sharded above max_shard_size); relative to the run's "
                            "output folder (default: <node id>/<name>.safetensors)"));
  s.param(ParamSpec::flag(
      "overwrite", false,
      "replace an existing output that caulk wrote (anything else, and any existing output without it, is an error and stays untouched)"));
  s.param(ParamSpec::choice("dtype", "auto", {"auto", "F32", "F16", "BF16", "F64"},
                            "output dtype (auto: each tensor's input dtype); narrowing rounds to nearest even"));
  s.param(ParamSpec::choice("precision", "float32", {"float32", "float64"}, "arithmetic precision"));
  s.param(ParamSpec::string("max_shard_size", "5GB", "folder output: shard when the data is larger than this (e.g. \"500MB\", \"2GiB\")")
              .validate([](const Value& v) -> std::string {
                try {
                  parse_size(v.as_string());
                  return {};
                } catch (const Error& e) {
                  return e.what();
                }
              }));
  s.param(
      ParamSpec::flag("allow_non_finite", false,
                      "merge NaN and infinity as they come (otherwise a model holding one, or a merged value that overflows, is an error "
                      "naming the model, file, tensor and element)"));
  s.param(ParamSpec::string("base", "", "the model to use as the base (default: the one marked base = true, if any)"));
  s.param(ParamSpec::string("name", "", "the merged model's name (default: the node id)"));
  add_merge_data_check(s);
}

void declare_fisher_params(NodeSpec& s, const std::string& prefix) {
  s.param(ParamSpec::real("floor", 1e-6, prefix + "the Fisher floor: entries without Fisher mass take their value from the others")
              .at_least(0));
  s.param(ParamSpec::choice("floor_mode", "max", {"max", "add"},
                            prefix + "how the floor applies: max(F, floor) (Matena and Raffel's code) or F + floor (FusionBench's)"));
  s.param(ParamSpec::flag(
      "normalize_fisher", true,
      prefix + "divide each coefficient by the L2 norm of its model's whole Fisher (plus the floor when floor_mode = \"add\"), "
               "as Matena and Raffel and FusionBench do"));
}

std::unique_ptr<merge::FisherMerge> fisher_method(const Params& p, std::vector<merge::TensorParameter> lambdas) {
  const auto mode = p.string("floor_mode") == "add" ? merge::FisherMerge::FloorMode::Add : merge::FisherMerge::FloorMode::Max;
  return std::make_unique<merge::FisherMerge>(std::move(lambdas), p.real("floor"), mode, p.flag("normalize_fisher"));
}

namespace {
std::string check_weights_table(const Value& v, double lo, double hi) {
  if (!v.is_table()) return "expected a table of model name = weight (a number or per-tensor rules)";
  for (const auto& [model, value] : v.as_table())
    if (auto problem = merge::check_tensor_parameter(value, lo, hi); !problem.empty()) return fmt::format("model '{}': {}", model, problem);
  return {};
}
}  // namespace

void declare_weights(NodeSpec& s, const std::string& doc) {
  s.param(ParamSpec::table("weights", doc +
                                          "; a table of model name = number, or = [{ match = \"glob or re:regex\", value = number }, ...] "
                                          "for per-tensor weights (default: 1 for every model)")
              .validate([](const Value& v) { return check_weights_table(v, -1e6, 1e6); }));
}

void declare_tensor_param(NodeSpec& s, const std::string& name, double fallback, double lo, double hi, const std::string& doc) {
  s.param(
      ParamSpec::any(name, fmt::format("{} (default {}); a number or per-tensor rules [{{ match = \"glob or re:regex\", value = x }}, ...]",
                                       doc, fallback))
          .validate([lo, hi](const Value& v) { return merge::check_tensor_parameter(v, lo, hi); }));
}

namespace {
// The module every model shares (docs/models.md): all MLP checkpoints, or all TorchScript models
// of one feature method, whose weights the engine checks tensor by tensor (names and shapes). A
// TorchScript model on its module's own weights gets them exported, by PyTorch's names.
void job_module(const NodeContext& ctx, std::vector<CheckpointRef>& all, MergeJob& job) {
  const CheckpointRef& first = all.front();
  for (const auto& m : all) {
    if (m.module.empty() != first.module.empty()) {
      const CheckpointRef& script = m.module.empty() ? first : m;
      const CheckpointRef& other = m.module.empty() ? m : first;
      throw Error(
          fmt::format("{}: model '{}' is a TorchScript model ({}) but model '{}' is not ({}): merge models of one "
                      "family and architecture (e.g. fine-tunes of one pre-trained TorchScript module)",
                      ctx.type(), script.model, script.module.string(), other.model, other.path.string()));
    }
    if (m.feature_method != first.feature_method)
      throw Error(
          fmt::format("{}: models '{}' and '{}' name different feature methods ('{}' and '{}'): the merged model can "
                      "have only one; merge models of one architecture",
                      ctx.type(), first.model, m.model, first.feature_method, m.feature_method));
    if (m.module != first.module)
      ctx.log(
          fmt::format("models '{}' ({}) and '{}' ({}) come from different module files; their weights must match by name "
                      "and shape, and the merged model runs in the first one's module",
                      first.model, first.module.string(), m.model, m.module.string()));
  }
  job.module = first.module;
  job.feature_method = first.feature_method;
  for (auto& m : all) {
    if (m.module.empty() || !m.path.empty()) continue;
    const fs::path weights = ctx.out_dir() / ctx.id() / (m.model + ".weights.safetensors");
    fs::create_directories(weights.parent_path());
    const std::unique_ptr<models::Model> model = models::open_model(models::source_of(m));
    models::save_weights(*model, weights);
    m.path = weights;
  }
}
}  // namespace

MergeJob collect_models(const NodeContext& ctx, bool uses_base) {
  std::vector<CheckpointRef> all;
  for (const auto& c : ctx.inputs<Checkpoint>("checkpoints"))
    for (const auto& m : c->models) {
      for (const auto& seen : all)
        if (seen.model == m.model)
          throw Error(
              fmt::format("model '{}' arrives twice on `checkpoints` (give the producing nodes different `suffix` or `name`s)", m.model));
      all.push_back(m);
    }
  const std::string base_name = ctx.params().string("base");
  MergeJob job;
  if (!all.empty()) job_module(ctx, all, job);
  for (const auto& m : all) {
    const bool is_base = base_name.empty() ? m.base : m.model == base_name;
    merge::MergeModel mm{m.model, m.path, m.fisher};
    if (!is_base) {
      job.models.push_back(std::move(mm));
      continue;
    }
    if (job.base)
      throw Error(fmt::format("two models are marked base = true ('{}' and '{}'): name the one to use with the `base` parameter",
                              job.base->name, m.model));
    job.base = std::move(mm);
  }
  if (!base_name.empty() && !job.base) {
    std::string names;
    for (const auto& m : all) names += (names.empty() ? "" : ", ") + m.model;
    throw Error(fmt::format("`base` names '{}', which is not among the checkpoints ({})", base_name, names));
  }
  if (job.models.empty()) throw Error("no models to merge on `checkpoints` (besides the base)");
  if (!uses_base && job.base) {
    ctx.log(fmt::format("'{}' is the base; this method uses no base, so it is left out of the merge", job.base->name));
    job.base.reset();
  }
  return job;
}

std::vector<merge::TensorParameter> read_weights(const Params& p, const std::string& param, const std::vector<merge::MergeModel>& models,
                                                 double fallback, double lo, double hi) {
  std::vector<merge::TensorParameter> out(models.size(), merge::TensorParameter(fallback));
  if (!p.has(param)) return out;
  for (const auto& [name, value] : p.get(param).as_table()) {
    auto it = std::find_if(models.begin(), models.end(), [&](const merge::MergeModel& m) { return m.name == name; });
    if (it == models.end()) {
      std::string names;
      for (const auto& m : models) names += (names.empty() ? "" : ", ") + m.name;
      throw Error(
          fmt::format("{}: `{}` names model '{}', which is not among the merged models ({})", value.where().str(), param, name, names));
    }
    out[static_cast<std::size_t>(it - models.begin())] = merge::parse_tensor_parameter(value, param + "." + name, fallback, lo, hi);
  }
  return out;
}

merge::TensorParameter read_tensor_param(const Params& p, const std::string& name, double fallback, double lo, double hi) {
  if (!p.has(name)) return merge::TensorParameter(fallback);
  return merge::parse_tensor_parameter(p.get(name), name, fallback, lo, hi);
}

std::uint64_t parse_size(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  std::string unit = text.substr(i);
  unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double number = 0;
  try {
    std::size_t used = 0;
    number = std::stod(text.substr(0, i), &used);
    if (used != i) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    throw Error(fmt::format("size '{}' is not a number with an optional unit (B, KB, MB, GB, KiB, MiB, GiB)", text));
  }
  double scale = 0;
  for (auto [name, factor] : {std::pair{"", 1.0},
                              {"B", 1.0},
                              {"KB", 1e3},
                              {"MB", 1e6},
                              {"GB", 1e9},
                              {"TB", 1e12},
                              {"KIB", 1024.0},
                              {"MIB", 1048576.0},
                              {"GIB", 1073741824.0},
                              {"TIB", 1099511627776.0}})
    if (unit == name) scale = factor;
  if (scale == 0) throw Error(fmt::format("size '{}': unknown unit '{}' (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", text, text.substr(i)));
  if (!(number * scale >= 1)) throw Error(fmt::format("size '{}' is below one byte", text));
  return static_cast<std::uint64_t>(number * scale);
}

merge::MergeOptions read_merge_options(const NodeContext& ctx) {
  const Params& p = ctx.params();
  merge::MergeOptions o;
  o.precision = p.string("precision") == "float64" ? merge::Precision::F64 : merge::Precision::F32;
  if (p.string("dtype") != "auto") o.output_dtype = io::dtype_from_safetensors_name(p.string("dtype"));
  o.overwrite = p.flag("overwrite");
  o.allow_non_finite = p.flag("allow_non_finite");
  o.max_shard_bytes = parse_size(p.string("max_shard_size"));
  return o;
}

std::string merged_name(const NodeContext& ctx) {
  const std::string& name = ctx.params().string("name");
  return name.empty() ? ctx.id() : name;
}

fs::path output_path(const NodeContext& ctx) {
  const std::string& output = ctx.params().string("output");
  if (output.empty()) return ctx.out_dir() / ctx.id() / (merged_name(ctx) + ".safetensors");
  const fs::path p(output);
  return p.is_absolute() ? p : ctx.out_dir() / p;
}

merge::MergeReport run_with_progress(const NodeContext& ctx, const MergeJob& job, merge::MergeMethod& method, const fs::path& output,
                                     merge::MergeOptions options, const std::string& what) {
  const merge::MergeInputs inputs = merge::MergeInputs::open(job.models, job.base, method.uses_fisher());
  const std::uint64_t planned = merge::planned_io_bytes(inputs, method, options);
  // Two bars: tensors done, and MiB read plus written (whose rate is the throughput).
  Progress tensors = ctx.progress(what + "tensors", inputs.tensor_names().size());
  Progress mib = ctx.progress(what + "MiB read+written", static_cast<std::size_t>(planned >> 20));
  std::atomic<std::uint64_t> bytes{0};
  options.on_progress = [&](std::size_t done, std::uint64_t b) {
    if (done) tensors.advance(done);
    if (b) {
      const std::uint64_t before = bytes.fetch_add(b);
      const std::uint64_t whole = ((before + b) >> 20) - (before >> 20);
      if (whole) mib.advance(static_cast<std::size_t>(whole));
    }
  };
  return merge::run_merge(inputs, method, output, options);
}

void run_and_publish(NodeContext& ctx, const MergeJob& job, const MethodRecipe& recipe,
                     const std::map<std::string, std::string>& parameters) {
  const auto method = recipe.build(ctx.params(), recipe.extra, job.models);
  merge::MergeOptions options = read_merge_options(ctx);
  const fs::path output = output_path(ctx);
  const std::string name = merged_name(ctx);
  options.metadata = parameters;
  options.metadata["merge_method"] = method->name();
  std::string models;
  for (const auto& m : job.models) models += (models.empty() ? "" : ",") + m.name;
  options.metadata["merged_models"] = models;
  if (job.base) options.metadata["merge_base"] = job.base->name;
  // Native MLP checkpoints keep their structural metadata (format, activation, ...) so the merged
  // model loads like its inputs.
  // A TorchScript model's weights name their model (caulk.model): not the merged one's.
  const io::Checkpoint first = io::Checkpoint::open(job.models.front().checkpoint);
  for (const auto& [key, value] : first.metadata())
    if (!options.metadata.count(key) && key != "tuned_from" && key != "tuning_mode" && !(!job.module.empty() && key == "caulk.model"))
      options.metadata[key] = value;

  const merge::MergeReport r = ctx.distributed() ? run_distributed(ctx, job, recipe, *method, output, options)
                                                 : run_with_progress(ctx, job, *method, output, options, "");
  Json& sum = ctx.summary();
  sum["method"] = method->name();
  sum["models"] = job.names();
  if (job.base) sum["base"] = job.base->name;
  sum["output"] = output.filename().string();
  sum["tensors"] = r.tensors;
  sum["files"] = r.files;
  sum["bytes_read"] = r.bytes_read;
  sum["bytes_written"] = r.bytes_written;
  ctx.log(fmt::format("merged {} models ({} tensors) into {} in {:.2f} s ({:.0f} MiB/s read plus written)", job.models.size(), r.tensors,
                      output.string(), r.seconds, r.seconds > 0 ? double(r.bytes_read + r.bytes_written) / r.seconds / 1048576.0 : 0.0));
  auto out = std::make_shared<Checkpoint>();
  CheckpointRef merged;
  merged.model = name;
  merged.path = output;
  merged.module = job.module;
  merged.feature_method = job.feature_method;
  out->models.push_back(std::move(merged));
  ctx.publish("checkpoints", std::move(out));
}

}  // namespace caulk::mergers
