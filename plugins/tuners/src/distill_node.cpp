// tune.distill: knowledge distillation from the average of the top-K ranked models' heads, the
// baseline beside B-Tuning.
#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/model_nodes/model_inputs.hpp"
#include "caulk/model_nodes/tuning_params.hpp"
#include "caulk/probe/linear_probe.hpp"
#include "caulk/units.hpp"
#include "tuners/algorithms/distillation.hpp"
#include "tuners/src/nodes.hpp"
#include "tuners/algorithms/output_terms.hpp"
#include "tuners/src/tuner_inputs.hpp"

namespace caulk::tuners {

namespace {

// One target's distillation step, on any rank: the softened mean of the teachers' logits on the
// training split (computed by the node, as `term.soft`) is what the KL term pulls the target to.
Tuned distill_train(const Json& term, const Params& p, mlp::TuningSetup setup, const mlp::TrainOptions& options, const mlp::Samples& train,
                    const mlp::Samples* validation) {
  const Matrix soft = matrix_from_json(term.at("soft"));
  const double T = p.real("temperature"), alpha = p.real("alpha");
  tune::DistillationLoss loss(soft, train.y.classes, T, alpha);
  Tuned out;
  out.report = mlp::train(setup.model, setup.trainable, train, validation, options, &loss);
  out.details = Json{{"teachers", term.at("teachers")}, {"temperature", T}, {"alpha", alpha}};
  out.setup = std::move(setup);
  return out;
}

class Distill : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("tune.distill",
               "Tune target models by knowledge distillation from the top-K ranked models: each teacher gets a linear head on its "
               "frozen features, and the target learns (1 - alpha) CE + alpha T^2 KL to the softened mean of their logits");
    s.input("data", "Dataset", "the target task (classification), with model inputs");
    models::declare_model_hub(s);
    s.input("features", "Embeddings", "the hub's models (the teacher candidates): features on the target task's splits");
    s.input("scores", "Scores", "any ranker's scores of the hub: the k best-ranked teach");
    s.output("checkpoints", "Checkpoint", "the tuned target models (.safetensors in the node's folder)");
    s.output("predictions", "Predictions", "class probabilities of every tuned target model on the predicted splits");
    s.param(ParamSpec::integer("k", 3, "how many of the best-ranked models teach").range(1, 1000));
    s.param(
        ParamSpec::real("temperature", 2, "softmax temperature T of the soft targets and of the student in the KL term").at_least(1e-6));
    s.param(ParamSpec::real("alpha", 0.5, "weight of the distillation term (1 - alpha on the cross-entropy)").range(0, 1));
    s.param(ParamSpec::real("head_l2", 1e-3, "L2 penalty of each teacher's head (multinomial logistic regression, L-BFGS)").at_least(0));
    s.param(ParamSpec::list("exclude", "models that may not teach (the targets themselves never do)"));
    models::declare_tuning_params(s, "full");
    declare_run_params(s);
    s.check = check_run_params;
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    if (data->kind != TaskKind::Classification)
      throw Error(fmt::format("tune.distill distils class probabilities; the dataset of '{}' is a regression task", data->producer_node));
    const auto features = ctx.input<Embeddings>("features");
    const auto scores = ctx.input<Scores>("scores");
    const std::vector<CheckpointRef> targets = models::hub_checkpoints(ctx);
    const DatasetSplit& split = data->split(p.string("train_split"));
    const double T = p.real("temperature");
    const std::set<std::string> excluded = excluded_models(p, *scores);

    // Each teacher's head, fitted once on the training split, gives its logits there.
    std::map<std::string, Matrix> logits;
    std::map<std::string, double> head_accuracy;
    probe::LinearProbeOptions head;
    head.l2 = p.real("head_l2");
    // What each target's unit needs from the teachers: the soft targets on the training split
    // (N x classes) and the facts run.json reports.
    std::vector<Json> terms;
    for (const auto& t : targets) {
      std::set<std::string> ex = excluded;
      ex.insert(t.model);
      Json facts = Json::array();
      std::vector<Matrix> chosen;
      for (const auto& pick : pick_teachers(*scores, *features, static_cast<int>(p.integer("k")), ex)) {
        if (!logits.count(pick.name)) {
          const Matrix F = split_features(*pick.embedding, split);
          const probe::LinearProbe probe = probe::fit_linear_probe(MatrixView::borrow(F), split.classes, data->num_classes(), head);
          Matrix z = F * probe.weights.transpose();
          z.rowwise() += probe.bias.transpose();
          head_accuracy[pick.name] = probe.accuracy(MatrixView::borrow(F), split.classes);
          logits.emplace(pick.name, std::move(z));
        }
        chosen.push_back(logits.at(pick.name));
        facts.push_back(Json{{"model", pick.name}, {"score", pick.score}, {"head_train_accuracy", head_accuracy[pick.name]}});
      }
      terms.push_back(Json{{"soft", matrix_to_json(tune::soft_targets(chosen, T))}, {"teachers", std::move(facts)}});
    }
    tune_targets(ctx, *data, targets, "distill", terms);
  }
  // One target model tuned, on any rank.
  static Json run_unit(UnitContext& ctx, const Json& payload) {
    return tune_target_unit(ctx, payload, &distill_train, &distill_output_term);
  }
};

}  // namespace

void register_distill(PluginRegistrar& r) { r.add_node<Distill>(); }

}  // namespace caulk::tuners
