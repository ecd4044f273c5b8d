// LogME against its floor, in the same run (issue 2, docs/performance.md).
//
// Floor: the two unavoidable steps with the best kernels on the machine, all cores: one float64
// F^T F (OpenBLAS dsyrk) and one symmetric eigendecomposition of the D x D result (LAPACKE
// dsyevd). caulk's LogME must take at most 1.3 x the floor on N = 20000, D = 1024, C = 10 float32
// features. `bench_logme --memory FILE.npy` instead runs LogME once on a memory-mapped file and
// prints the peak resident memory, for the memory target.
#include <benchmark/benchmark.h>
#include <Eigen/Eigenvalues>
#include <cblas.h>
#include <lapacke.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "bench_support.hpp"
#include "caulk/artifacts.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/parallel.hpp"
#include "caulk/transferability/logme.hpp"

namespace {

using namespace caulk::bench;

void BM_Floor_Dsyrk_Dsyevd(benchmark::State& state) { floor_dsyrk_dsyevd(state); }

void BM_LogME(benchmark::State& state) {
  const Problem& p = problem();
  openblas_set_num_threads(1);  // as the rankers plugin runs it: parallelism from caulk's pool
  caulk::ThreadPool pool(kCores);
  caulk::ScopedPool scoped(&pool);
  for (auto _ : state) {
    auto r = caulk::rank::logme_classification(caulk::MatrixView::borrow(p.features), p.labels, kClasses);
    benchmark::DoNotOptimize(r.score);
  }
}

// Eigen's own kernels for the same two steps, to decide between Eigen and OpenBLAS/LAPACKE.
void BM_Eigen_RankUpdate_SelfAdjointEigenSolver(benchmark::State& state) {
  const caulk::Matrix f = problem().features.cast<double>();
  for (auto _ : state) {
    caulk::Matrix gram = caulk::Matrix::Zero(kDims, kDims);
    gram.selfadjointView<Eigen::Upper>().rankUpdate(f.transpose());
    Eigen::SelfAdjointEigenSolver<caulk::Matrix> eig(gram.selfadjointView<Eigen::Upper>());
    benchmark::DoNotOptimize(eig.eigenvalues().data());
  }
}

BENCHMARK(BM_Eigen_RankUpdate_SelfAdjointEigenSolver)->Unit(benchmark::kMillisecond)->Iterations(2)->UseRealTime();
BENCHMARK(BM_Floor_Dsyrk_Dsyevd)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();
BENCHMARK(BM_LogME)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

int memory_mode(const char* file) {
  // Make the file when it does not exist, then measure in a fresh process reading it.
  if (!std::filesystem::exists(file)) {
    caulk::io::write_npy(file, problem().features);
    std::printf("wrote %s; run again to measure\n", file);
    return 0;
  }
  openblas_set_num_threads(1);
  std::vector<int> labels(kRows);
  for (int i = 0; i < kRows; ++i) labels[i] = i % kClasses;
  const long before = peak_rss_kib();
  caulk::ArrayFile array{file, {}};
  caulk::MatrixView view = array.open("features");
  caulk::ThreadPool pool(kCores);
  caulk::ScopedPool scoped(&pool);
  auto r = caulk::rank::logme_classification(view, labels, kClasses);
  const long after = peak_rss_kib();
  const double features_mib = double(kRows) * kDims * 4 / (1 << 20);
  const double d2_mib = double(kDims) * kDims * 8 / (1 << 20);
  std::printf("score %.6f\npeak RSS before %.1f MiB, after %.1f MiB (growth %.1f MiB)\n", r.score, before / 1024.0, after / 1024.0,
              (after - before) / 1024.0);
  std::printf("float32 features %.1f MiB; one D x D double matrix %.1f MiB\n", features_mib, d2_mib);
  std::printf("growth beyond the features: %.1f MiB = %.1f D^2 doubles\n", (after - before) / 1024.0 - features_mib,
              ((after - before) / 1024.0 - features_mib) / d2_mib);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--memory") == 0) return memory_mode(argv[2]);
  benchmark::Initialize(&argc, argv);
  problem();  // generate the data before timing
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const double floor = reporter.seconds["BM_Floor_Dsyrk_Dsyevd"];
  const double logme = reporter.seconds["BM_LogME"];
  if (floor > 0 && logme > 0) {
    const double ratio = logme / floor;
    std::printf("\nLogME %.3f s, floor (dsyrk + dsyevd, %u threads) %.3f s: %.2f x the floor (target <= 1.30): %s\n", logme, kCores, floor,
                ratio, ratio <= 1.3 ? "MET" : "NOT MET");
  }
  benchmark::Shutdown();
  return 0;
}
