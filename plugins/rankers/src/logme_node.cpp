// rank.logme: LogME (You et al., ICML 2021 / JMLR 2022), the authors' fixed-point algorithm.
#include "caulk/transferability/logme.hpp"
#include "rankers/src/nodes.hpp"
#include "rankers/src/ranker_node.hpp"

namespace caulk::rankers {

namespace {

class LogMENode : public RankerNode {
 public:
  static NodeSpec spec() {
    return ranker_spec("rank.logme",
                       "Rank models by LogME, the maximum evidence of a Bayesian linear model on their features "
                       "(classification and regression; keeps posterior mean weights for B-Tuning)");
  }

 protected:
  std::string method() const override { return "logme"; }
  bool supports_regression() const override { return true; }
  RankerResult score(const RankerInput& in, const Params&) override {
    rank::LogMEResult r = in.data.kind == TaskKind::Classification
                              ? rank::logme_classification(in.stats, in.split.classes, in.data.num_classes())
                              : rank::logme_regression(in.stats, in.split.targets);
    return {r.score, std::move(r.weights), {}};
  }
};

}  // namespace

void register_logme(PluginRegistrar& r) { RankerNode::add<LogMENode>(r); }

}  // namespace caulk::rankers
