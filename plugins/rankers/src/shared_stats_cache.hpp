// The run-wide cache through which ranker nodes share one model's covariance and
// eigendecompositions (FeatureStats), so that LogME, H-score, TransRate, ... ranking the same
// features compute them once.
#pragma once
#include <memory>

#include "caulk/artifacts.hpp"
#include "caulk/transferability/feature_stats.hpp"

namespace caulk::rankers {

// The shared decompositions of a features file, keyed by its identity (canonical path, size and
// modification time). Least recently used entries are dropped beyond a budget of
// kSharedStatsBudgetBytes (counted as 3 D x D doubles per model); in-memory features are not shared.
inline constexpr std::size_t kSharedStatsBudgetBytes = std::size_t{2} << 30;
std::shared_ptr<rank::SharedDecompositions> shared_decompositions(const ArrayFile& file, const MatrixView& view);

}  // namespace caulk::rankers
