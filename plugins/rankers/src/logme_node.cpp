// rank.logme: LogME (You et al., ICML 2021 / JMLR 2022), the authors' fixed-point algorithm.
#include "caulk/transferability/logme.hpp"
#include "rankers/algorithms/memory_estimates.hpp"
#include "rankers/src/nodes.hpp"
#include "rankers/src/ranker_node.hpp"

namespace caulk::rankers {

namespace {

class LogMENode : public RankerNode {
 public:
  static NodeSpec spec() {
    NodeSpec s = ranker_spec<LogMENode>("rank.logme",
                                        "Rank models by LogME, the maximum evidence of a Bayesian linear model on their features "
                                        "(classification and regression; keeps posterior mean weights for B-Tuning)");
    s.param(ParamSpec::choice("formula", "reference", {"reference", "exact"},
                              "when N <= D: the authors' thin-SVD evidence (reference) or the true evidence over all D "
                              "directions (exact); the same when N > D"));
    return s;
  }

 protected:
  std::string method() const override { return "logme"; }
  bool supports_regression() const override { return true; }
  rank::MemoryEstimate peak_memory(const RankerShape& shape, const Params&) const override {
    return rank::logme_memory(shape.rows, shape.cols, shape.targets);
  }
  RankerResult score(const RankerInput& in, const Params& params) override {
    rank::LogMEOptions options;
    options.formula = params.string("formula") == "exact" ? rank::LogMEFormula::Exact : rank::LogMEFormula::Reference;
    rank::LogMEResult r = in.data.kind == TaskKind::Classification
                              ? rank::logme_classification(in.stats, in.split.classes, in.data.num_classes(), options)
                              : rank::logme_regression(in.stats, in.split.targets, options);
    Json details{{"numerical_rank", r.rank}, {"directions", r.directions}, {"route", r.thin_svd ? "thin_svd" : "gram"}};
    if (in.data.kind == TaskKind::Classification) details["classes_scored"] = r.columns.size();
    return {r.score, std::move(r.weights), std::move(details)};
  }
};

}  // namespace

void register_logme(PluginRegistrar& r) { r.add_node<LogMENode>(); }

}  // namespace caulk::rankers
