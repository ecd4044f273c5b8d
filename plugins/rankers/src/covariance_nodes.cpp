// rank.hscore, rank.hscore_shrinkage, rank.transrate: metrics of the features' covariance,
// sharing its eigendecomposition with each other (and F^T F with LogME) through FeatureStats.
#include "rankers/algorithms/transferability.hpp"
#include "rankers/src/nodes.hpp"
#include "rankers/src/ranker_node.hpp"

namespace caulk::rankers {

namespace {

class HScoreNode : public RankerNode {
 public:
  static NodeSpec spec() {
    return ranker_spec<HScoreNode>("rank.hscore",
                                   "Rank models by H-score, tr(pinv(cov F) cov(E[F | y])): how much of the features' variance "
                                   "separates the classes (Bao et al. 2019)");
  }

 protected:
  std::string method() const override { return "hscore"; }
  rank::MemoryEstimate peak_memory(const RankerShape& s, const Params&) const override {
    return rank::hscore_memory(s.rows, s.cols, s.targets);
  }
  RankerResult score(const RankerInput& in, const Params&) override {
    return {rank::hscore(in.stats, in.split.classes, in.data.num_classes()), {}, {}};
  }
};

class ShrinkageHScoreNode : public RankerNode {
 public:
  static NodeSpec spec() {
    return ranker_spec<ShrinkageHScoreNode>("rank.hscore_shrinkage",
                                            "Rank models by the shrinkage H-score: H-score with a Ledoit-Wolf shrunk covariance, stable "
                                            "for wide features (Ibrahim et al. 2022)");
  }

 protected:
  std::string method() const override { return "hscore_shrinkage"; }
  rank::MemoryEstimate peak_memory(const RankerShape& s, const Params&) const override {
    return rank::hscore_memory(s.rows, s.cols, s.targets);
  }
  RankerResult score(const RankerInput& in, const Params&) override {
    const rank::ShrinkageHScore r = rank::hscore_shrinkage(in.stats, in.split.classes, in.data.num_classes());
    return {r.score, {}, Json{{"shrinkage", r.shrinkage}}};
  }
};

class TransRateNode : public RankerNode {
 public:
  static NodeSpec spec() {
    NodeSpec s = ranker_spec<TransRateNode>("rank.transrate",
                                            "Rank models by TransRate: the coding rate of the features minus the mean coding rate "
                                            "of each class (Huang et al. 2022)");
    s.param(ParamSpec::real("eps", 1e-4, "distortion of the coding rate, 1/2 logdet(I + Z^T Z / (n eps))").range(1e-12, 1e6));
    return s;
  }

 protected:
  std::string method() const override { return "transrate"; }
  rank::MemoryEstimate peak_memory(const RankerShape& s, const Params&) const override {
    return rank::transrate_memory(s.rows, s.cols, s.targets, s.width);
  }
  RankerResult score(const RankerInput& in, const Params& params) override {
    return {rank::transrate(in.stats, in.split.classes, in.data.num_classes(), params.real("eps")), {}, {}};
  }
};

}  // namespace

void register_covariance_rankers(PluginRegistrar& r) {
  r.add_node<HScoreNode>();
  r.add_node<ShrinkageHScoreNode>();
  r.add_node<TransRateNode>();
}

}  // namespace caulk::rankers
