// rank.leep and rank.nce: transferability from the source head's own class probabilities.
#include "rankers/algorithms/transferability.hpp"
#include "rankers/src/nodes.hpp"
#include "rankers/src/ranker_node.hpp"

namespace caulk::rankers {

namespace {

class LeepNode : public RankerNode {
 public:
  static NodeSpec spec() {
    return ranker_spec("rank.leep",
                       "Rank models by LEEP, the log expected empirical prediction of the source head through "
                       "P(y | z) (Nguyen et al. 2020); needs source_probs in the hub manifest");
  }

 protected:
  std::string method() const override { return "leep"; }
  bool needs_source_probs() const override { return true; }
  RankerResult score(const RankerInput& in, const Params&) override {
    return {rank::leep(*in.source_probs, in.split.classes, in.data.num_classes()), {}, {}};
  }
};

class NceNode : public RankerNode {
 public:
  static NodeSpec spec() {
    return ranker_spec("rank.nce",
                       "Rank models by NCE, minus the conditional entropy of the target labels given the source "
                       "head's hard labels (Tran et al. 2019); needs source_probs in the hub manifest");
  }

 protected:
  std::string method() const override { return "nce"; }
  bool needs_source_probs() const override { return true; }
  RankerResult score(const RankerInput& in, const Params&) override {
    return {rank::nce(*in.source_probs, in.split.classes, in.data.num_classes()), {}, {}};
  }
};

}  // namespace

void register_source_probability_rankers(PluginRegistrar& r) {
  RankerNode::add<LeepNode>(r);
  RankerNode::add<NceNode>(r);
}

}  // namespace caulk::rankers
