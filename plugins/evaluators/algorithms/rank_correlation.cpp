#include "evaluators/algorithms/rank_correlation.hpp"

#include "caulk/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace caulk::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check(const std::vector<double>& x, const std::vector<double>& y, const char* what) {
  if (x.size() != y.size())
    throw std::invalid_argument(std::string(what) + ": the two sides have " + std::to_string(x.size()) + " and " +
                                std::to_string(y.size()) + " values");
  if (x.size() < 2) throw std::invalid_argument(std::string(what) + " needs at least two values");
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i]) || !std::isfinite(y[i]))
      throw std::invalid_argument(std::string(what) + ": " + (std::isfinite(x[i]) ? "ground truth" : "score") + " number " +
                                  std::to_string(i) + " (counting from 0) is " + std::to_string(std::isfinite(x[i]) ? y[i] : x[i]) +
                                  ", not a finite number");
}

// One lexicographic direction of scipy's _weightedrankedtau with rank=None, additive weights,
// written over pairs (hubs have dozens of models, so O(n^2) is nothing). The weights follow the
// decreasing lexicographic order by (x, y); elements tied in both keep numpy lexsort's order, in
// which the later index comes first in the decreasing order.
double weighted_tau_one_way(const std::vector<double>& x, const std::vector<double>& y) {
  const std::size_t n = x.size();
  std::vector<std::size_t> increasing(n);
  std::iota(increasing.begin(), increasing.end(), std::size_t{0});
  std::stable_sort(increasing.begin(), increasing.end(),
                   [&](std::size_t a, std::size_t b) { return x[a] < x[b] || (x[a] == x[b] && y[a] < y[b]); });
  std::vector<double> weight(n);
  for (std::size_t j = 0; j < n; ++j) weight[increasing[j]] = 1.0 / (1.0 + static_cast<double>(n - 1 - j));

  double total = 0, tied_x = 0, tied_y = 0, tied_both = 0, discordant = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j) {
      const double w = weight[i] + weight[j];
      total += w;
      const bool tx = x[i] == x[j], ty = y[i] == y[j];
      if (tx) tied_x += w;
      if (ty) tied_y += w;
      if (tx && ty) tied_both += w;
      if (!tx && !ty && ((x[i] < x[j]) != (y[i] < y[j]))) discordant += w;
    }
  if (tied_x == total || tied_y == total) return kNaN;  // a constant side
  const double tau = ((total - (tied_y + tied_x - tied_both)) - 2 * discordant) / std::sqrt(total - tied_x) / std::sqrt(total - tied_y);
  return std::min(1.0, std::max(-1.0, tau));
}

}  // namespace

double weighted_tau(const std::vector<double>& x, const std::vector<double>& y) {
  check(x, y, "weighted tau");
  return (weighted_tau_one_way(x, y) + weighted_tau_one_way(y, x)) / 2;
}

double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y) {
  check(x, y, "Kendall tau");
  double concordant = 0, discordant = 0, only_x = 0, only_y = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    for (std::size_t j = i + 1; j < x.size(); ++j) {
      const double dx = x[i] - x[j], dy = y[i] - y[j];
      if (dx == 0 && dy == 0) continue;
      if (dx == 0)
        only_x += 1;
      else if (dy == 0)
        only_y += 1;
      else if ((dx > 0) == (dy > 0))
        concordant += 1;
      else
        discordant += 1;
    }
  // tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)): pairs not tied in x times pairs not tied in y.
  const double untied_x = concordant + discordant + only_y, untied_y = concordant + discordant + only_x;
  if (untied_x == 0 || untied_y == 0) return kNaN;
  return (concordant - discordant) / std::sqrt(untied_x * untied_y);
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  check(x, y, "Pearson correlation");
  return stats::pearson(x, y);
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  check(x, y, "Spearman correlation");
  return stats::pearson(stats::average_ranks(x), stats::average_ranks(y));
}

double top1_regret(const std::vector<double>& x, const std::vector<double>& y) {
  check(x, y, "top-1 regret");
  const std::size_t top = static_cast<std::size_t>(std::max_element(x.begin(), x.end()) - x.begin());
  return *std::max_element(y.begin(), y.end()) - y[top];
}

}  // namespace caulk::eval
