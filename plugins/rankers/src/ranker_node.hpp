// The part every ranker node shares: ports, the per-model loop (concurrent, one unit per model),
// the checks between features and labels, timings, and the Scores it publishes.
// A ranker only says how to score one model's features.
//
// Each model is a distributable unit (caulk/units.hpp): its payload holds the model's files; the
// engine gives the unit the ranker's type, parameters and dataset, so any rank of an mpirun can
// score it. Every ranker inherits RankerNode::run_unit, which makes a fresh instance of the
// unit's own node type (UnitContext::make_node) and calls its score().
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/data_check.hpp"
#include "caulk/node.hpp"
#include "caulk/registry.hpp"
#include "caulk/transferability/feature_stats.hpp"
#include "caulk/units.hpp"
#include "rankers/algorithms/memory_estimates.hpp"

namespace caulk::rankers {

struct RankerInput {
  const ModelEmbedding& model;
  MatrixView features;              // N x D, rows aligned with split
  const rank::FeatureStats& stats;  // the features with the decompositions other rankers share
  const Dataset& data;
  const DatasetSplit& split;
  std::optional<MatrixView> source_probs;  // N x Cs when the ranker needs them
  const ArrayFile* source_file = nullptr;  // where source_probs came from (for errors)
  // The run's memory budget, for checks a ranker can only make once it has started (e.g. after
  // PCA): throws Error like NodeContext::check_memory when `bytes` exceeds it.
  std::function<void(std::size_t bytes, const std::string& what, const std::string& advice)> check_memory;
};

// What a ranker's memory estimate may depend on: one model's shapes, and the threads of the run.
struct RankerShape {
  std::size_t rows = 0, cols = 0;  // the features, N x D
  std::size_t targets = 0;         // classes (C), or regression targets
  std::size_t source_cols = 0;     // Cs, when the ranker reads source_probs (0 when absent)
  unsigned width = 1;              // --jobs
};

struct RankerResult {
  double score = 0;
  Matrix weights;  // optional per-model weights to keep (LogME's posterior means)
  Json details;    // optional per-model facts for run.json (rows sampled, dimensions kept, ...)
};

// The data check of a ranker (ranker_data_check.cpp): the split it asks for, rows of features (and
// source_probs) against the labels, and what this ranker needs of the hub and the task.
std::function<void(DataCheck&)> ranker_data_check(bool needs_source_probs, bool supports_regression);

class RankerNode : public Node {
 public:
  void run(NodeContext& ctx) override;
  // One model scored (the unit of every ranker node): payload {model, split}.
  static Json run_unit(UnitContext& ctx, const Json& payload);

 protected:
  // The common description: inputs features (Embeddings) and data (Dataset), output scores,
  // parameter split, and the data check (ranker_data_check.cpp) that knows what ranker T needs
  // (source_probs, a classification task). Rankers add their own parameters to it.
  template <class T>
  static NodeSpec ranker_spec(std::string type, std::string summary) {
    const T prototype;
    const RankerNode& ranker = prototype;
    return ranker_spec(std::move(type), std::move(summary), ranker.needs_source_probs(), ranker.supports_regression());
  }
  static NodeSpec ranker_spec(std::string type, std::string summary, bool needs_source_probs, bool supports_regression);

  virtual std::string method() const = 0;
  virtual bool higher_is_better() const { return true; }
  virtual bool needs_source_probs() const { return false; }
  virtual bool supports_regression() const { return false; }
  virtual RankerResult score(const RankerInput& in, const Params& params) = 0;
  // The most memory score() allocates for one model of this shape (docs/rankers.md, "Memory"):
  // run() refuses before scoring when the models scored at once would exceed the budget.
  virtual rank::MemoryEstimate peak_memory(const RankerShape& shape, const Params& params) const = 0;
  // Facts about the whole run for run.json (e.g. the seed used); called once before scoring.
  virtual void describe_run(const Params&, Json&) const {}

 private:
  // Refuses (NodeContext::check_memory) when the models scored at once would exceed the budget.
  void check_memory(const NodeContext& ctx, const Dataset& data, const std::string& split) const;
};

}  // namespace caulk::rankers
