// tune.btuning: tune target models with the knowledge of the top-K models of a hub ranked by LogME
// (B-Tuning, You et al. JMLR 2022; docs/btuning.md).
#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/model_nodes/model_inputs.hpp"
#include "caulk/model_nodes/tuning_params.hpp"
#include "caulk/units.hpp"
#include "tuners/algorithms/btuning.hpp"
#include "tuners/src/nodes.hpp"
#include "tuners/algorithms/output_terms.hpp"
#include "tuners/src/tuner_inputs.hpp"

namespace caulk::tuners {

namespace {

constexpr const char* kFrozenFeatures =
    "B-Tuning pulls the target's features towards the teachers, but with a linear probe the features do not train (the term "
    "would change nothing): choose mode partial (layers >= 2), adapter, lora or full";

// One target's B-Tuning step, on any rank: the teachers' predictive mean on the training split
// (computed by the node, as `term.target`) pulls the target's features through the extra loss term.
Tuned btuning_train(const Json& term, const Params& p, mlp::TuningSetup setup, const mlp::TrainOptions& options, const mlp::Samples& train,
                    const mlp::Samples* validation) {
  const Matrix target = matrix_from_json(term.at("target"));
  if (target.rows() != train.size())
    throw Error(fmt::format("{} rows of teacher targets for {} training samples", target.rows(), train.size()));
  const double lambda = p.real("lambda");
  tune::BTuningLoss loss(train, target, lambda, tune::parse_student_weights(p.string("student_weights")));
  Tuned out;
  out.report = mlp::train(setup.model, setup.trainable, train, validation, options, &loss);
  out.details = Json{{"teachers", term.at("teachers")},
                     {"lambda", lambda},
                     {"tau", p.real("tau")},
                     {"student_weights", p.string("student_weights")},
                     {"distance_to_teachers", loss.mean_distance(setup.model)}};
  out.setup = std::move(setup);
  return out;
}

class BTuning : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("tune.btuning",
               "Tune target models with the top-K models of a hub ranked by LogME (B-Tuning): cross-entropy plus lambda times the "
               "squared distance between the target's and the teachers' LogME predictive means");
    s.input("data", "Dataset", "the target task, with model inputs");
    models::declare_model_hub(s);
    s.input("features", "Embeddings", "the hub's models (the teacher candidates): features on the target task's splits");
    s.input("scores", "Scores", "rank.logme's scores of the hub on the training split, with its posterior mean weights");
    s.output("checkpoints", "Checkpoint", "the tuned target models (.safetensors in the node's folder)");
    s.output("predictions", "Predictions", "class probabilities (or values) of every tuned target model on the predicted splits");
    s.param(ParamSpec::integer("k", 3, "how many of the best-ranked models teach").range(1, 1000));
    s.param(ParamSpec::real("tau", 0.1, "temperature of the teacher weights pi = softmax(LogME / tau)").at_least(1e-12));
    s.param(
        ParamSpec::real("lambda", 100, "weight of the squared distance to the teachers' predictive mean (0: plain tuning)").at_least(0));
    s.param(ParamSpec::choice("student_weights", "fixed", {"fixed", "refit"},
                              "the target's own LogME weights m_s: fixed at their value before tuning (as the authors' code), or "
                              "refit on its current training features at the start of every epoch"));
    s.param(ParamSpec::list("exclude", "models that may not teach (the targets themselves never do)"));
    models::declare_tuning_params(s, "full");
    declare_run_params(s);
    s.check = [](const Params& p) {
      auto problems = check_run_params(p);
      if (p.string("mode") == "linear_probe" || (p.string("mode") == "partial" && p.integer("layers") == 1))
        problems.emplace_back("mode", kFrozenFeatures);
      return problems;
    };
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto data = ctx.input<Dataset>("data");
    const auto features = ctx.input<Embeddings>("features");
    const auto scores = ctx.input<Scores>("scores");
    if (scores->method != "logme" || scores->posterior_weights.empty())
      throw Error(fmt::format("the scores of '{}' come from '{}' without LogME posterior weights; B-Tuning needs rank.logme's scores",
                              scores->producer_node, scores->method));
    const std::vector<CheckpointRef> targets = models::hub_checkpoints(ctx);
    const DatasetSplit& split = data->split(p.string("train_split"));
    const int outputs = static_cast<int>(data->num_targets());
    const double tau = p.real("tau");

    const std::set<std::string> excluded = excluded_models(p, *scores);
    // Teachers are picked per target (a target never teaches itself), but most often the pick is
    // the same for all: read each teacher's features once.
    std::map<std::string, Matrix> feature_cache;
    auto teachers_for = [&](const std::string& target) {
      std::set<std::string> ex = excluded;
      ex.insert(target);
      const auto picks = pick_teachers(*scores, *features, static_cast<int>(p.integer("k")), ex);
      std::vector<tune::Teacher> teachers;
      std::vector<double> logme;
      for (const auto& pick : picks) {
        auto w = scores->posterior_weights.find(pick.name);
        if (w == scores->posterior_weights.end())
          throw Error(fmt::format("teacher '{}' has no LogME posterior weights in the scores of '{}'", pick.name, scores->producer_node));
        if (w->second.rows() != outputs)
          throw Error(fmt::format("teacher '{}' has LogME weights for {} columns but the task of '{}' has {} {}", pick.name,
                                  w->second.rows(), data->producer_node, outputs,
                                  data->kind == TaskKind::Classification ? "classes" : "targets"));
        auto f = feature_cache.find(pick.name);
        if (f == feature_cache.end()) f = feature_cache.emplace(pick.name, split_features(*pick.embedding, split)).first;
        if (w->second.cols() != f->second.cols())
          throw Error(fmt::format("teacher '{}' has {} feature columns in '{}' but LogME weights for {} in '{}' (other features?)",
                                  pick.name, f->second.cols(), features->producer_node, w->second.cols(), scores->producer_node));
        teachers.push_back({pick.name, f->second, w->second});
        logme.push_back(pick.score);
      }
      return std::make_pair(teachers, logme);
    };
    // What each target's unit needs from the teachers: their predictive mean on the training split
    // (pi-weighted, N x outputs) and the facts run.json reports.
    std::vector<Json> terms;
    for (const auto& t : targets) {
      auto [teachers, logme] = teachers_for(t.model);
      const std::vector<double> pi = tune::teacher_weights(logme, tau);
      Json facts = Json::array();
      for (std::size_t k = 0; k < teachers.size(); ++k)
        facts.push_back(
            Json{{"model", teachers[k].name}, {"logme", logme[k]}, {"pi", pi[k]}, {"feature_dim", teachers[k].features.cols()}});
      terms.push_back(Json{{"target", matrix_to_json(tune::teacher_target(teachers, pi))}, {"teachers", std::move(facts)}});
    }
    tune_targets(ctx, *data, targets, "btuning", terms);
  }
  // One target model tuned, on any rank.
  static Json run_unit(UnitContext& ctx, const Json& payload) {
    return tune_target_unit(ctx, payload, &btuning_train, &btuning_output_term);
  }
};

}  // namespace

void register_btuning(PluginRegistrar& r) { r.add_node<BTuning>(); }

}  // namespace caulk::tuners
