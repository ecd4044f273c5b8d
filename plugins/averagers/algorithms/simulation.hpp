// A regression simulation with a known answer for localized model averaging (simulate.local_experts).
//
// z ~ U[0, 1]^2 is split into three regions, the Voronoi cells of the sites a = (0.2, 0.25),
// b = (0.8, 0.25) and c = (0.5, 0.85) (a partition that a softmax of linear functions of z can
// represent exactly). The truth is y = g(z) + N(0, noise^2) with g(z) = sin(2 pi z1) + cos(2 pi z2).
// Three models ("expert_a", "expert_b", "expert_c") predict g(z) + e_k(z):
//   scenario "regional": e_k ~ N(0, expert_noise^2) in region k, and
//                        far_bias (1 + 0.5 sin(2 pi (z1 - z2) + k)) + N(0, far_noise^2) elsewhere;
//   scenario "uniform":  expert_a has N(0, expert_noise^2) everywhere (uniformly best); the others
//                        N(0, (2 expert_noise)^2) in their region and the far error elsewhere.
// The models are fixed functions of z (not refitted on any split), so their leave-one-out
// predictions on a split equal their predictions there.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "caulk/matrix.hpp"

namespace caulk::avg {

struct LocalExpertsOptions {
  int train = 500, validation = 1000, test = 2000;
  double noise = 0.1;                 // of y around g(z)
  double expert_noise = 0.1;          // of a model in its own region
  double far_noise = 0.5;             // of a model outside its region
  double far_bias = 1.0;              // amplitude of a model's bias outside its region
  std::string scenario = "regional";  // or "uniform"
  std::uint64_t seed = 0;
};

struct SimulatedSplit {
  Matrix z;                 // N x 2
  Matrix y;                 // N x 1
  Matrix predictions;       // N x 3, column k = model k
  std::vector<int> region;  // 0, 1, 2 (a, b, c)
};

struct LocalExperts {
  std::vector<std::string> models{"expert_a", "expert_b", "expert_c"};
  SimulatedSplit train, validation, test;
};

// The region (0, 1, 2) of a point: its nearest site (the lowest index on ties).
int expert_region(double z1, double z2);
// Throws Error on an unknown scenario or non-positive sizes. Deterministic in the seed.
LocalExperts simulate_local_experts(const LocalExpertsOptions& o);

}  // namespace caulk::avg
