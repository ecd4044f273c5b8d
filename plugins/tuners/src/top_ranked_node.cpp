// tune.top_ranked: tune the best-ranked model of a hub alone (the other way to exploit a ranked hub
// when no architecture is imposed), under a fixed name so that runs with different rankings line up.
#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/model_nodes/model_inputs.hpp"
#include "caulk/model_nodes/tuning_params.hpp"
#include "caulk/units.hpp"
#include "tuners/algorithms/btuning.hpp"
#include "tuners/src/nodes.hpp"
#include "tuners/src/tuner_inputs.hpp"

namespace caulk::tuners {

namespace {

class TopRanked : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("tune.top_ranked", "Tune the best-ranked model of a hub alone (new head; any tune.peft mode), published under a fixed name");
    s.input("data", "Dataset", "the target task, with model inputs");
    models::declare_model_hub(s);
    s.input("scores", "Scores", "any ranker's scores of the hub's models");
    s.output("checkpoints", "Checkpoint", "the tuned model (.safetensors in the node's folder)");
    s.output("predictions", "Predictions", "its class probabilities (or values) on the predicted splits");
    s.param(ParamSpec::list("exclude", "models that may not be chosen"));
    s.param(
        ParamSpec::string("name", "top_ranked", "the tuned model's name in the outputs (then `suffix`); run.json names the model chosen"));
    models::declare_tuning_params(s, "full");
    declare_run_params(s);
    s.check = check_plain_run_params;
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const auto scores = ctx.input<Scores>("scores");
    const std::vector<CheckpointRef> hub = models::hub_checkpoints(ctx);
    const std::set<std::string> excluded = excluded_models(p, *scores);
    std::vector<std::size_t> candidates;
    std::vector<double> values;
    for (std::size_t i = 0; i < scores->scores.size(); ++i) {
      if (excluded.count(scores->scores[i].model)) continue;
      candidates.push_back(i);
      values.push_back(scores->higher_is_better ? scores->scores[i].score : -scores->scores[i].score);
    }
    if (candidates.empty()) throw Error(fmt::format("every model ranked by '{}' is excluded", scores->producer_node));
    const ModelScore& best = scores->scores[candidates[tune::top_k(values, 1).front()]];
    auto it = std::find_if(hub.begin(), hub.end(), [&](const CheckpointRef& r) { return r.model == best.model; });
    if (it == hub.end())
      throw Error(fmt::format("the best-ranked model '{}' (by '{}') is not in the hub of checkpoints", best.model, scores->producer_node));
    CheckpointRef chosen = *it;
    chosen.model = p.string("name");
    tune_targets(ctx, *data, {chosen}, "top_ranked", {Json{{"model", best.model}, {"score", best.score}, {"ranker", scores->method}}});
  }
  // Plain tuning of the chosen model, on any rank; `term` holds the facts of the choice for run.json.
  static Json run_unit(UnitContext& ctx, const Json& payload) { return tune_target_unit(ctx, payload, &models::train_plain); }
};

}  // namespace

void register_top_ranked(PluginRegistrar& r) { r.add_node<TopRanked>(); }

}  // namespace caulk::tuners
