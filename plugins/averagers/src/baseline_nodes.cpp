// The classic model-averaging baselines, each with the ports of average.local so that any
// pipeline can set them beside it: average.equal, select.best, average.global (stacking on the
// simplex under the same loss), average.mallows and average.jackknife (squared-loss regression).
#include <fmt/format.h>

#include "averagers/algorithms/simplex.hpp"
#include "averagers/src/common.hpp"
#include "averagers/src/nodes.hpp"
#include "averagers/src/predictions_manifest.hpp"
#include "caulk/manifest.hpp"

namespace caulk::averagers {

namespace {

NodeSpec baseline_spec(const std::string& type, const std::string& summary, bool with_loss) {
  NodeSpec s(type, summary);
  s.inputs_many("predictions", "Predictions", "the K candidate models (every model of every input)");
  s.input("data", "Dataset", "the labels of the fitting split");
  s.output("predictions", "Predictions", "one model named after this node, on every split all candidates share");
  s.output("weights", "Weights", "the (constant) weights at every row of those splits");
  declare_fit_split(s);
  if (with_loss) declare_loss_params(s);
  return s;
}

// Publishes the combination with constant weights w and its summary.
void publish_constant(NodeContext& ctx, const Candidates& c, const Vector& w, Json extra = Json::object()) {
  Json& sum = ctx.summary();
  sum["weights"] = weights_json(c, w);
  for (auto& [k, v] : extra.items()) sum[k] = v;
  const auto weights = constant_weights(c, w);
  ctx.publish("predictions", combined_predictions(ctx.id(), c, weights));
  ctx.publish("weights", weights_artifact(c, weights));
  std::string text = fmt::format("{}: weights", ctx.id());
  for (std::size_t k = 0; k < c.names.size(); ++k) text += fmt::format(" {}={:.4g}", c.names[k], w(static_cast<Eigen::Index>(k)));
  ctx.print(text + "\n");
}

class AverageEqual : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("average.equal", "Average the candidates' predictions with equal weights 1/K");
    s.inputs_many("predictions", "Predictions", "the K candidate models (every model of every input)");
    s.input_optional("data", "Dataset", "not needed; accepted so that every combiner has the same ports");
    s.output("predictions", "Predictions", "one model named after this node, on every split all candidates share");
    s.output("weights", "Weights", "the weights 1/K at every row");
    return s;
  }
  void run(NodeContext& ctx) override {
    const Candidates c = gather_candidates(ctx.inputs<Predictions>("predictions"), nullptr);
    const auto K = static_cast<Eigen::Index>(c.names.size());
    publish_constant(ctx, c, Vector::Constant(K, 1.0 / static_cast<double>(K)));
  }
};

class SelectBest : public Node {
 public:
  static NodeSpec spec() {
    return baseline_spec("select.best", "Select the single candidate with the lowest loss on the fitting split", true);
  }
  void run(NodeContext& ctx) override {
    const auto data = ctx.input<Dataset>("data");
    const Candidates c = gather_candidates(ctx.inputs<Predictions>("predictions"), data.get());
    const avg::Loss loss = loss_from(ctx.params(), c.kind);
    avg::Stack s = stack_on(c, *data, ctx.params().string("fit_split"));
    check_magnitudes(ctx, c, *data, ctx.params().string("fit_split"), s, true);
    const Vector risks = avg::model_risks(s, loss.for_scale(s.scale));
    Eigen::Index best = 0;
    risks.minCoeff(&best);  // the first on ties
    Vector w = Vector::Zero(risks.size());
    w(best) = 1;
    Json fit_risks = Json::object();
    for (std::size_t k = 0; k < c.names.size(); ++k)
      fit_risks[c.names[k]] = loss.in_given_units(risks(static_cast<Eigen::Index>(k)), s.scale);
    publish_constant(ctx, c, w, Json{{"selected", c.names[static_cast<std::size_t>(best)]}, {"fit_risks", fit_risks}});
  }
};

