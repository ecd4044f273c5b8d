// Small statistics that several plugin families need (ranks, correlation), so that rankers and
// evaluators compute them one way.
#pragma once
#include <vector>

namespace caulk::stats {

// Ranks 1..n; tied values share their average rank.
std::vector<double> average_ranks(const std::vector<double>& v);
// Pearson correlation of two equally long vectors; NaN when either is constant.
double pearson(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace caulk::stats
