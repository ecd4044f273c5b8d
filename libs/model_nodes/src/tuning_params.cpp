#include "caulk/model_nodes/tuning_params.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "caulk/glob.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::models {

void declare_tuning_params(NodeSpec& s, const std::string& default_mode) {
  s.param(ParamSpec::choice("mode", default_mode, {"linear_probe", "partial", "adapter", "lora", "full"},
                            "what trains: the new head only, the last k layers, an adapter, LoRA factors, or everything"));
  s.param(ParamSpec::integer("layers", 2, "partial, MLP: how many of the last layers train (the new head counts as one)").at_least(1));
  s.param(ParamSpec::list("trainable",
                          "partial, TorchScript: globs of the parameter names that train besides the new head (e.g. [\"layer4.*\"]; "
                          "'*' matches dots too)"));
  s.param(ParamSpec::integer("rank", 4, "adapter bottleneck width, LoRA rank").range(1, 4096));
  s.param(ParamSpec::integer("adapter_after", -1, "adapter: after this layer (-1: the feature layer)").at_least(-1));
  s.param(ParamSpec::list("lora_layers", "LoRA, MLP: the layers to adapt (default: every layer up to the features)"));
  s.param(ParamSpec::list("lora_weights",
                          "LoRA, TorchScript: globs of the weight matrices (or kernels) to adapt (e.g. [\"layer4.*.conv*.weight\"])"));
  s.param(ParamSpec::real("lora_alpha", 0, "LoRA scale alpha / rank (0: alpha = rank, scale 1)").at_least(0));
  s.param(ParamSpec::choice("optimizer", "adam", {"adam", "sgd", "lbfgs"},
                            "adam (AdamW decay), sgd with momentum, or lbfgs (linear_probe only: convex head, to convergence)"));
  s.param(ParamSpec::real("learning_rate", 1e-3, "initial learning rate").range(0, 10));
  s.param(ParamSpec::real("momentum", 0.9, "sgd momentum").range(0, 1));
  s.param(ParamSpec::real("weight_decay", 1e-4, "L2 penalty (wd/2)||W||^2 on weight matrices (adam: decoupled)").at_least(0));
  s.param(ParamSpec::integer("epochs", 50, "passes over the training samples (lbfgs: ignored)").range(1, 100000));
  s.param(ParamSpec::integer("batch_size", 64, "minibatch size").range(1, 1 << 20));
  s.param(ParamSpec::choice("schedule", "constant", {"constant", "cosine", "step"}, "learning-rate schedule over the epochs"));
  s.param(ParamSpec::integer("step_every", 10, "step schedule: epochs between decays").at_least(1));
  s.param(ParamSpec::real("step_gamma", 0.1, "step schedule: factor per decay").range(0, 1));
  s.param(ParamSpec::integer("patience", 10, "early stopping: epochs without a better validation loss (0: off)").at_least(0));
  s.param(ParamSpec::integer("lbfgs_iterations", 500, "lbfgs: iteration limit").range(1, 100000));
}

mlp::PeftOptions peft_options(const Params& p, const Dataset& data, std::uint64_t seed) {
  mlp::PeftOptions o;
  o.mode = mlp::parse_peft_mode(p.string("mode"));
  o.outputs = static_cast<int>(data.num_targets());
  o.output = data.kind == TaskKind::Classification ? mlp::Output::Softmax : mlp::Output::Identity;
  o.partial_layers = static_cast<int>(p.integer("layers"));
  o.rank = static_cast<int>(p.integer("rank"));
  o.adapter_after = static_cast<int>(p.integer("adapter_after"));
  if (p.has("lora_layers"))
    for (const Value& v : p.get("lora_layers").as_array()) o.lora_layers.push_back(static_cast<int>(v.as_int()));
  o.lora_alpha = p.real("lora_alpha");
  o.seed = seed;
  return o;
}

mlp::TrainOptions train_options(const Params& p, std::uint64_t seed) {
  mlp::TrainOptions o;
  o.optimizer = p.string("optimizer");
  o.learning_rate = p.real("learning_rate");
  o.momentum = p.real("momentum");
  o.weight_decay = p.real("weight_decay");
  o.epochs = static_cast<int>(p.integer("epochs"));
  o.batch_size = static_cast<int>(p.integer("batch_size"));
  o.schedule = p.string("schedule");
  o.step_every = static_cast<int>(p.integer("step_every"));
  o.step_gamma = p.real("step_gamma");
  o.patience = static_cast<int>(p.integer("patience"));
  o.lbfgs_iterations = static_cast<int>(p.integer("lbfgs_iterations"));
  o.seed = seed;
  return o;
}

