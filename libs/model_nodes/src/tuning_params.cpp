#include "caulk/model_nodes/tuning_params.hpp"

namespace caulk::models {

void declare_tuning_params(NodeSpec& s, const std::string& default_mode) {
  s.param(ParamSpec::choice("mode", default_mode, {"linear_probe", "partial", "adapter", "lora", "full"},
                            "what trains: the new head only, the last k layers, an adapter, LoRA factors, or everything"));
  s.param(ParamSpec::integer("layers", 2, "partial: how many of the last layers train (the new head counts as one)").at_least(1));
  s.param(ParamSpec::integer("rank", 4, "adapter bottleneck width, LoRA rank").range(1, 4096));
  s.param(ParamSpec::integer("adapter_after", -1, "adapter: after this layer (-1: the feature layer)").at_least(-1));
  s.param(ParamSpec::list("lora_layers", "LoRA: the layers to adapt (default: every layer up to the features)"));
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

}  // namespace caulk::models
