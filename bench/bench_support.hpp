// What the ranker benchmarks share: the N = 20000, D = 1024, C = 10 float32 problem, the floor
// (one dsyrk plus one dsyevd on all cores) and a reporter that keeps each benchmark's time.
#pragma once
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "caulk/matrix.hpp"

extern "C" void openblas_set_num_threads(int);

namespace caulk::bench {

constexpr int kRows = 20000, kDims = 1024, kClasses = 10;
inline const unsigned kCores = std::max(1u, std::thread::hardware_concurrency());

struct Problem {
  RowMatrixF features;
  std::vector<int> labels;
};

// Features with class structure (a class mean plus noise), so the rankers do real work; `seed`
// makes different models.
inline Problem make_problem(std::uint64_t seed) {
  Problem p;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  RowMatrixF means(kClasses, kDims);
  for (int c = 0; c < kClasses; ++c)
    for (int d = 0; d < kDims; ++d) means(c, d) = 0.3f * normal(rng);
  p.features.resize(kRows, kDims);
  p.labels.resize(kRows);
  for (int i = 0; i < kRows; ++i) {
    p.labels[i] = i % kClasses;
    for (int d = 0; d < kDims; ++d) p.features(i, d) = means(p.labels[i], d) + normal(rng);
  }
  return p;
}

inline const Problem& problem() {
  static const Problem p = make_problem(42);
  return p;
}

// The floor: one float64 F^T F (OpenBLAS dsyrk) and one eigendecomposition of it (LAPACKE dsyevd),
// OpenBLAS on every core. The float64 copy is the floor's input, made outside the timed region.
inline void floor_dsyrk_dsyevd(benchmark::State& state) {
  const RowMatrix f = problem().features.cast<double>();
  openblas_set_num_threads(static_cast<int>(kCores));
  Matrix gram(kDims, kDims);
  Vector eigenvalues(kDims);
  for (auto _ : state) {
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, kDims, kRows, 1.0, f.data(), kDims, 0.0, gram.data(), kDims);
    LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', kDims, gram.data(), kDims, eigenvalues.data());
    benchmark::DoNotOptimize(eigenvalues.data());
  }
  openblas_set_num_threads(1);
}

// Keeps each benchmark's mean real time (seconds, by function name) to compare them after the run.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> seconds;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration) seconds[r.run_name.function_name] = r.GetAdjustedRealTime() / 1e3;
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace caulk::bench
