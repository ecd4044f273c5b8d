// How well a ranker's scores agree with the ground truth (docs/rankers.md, "Judging a ranker").
// x: the ranker's scores, oriented so that higher means better; y: the ground truth (e.g. the
// accuracy each model reached after tuning). Same length, at least two entries.
#pragma once
#include <vector>

namespace caulk::eval {

// scipy.stats.weightedtau(x, y) with its defaults: hyperbolic weigher 1/(r + 1) on the rank r of
// each element (rank 0 = the largest), additive exchange weights w_i + w_j, and the average of the
// values for the decreasing lexicographic ranks by (x, y) and by (y, x). NaN when either side is
// constant, as scipy.
double weighted_tau(const std::vector<double>& x, const std::vector<double>& y);
// Kendall's tau-b (tie-corrected), as scipy.stats.kendalltau. NaN when either side is constant.
double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y);
// Pearson correlation of the average ranks. NaN when either side is constant.
double spearman(const std::vector<double>& x, const std::vector<double>& y);
// Pearson correlation. NaN when either side is constant.
double pearson(const std::vector<double>& x, const std::vector<double>& y);
// max(y) - y[top], where top is the index of the largest x (the first one on ties).
double top1_regret(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace caulk::eval
