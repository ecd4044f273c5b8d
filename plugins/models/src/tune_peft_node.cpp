// tune.peft: tunes models of a hub on a target task's training split in a parameter-efficient mode,
// writes the tuned checkpoints and publishes their predictions. The run itself (parameters, unit,
// outputs) is the one every tuning node shares (libs/model_nodes, caulk/model_nodes/tune_run.hpp).
#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/model_nodes/model_inputs.hpp"
#include "caulk/model_nodes/tune_run.hpp"
#include "caulk/model_nodes/tuning_params.hpp"
#include "caulk/units.hpp"
#include "models/src/nodes.hpp"

namespace caulk::models {

namespace {

class TunePeft : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("tune.peft",
               "Tune models of a hub on a target task (linear probe, partial, adapter, LoRA or full) with a new head; write the "
               "tuned checkpoints and predict");
    s.input("data", "Dataset", "the target task, with model inputs");
    declare_model_hub(s);
    s.output("checkpoints", "Checkpoint", "the tuned models (.safetensors in the node's folder)");
    s.output("predictions", "Predictions", "class probabilities (or values) of every tuned model on the predicted splits");
    declare_tuning_params(s, "linear_probe");
    declare_run_params(s);
    s.param(ParamSpec::integer("train_samples", 0, "tune on a seeded subsample of this many training samples (0: all)").at_least(0));
    s.check = check_plain_run_params;
    return s;
  }

  void run(NodeContext& ctx) override {
    const auto data = ctx.input<Dataset>("data");
    const std::vector<CheckpointRef> models = hub_checkpoints(ctx);
    tune_targets(ctx, *data, models, "", std::vector<Json>(models.size()));
  }
  // One model tuned, on any rank (tune_target_unit with plain training).
  static Json run_unit(UnitContext& ctx, const Json& payload) { return tune_target_unit(ctx, payload, &train_plain); }
};

}  // namespace

void register_tune_peft(PluginRegistrar& r) { r.add_node<TunePeft>(); }

}  // namespace caulk::models
