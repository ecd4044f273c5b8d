#include "averagers/algorithms/simulation.hpp"

#include <fmt/format.h>

#include <cmath>

#include "averagers/algorithms/streams.hpp"
#include "caulk/error.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::avg {

namespace {

constexpr double kSites[3][2] = {{0.2, 0.25}, {0.8, 0.25}, {0.5, 0.85}};

class Normal {
 public:
  explicit Normal(std::uint64_t seed) : u_(seed) {}
  double uniform01() { return 0.5 * (u_.next(1.0) + 1.0); }
  double next() {  // Box-Muller, one value per pair (simple and platform-independent)
    double a = 0;
    while (a <= 0) a = uniform01();
    return std::sqrt(-2 * std::log(a)) * std::cos(2 * M_PI * uniform01());
  }

 private:
  seeding::SeededUniform u_;
};

double truth(double z1, double z2) { return std::sin(2 * M_PI * z1) + std::cos(2 * M_PI * z2); }

SimulatedSplit simulate_split(const LocalExpertsOptions& o, int rows, std::uint64_t stream) {
  Normal rng(seeding::derive_seed(o.seed, kSimulatedSplit, stream));
  SimulatedSplit s;
  s.z.resize(rows, 2);
  s.y.resize(rows, 1);
  s.predictions.resize(rows, 3);
  const bool uniform = o.scenario == "uniform";
  for (int i = 0; i < rows; ++i) {
    const double z1 = rng.uniform01(), z2 = rng.uniform01();
    s.z(i, 0) = z1;
    s.z(i, 1) = z2;
    const int region = expert_region(z1, z2);
    s.region.push_back(region);
    const double g = truth(z1, z2);
    s.y(i, 0) = g + o.noise * rng.next();
    for (int k = 0; k < 3; ++k) {
      double error = 0;
      if (uniform && k == 0) {
        error = o.expert_noise * rng.next();
      } else if (k == region) {
        error = (uniform ? 2 : 1) * o.expert_noise * rng.next();
      } else {
        error = o.far_bias * (1 + 0.5 * std::sin(2 * M_PI * (z1 - z2) + k)) + o.far_noise * rng.next();
      }
      s.predictions(i, k) = g + error;
    }
  }
  return s;
}

}  // namespace

int expert_region(double z1, double z2) {
  int best = 0;
  double best_d = 1e300;
  for (int k = 0; k < 3; ++k) {
    const double d = (z1 - kSites[k][0]) * (z1 - kSites[k][0]) + (z2 - kSites[k][1]) * (z2 - kSites[k][1]);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

LocalExperts simulate_local_experts(const LocalExpertsOptions& o) {
  if (o.scenario != "regional" && o.scenario != "uniform")
    throw Error(fmt::format("unknown scenario '{}' (known: regional, uniform)", o.scenario));
  if (o.train < 1 || o.validation < 1 || o.test < 1) throw Error("every split needs at least one row");
  LocalExperts out;
  out.train = simulate_split(o, o.train, 1);
  out.validation = simulate_split(o, o.validation, 2);
  out.test = simulate_split(o, o.test, 3);
  return out;
}

}  // namespace caulk::avg
