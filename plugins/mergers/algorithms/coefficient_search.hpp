// Candidate merge coefficients for search.merge_coefficients: points on the simplex (one
// coefficient per model, summing to 1).
#pragma once
#include <cstdint>
#include <vector>

namespace caulk::merge {

// Two models: the grid (a, 1 - a) for a = 0, 1/(grid - 1), ..., 1 (grid >= 2).
// More models: the uniform point first, then `draws` seeded Dirichlet(1, ..., 1) draws (uniform on
// the simplex: normalised Exp(1) variates from the SplitMix64 generator of the models family).
// One model: the single point (1).
std::vector<std::vector<double>> coefficient_candidates(std::size_t models, int grid, int draws, std::uint64_t seed);

}  // namespace caulk::merge
