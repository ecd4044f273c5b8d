// The part every ranker node shares: ports, the per-model loop (concurrent, one unit per model),
// the checks between features and labels, timings, and the Scores it publishes.
// A ranker only says how to score one model's features.
#pragma once
#include <optional>
#include <string>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/node.hpp"
#include "feature_stats.hpp"

namespace caulk::rankers {

struct RankerInput {
  const ModelEmbedding& model;
  MatrixView features;  // N x D, rows aligned with split
  const rank::FeatureStats& stats;  // the features with the decompositions other rankers share
  const Dataset& data;
  const DatasetSplit& split;
  std::optional<MatrixView> source_probs;  // N x Cs when the ranker needs them
};

struct RankerResult {
  double score = 0;
  Matrix weights;  // optional per-model weights to keep (LogME's posterior means)
  Json details;    // optional per-model facts for run.json (rows sampled, dimensions kept, ...)
};

class RankerNode : public Node {
 public:
  void run(NodeContext& ctx) override;

 protected:
  // The common description: inputs features (Embeddings) and data (Dataset), output scores,
  // parameter split. Rankers add their own parameters to it.
  static NodeSpec ranker_spec(std::string type, std::string summary);

  virtual std::string method() const = 0;
  virtual bool higher_is_better() const { return true; }
  virtual bool needs_source_probs() const { return false; }
  virtual bool supports_regression() const { return false; }
  virtual RankerResult score(const RankerInput& in, const Params& params) = 0;
  // Facts about the whole run for run.json (e.g. the seed used); called once before scoring.
  virtual void describe_run(const Params&, Json&) const {}
};

}  // namespace caulk::rankers