class AverageGlobal : public Node {
 public:
  static NodeSpec spec() {
    return baseline_spec("average.global",
                         "Global model averaging (stacking): constant simplex weights minimising the loss of the combination on the "
                         "fitting split",
                         true);
  }
  void run(NodeContext& ctx) override {
    const auto data = ctx.input<Dataset>("data");
    const Candidates c = gather_candidates(ctx.inputs<Predictions>("predictions"), data.get());
    const avg::Loss loss = loss_from(ctx.params(), c.kind);
    avg::Stack s = stack_on(c, *data, ctx.params().string("fit_split"));
    check_magnitudes(ctx, c, *data, ctx.params().string("fit_split"), s, true);
    const avg::ConstantFit fit = avg::fit_constant_weights(s, loss.for_scale(s.scale));
    publish_constant(
        ctx, c, fit.w,
        Json{{"loss", avg::loss_name(loss.kind)}, {"fit_risk", loss.in_given_units(fit.risk, s.scale)}, {"iterations", fit.iterations}});
  }
};

// Mallows needs each model's number of parameters: from `parameters` or a predictions manifest.
std::vector<double> parameter_counts(const Params& p, const Candidates& c) {
  std::map<std::string, double> counts;
  if (p.has("manifest")) {
    const Manifest m = read_manifest(p.path("manifest"), predictions_manifest_schema());
    for (const auto& model : m.models)
      if (const Value* v = model.get("parameters")) counts[model.name] = v->as_number();
  }
  if (p.has("parameters"))
    for (const auto& [name, v] : p.get("parameters").as_table()) counts[name] = v.as_number();
  std::vector<double> out;
  for (const auto& name : c.names) {
    auto it = counts.find(name);
    if (it == counts.end())
      throw Error(
          fmt::format("Mallows model averaging needs the number of parameters of model '{}': give it in 'parameters' "
                      "({{ {} = N }}) or in a predictions manifest's [[model]] 'parameters'",
                      name, name));
    out.push_back(it->second);
  }
  return out;
}

void require_squared_regression(const Candidates& c, const std::string& node) {
  if (c.kind != TaskKind::Regression)
    throw Error(fmt::format("{} is for squared-loss regression; these are class probabilities (use average.global)", node));
}

class AverageMallows : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s = baseline_spec("average.mallows",
                               "Mallows model averaging (Hansen 2007), squared-loss regression: minimise ||y - F w||^2 + 2 sigma^2 "
                               "k'w on the fitting split (usually the split the models were fitted on)",
                               false);
    s.param(ParamSpec::table("parameters", "each model's number of parameters k_m: { model = N, ... }"));
    s.param(ParamSpec::path("manifest", "a predictions manifest whose [[model]]s give 'parameters' (read for the counts only)").optional());
    return s;
  }
  void run(NodeContext& ctx) override {
    const auto data = ctx.input<Dataset>("data");
    const Candidates c = gather_candidates(ctx.inputs<Predictions>("predictions"), data.get());
    require_squared_regression(c, "average.mallows");
    avg::Stack s = stack_on(c, *data, ctx.params().string("fit_split"));
    check_magnitudes(ctx, c, *data, ctx.params().string("fit_split"), s, true);
    const avg::MallowsFit fit = avg::mallows_weights(s, parameter_counts(ctx.params(), c));
    publish_constant(ctx, c, fit.w, Json{{"sigma2", fit.sigma2 * s.scale * s.scale}, {"sigma2_from", c.names[fit.largest]}});
  }
};

class AverageJackknife : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s = baseline_spec("average.jackknife",
                               "Jackknife model averaging (Hansen & Racine 2012), squared-loss regression: minimise ||y - F_loo w||^2 "
                               "with the models' leave-one-out predictions",
                               false);
    s.param(ParamSpec::string("loo_split", "loo",
                              "the Predictions split holding each model's leave-one-out predictions on the rows of fit_split"));
    return s;
  }
  void run(NodeContext& ctx) override {
    const auto data = ctx.input<Dataset>("data");
    const Candidates c = gather_candidates(ctx.inputs<Predictions>("predictions"), data.get());
    require_squared_regression(c, "average.jackknife");
    avg::Stack s = stack_on(c, *data, ctx.params().string("fit_split"), ctx.params().string("loo_split"));
    check_magnitudes(ctx, c, *data, ctx.params().string("fit_split"), s, true, {}, ctx.params().string("loo_split"));
    publish_constant(ctx, c, avg::jackknife_weights(s));
  }
};

}  // namespace

void register_baselines(PluginRegistrar& r) {
  r.add_node<AverageEqual>();
  r.add_node<SelectBest>();
  r.add_node<AverageGlobal>();
  r.add_node<AverageMallows>();
  r.add_node<AverageJackknife>();
}

}  // namespace caulk::averagers