namespace {

std::vector<std::string> globs(const Params& p, const std::string& name) {
  std::vector<std::string> out;
  if (p.has(name))
    for (const Value& v : p.get(name).as_array()) out.push_back(v.as_string());
  return out;
}

// The names of `candidates` matching any of the globs, in candidates' order; a glob matching none
// is an error naming the model, the parameter and some of the names there are.
std::vector<std::string> matching(const Model& model, const std::vector<std::string>& patterns,
                                  const std::vector<ParameterInfo>& candidates, const std::string& param) {
  std::vector<std::string> out;
  for (const auto& pattern : patterns) {
    bool any = false;
    for (const auto& c : candidates)
      if (glob_matches(pattern, c.name)) any = true;
    if (!any) {
      std::string names;
      for (std::size_t i = 0; i < candidates.size() && i < 12; ++i) names += (i ? ", " : "") + candidates[i].name;
      if (candidates.size() > 12) names += fmt::format(", ... ({} in all)", candidates.size());
      throw Error(fmt::format("{}: `{}` glob '{}' matches no parameter; its parameters are {} (fix the glob)", model.describe(), param,
                              pattern, names));
    }
  }
  for (const auto& c : candidates)
    if (std::any_of(patterns.begin(), patterns.end(), [&](const std::string& g) { return glob_matches(g, c.name); })) out.push_back(c.name);
  return out;
}

}  // namespace

std::int64_t prepare_model(Model& model, const Params& p, const Dataset& data, std::uint64_t seed, const TrainingSamples& train) {
  const std::string mode = p.string("mode");
  if (mode == "adapter")
    throw Error(
        fmt::format("{}: mode = \"adapter\" inserts a bottleneck layer into caulk's MLP, which a {} model does not have: use "
                    "mode = \"lora\" (with lora_weights), \"partial\" (with trainable) or \"full\"",
                    model.describe(), model.family()));
  if (p.has("lora_layers"))
    throw Error(
        fmt::format("{}: `lora_layers` numbers the layers of caulk's MLP; name a {} model's weights by globs in "
                    "`lora_weights` instead",
                    model.describe(), model.family()));
  std::int64_t features = model.feature_dim();
  if (features < 0) {
    if (train.size() == 0) throw Error("no training samples");
    features = model.run(train.all().slice(0, 1), true, false).features.cols();
  }
  const auto kind = data.kind == TaskKind::Classification ? OutputKind::Logits : OutputKind::Values;
  const std::vector<ParameterInfo> source = model.parameters();  // before the new head
  model.replace_head(static_cast<std::int64_t>(data.num_targets()), kind, seed, features);
  const std::vector<std::string> head = model.head_parameters();
  if (mode == "linear_probe") {
    model.set_trainable(head);
  } else if (mode == "partial") {
    const auto patterns = globs(p, "trainable");
    if (patterns.empty())
      throw Error(
          fmt::format("{}: mode = \"partial\" needs `trainable`, globs of the parameters to train besides the new head "
                      "(e.g. trainable = [\"layer4.*\"])",
                      model.describe()));
    std::vector<std::string> chosen = matching(model, patterns, source, "trainable");
    std::vector<std::string> names;
    for (const auto& info : model.parameters())
      if (std::find(chosen.begin(), chosen.end(), info.name) != chosen.end() ||
          std::find(head.begin(), head.end(), info.name) != head.end())
        names.push_back(info.name);
    model.set_trainable(names);
  } else if (mode == "full") {
    std::vector<std::string> names;
    for (const auto& info : model.parameters()) names.push_back(info.name);
    model.set_trainable(names);
  } else if (mode == "lora") {
    const auto patterns = globs(p, "lora_weights");
    if (patterns.empty())
      throw Error(
          fmt::format("{}: mode = \"lora\" needs `lora_weights`, globs of the weight matrices to adapt (e.g. "
                      "lora_weights = [\"proj.weight\"])",
                      model.describe()));
    const std::vector<std::string> chosen = matching(model, patterns, source, "lora_weights");
    for (const auto& name : chosen) {
      const auto& info = *std::find_if(source.begin(), source.end(), [&](const ParameterInfo& i) { return i.name == name; });
      if (info.shape.size() < 2)
        throw Error(
            fmt::format("{}: `lora_weights` matches '{}' of shape [{}], which is not a weight matrix: LoRA adapts weights "
                        "of two or more dimensions (Linear, Conv); narrow the glob (e.g. \"*.weight\")",
                        model.describe(), name, fmt::join(info.shape, ", ")));
    }
    model.add_lora(chosen, static_cast<int>(p.integer("rank")), p.real("lora_alpha"), seeding::derive_seed(seed, 0x4C6F5241ull));
  } else {
    throw Error(fmt::format("unknown tuning mode '{}'", mode));
  }
  std::int64_t count = 0;
  const auto infos = model.parameters();
  for (const auto& name : model.trainable())
    for (const auto& info : infos)
      if (info.name == name) count += info.size();
  return count;
}

void check_mlp_params(const Params& p, const std::string& model) {
  for (const char* name : {"trainable", "lora_weights"})
    if (p.has(name))
      throw Error(
          fmt::format("model '{}' is a caulk MLP checkpoint, which tunes by layers: `{}` names parameters of TorchScript "
                      "models (use `layers` for partial, `lora_layers` for lora)",
                      model, name));
}

}  // namespace caulk::models
