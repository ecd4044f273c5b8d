// rank.leep and rank.nce: transferability from the source head's own class probabilities.
#include <fmt/format.h>
#include <stdexcept>

#include "rankers/algorithms/transferability.hpp"
#include "rankers/src/nodes.hpp"
#include "rankers/src/ranker_node.hpp"

namespace caulk::rankers {

namespace {

// The two parameters both nodes share: what source_probs holds, and how close to 1 its rows must sum.
void add_source_params(NodeSpec& s) {
  s.param(ParamSpec::flag("source_logits", false,
                          "the source_probs files hold logits (scores before the softmax): apply a softmax to each row "
                          "instead of checking that rows are probabilities"));
  s.param(ParamSpec::real("probability_tolerance", 1e-3, "rows of probabilities must be finite, non-negative and sum to 1 within this")
              .range(0, 1));
}

// Runs `score` on the model's source rows; a row that is not what the node expects becomes an
// error naming the model and the file, and what to do.
template <class Score>
double score_source(const RankerInput& in, const Params& params, const char* method, Score score) {
  rank::SourceOptions options;
  options.kind = params.flag("source_logits") ? rank::SourceKind::Logits : rank::SourceKind::Probabilities;
  options.tolerance = params.real("probability_tolerance");
  try {
    return score(*in.source_probs, options);
  } catch (const std::invalid_argument& e) {
    const std::string file = in.source_file ? in.source_file->describe() : std::string("<memory>");
    const std::string hint =
        options.kind == rank::SourceKind::Probabilities ? " (if the file holds logits, set source_logits = true on the node)" : "";
    throw DataError(file, fmt::format("{}: source_probs of model '{}': {}{}", method, in.model.name, e.what(), hint));
  }
}

class LeepNode : public RankerNode {
 public:
  static NodeSpec spec() {
    NodeSpec s = ranker_spec<LeepNode>("rank.leep",
                                       "Rank models by LEEP, the log expected empirical prediction of the source head through "
                                       "P(y | z) (Nguyen et al. 2020); needs source_probs in the hub manifest");
    add_source_params(s);
    return s;
  }

 protected:
  std::string method() const override { return "leep"; }
  bool needs_source_probs() const override { return true; }
  rank::MemoryEstimate peak_memory(const RankerShape& s, const Params&) const override {
    return rank::source_probability_memory(s.rows, s.source_cols, s.targets);
  }
  RankerResult score(const RankerInput& in, const Params& params) override {
    const int C = in.data.num_classes();
    return {score_source(in, params, "LEEP",
                         [&](const MatrixView& theta, const rank::SourceOptions& o) { return rank::leep(theta, in.split.classes, C, o); }),
            {},
            {}};
  }
};

class NceNode : public RankerNode {
 public:
  static NodeSpec spec() {
    NodeSpec s = ranker_spec<NceNode>("rank.nce",
                                      "Rank models by NCE, minus the conditional entropy of the target labels given the source "
                                      "head's hard labels (Tran et al. 2019); needs source_probs in the hub manifest");
    add_source_params(s);
    return s;
  }

 protected:
  std::string method() const override { return "nce"; }
  bool needs_source_probs() const override { return true; }
  rank::MemoryEstimate peak_memory(const RankerShape& s, const Params&) const override {
    return rank::source_probability_memory(s.rows, s.source_cols, s.targets);
  }
  RankerResult score(const RankerInput& in, const Params& params) override {
    const int C = in.data.num_classes();
    return {score_source(in, params, "NCE",
                         [&](const MatrixView& theta, const rank::SourceOptions& o) { return rank::nce(theta, in.split.classes, C, o); }),
            {},
            {}};
  }
};

}  // namespace

void register_source_probability_rankers(PluginRegistrar& r) {
  r.add_node<LeepNode>();
  r.add_node<NceNode>();
}

}  // namespace caulk::rankers
