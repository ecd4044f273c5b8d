#include "mergers/algorithms/coefficient_search.hpp"

#include <cmath>

#include "caulk/error.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::merge {

std::vector<std::vector<double>> coefficient_candidates(std::size_t models, int grid, int draws, std::uint64_t seed) {
  std::vector<std::vector<double>> out;
  if (models == 0) throw Error("no models to search coefficients for");
  if (models == 1) return {{1.0}};
  if (models == 2) {
    if (grid < 2) throw Error("the coefficient grid needs at least 2 points");
    for (int g = 0; g < grid; ++g) {
      const double a = static_cast<double>(g) / (grid - 1);
      out.push_back({a, 1 - a});
    }
    return out;
  }
  out.push_back(std::vector<double>(models, 1.0 / static_cast<double>(models)));
  seeding::SeededUniform rng(seed);
  for (int d = 0; d < draws; ++d) {
    std::vector<double> e(models);
    double sum = 0;
    for (double& x : e) {
      const double u = static_cast<double>(rng.next_u64() >> 11) * 0x1.0p-53;  // [0, 1)
      x = -std::log1p(-u);                                                     // Exp(1)
      sum += x;
    }
    for (double& x : e) x = sum > 0 ? x / sum : 1.0 / static_cast<double>(models);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace caulk::merge
