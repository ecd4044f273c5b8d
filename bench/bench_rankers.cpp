// The covariance-based rankers against their floor, in the same run (issue 3, docs/performance.md).
//
// Floor: one float64 F^T F (OpenBLAS dsyrk) plus one D x D symmetric eigendecomposition (LAPACKE
// dsyevd), all cores, on N = 20000, D = 1024, C = 10 float32 features. Targets:
//  1. H-score, shrinkage H-score, TransRate and LogME each within 2 x the floor;
//  2. the four together on one model, sharing their decompositions, within 2.5 x the floor:
//     measured in-process (one FeatureStats) and through a real pipeline (`caulk run`, where the
//     rankers share through the plugin's cache);
//  3. a hub of 16 such models ranked by LogME with --jobs 2 in at most 0.6 x the time with --jobs 1.
// Usage: bench_rankers [--caulk PATH/TO/caulk] [--scratch DIR] [google-benchmark flags]. The
// pipeline parts need the caulk binary (default: beside this program) and write 16 x 80 MB of
// features under the scratch folder (default: a folder in /tmp, removed at the end).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "bench_support.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/parallel.hpp"
#include "caulk/transferability/logme.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace fs = std::filesystem;

namespace {

using namespace caulk::bench;

constexpr int kHubModels = 16;

caulk::MatrixView features() { return caulk::MatrixView::borrow(problem().features); }

void BM_Floor_Dsyrk_Dsyevd(benchmark::State& state) { floor_dsyrk_dsyevd(state); }

// Runs `fn` on caulk's pool with BLAS single-threaded, as the rankers plugin does.
template <class Fn>
void on_pool(benchmark::State& state, Fn fn) {
  openblas_set_num_threads(1);
  caulk::ThreadPool pool(kCores);
  caulk::ScopedPool scoped(&pool);
  for (auto _ : state) benchmark::DoNotOptimize(fn());
}

void BM_HScore(benchmark::State& s) {
  on_pool(s, [] { return caulk::rank::hscore(features(), problem().labels, kClasses); });
}
void BM_HScoreShrinkage(benchmark::State& s) {
  on_pool(s, [] { return caulk::rank::hscore_shrinkage(features(), problem().labels, kClasses).score; });
}
void BM_TransRate(benchmark::State& s) {
  on_pool(s, [] { return caulk::rank::transrate(features(), problem().labels, kClasses, 1e-4); });
}
void BM_LogME(benchmark::State& s) {
  on_pool(s, [] { return caulk::rank::logme_classification(features(), problem().labels, kClasses).score; });
}
// The four on one FeatureStats: the scatter and both eigendecompositions computed once. The
// rankers run as a pipeline runs them, concurrently on the pool.
void BM_FourShared(benchmark::State& s) {
  on_pool(s, [] {
    const caulk::rank::FeatureStats stats(features());
    const auto& y = problem().labels;
    double scores[4] = {};
    caulk::parallel_for(4, [&](std::size_t r) {
      if (r == 0) scores[r] = caulk::rank::logme_classification(stats, y, kClasses).score;
      if (r == 1) scores[r] = caulk::rank::hscore(stats, y, kClasses);
      if (r == 2) scores[r] = caulk::rank::hscore_shrinkage(stats, y, kClasses).score;
      if (r == 3) scores[r] = caulk::rank::transrate(stats, y, kClasses, 1e-4);
    });
    return scores[0] + scores[1] + scores[2] + scores[3];
  });
}

BENCHMARK(BM_Floor_Dsyrk_Dsyevd)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_HScore)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_HScoreShrinkage)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_TransRate)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_LogME)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_FourShared)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// ------------------------------------------------------------------ pipelines through `caulk run`

void write_text(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

// Wall seconds of `caulk run PIPELINE --jobs J`, the best of `repeats` runs (page cache warm).
double time_run(const fs::path& caulk, const fs::path& pipeline, const fs::path& out, int jobs, int repeats) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const std::string cmd = "'" + caulk.string() + "' run '" + pipeline.string() + "' --out '" + out.string() + "' --jobs " +
                            std::to_string(jobs) + " >/dev/null 2>&1";
    const auto start = std::chrono::steady_clock::now();
    const int status = std::system(cmd.c_str());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (status != 0) {
      std::fprintf(stderr, "failed: %s (see %s/run.json)\n", cmd.c_str(), out.string().c_str());
      return -1;
    }
    best = std::min(best, seconds);
  }
  return best;
}

std::string pipeline_text(const std::string& name, const std::vector<std::string>& rankers) {
  std::string text = "[pipeline]\nname = \"" + name +
                     "\"\n[[node]]\nid = \"task\"\ntype = \"dataset.load\"\n"
                     "params = { labels = \"labels.npy\" }\n[[node]]\nid = \"hub\"\ntype = \"adapter.precomputed\"\n"
                     "params = { manifest = \"" +
                     name + ".hub.toml\" }\n";
  for (const auto& r : rankers)
    text += "[[node]]\nid = \"" + r + "\"\ntype = \"rank." + r + "\"\ninputs = { features = \"hub\", data = \"task\" }\n";
  return text;
}

std::string hub_text(int models) {
  std::string text = "[hub]\nname = \"bench\"\n";
  for (int m = 0; m < models; ++m)
    text += "[[model]]\nname = \"m" + std::to_string(m) + "\"\nfeatures = \"m" + std::to_string(m) + ".npy\"\n";
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path caulk = fs::canonical("/proc/self/exe").parent_path() / "caulk";
  fs::path scratch;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--caulk") == 0 && i + 1 < argc)
      caulk = argv[++i];
    else if (std::strcmp(argv[i], "--scratch") == 0 && i + 1 < argc)
      scratch = argv[++i];
    else
      rest.push_back(argv[i]);
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  problem();
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const double floor = reporter.seconds["BM_Floor_Dsyrk_Dsyevd"];
  std::printf("\nfloor (dsyrk + dsyevd, %u threads): %.3f s\n", kCores, floor);
  auto verdict = [&](const char* what, double seconds, double limit) {
    std::printf("%-44s %.3f s = %.2f x the floor (target <= %.1f): %s\n", what, seconds, seconds / floor, limit,
                seconds / floor <= limit ? "MET" : "NOT MET");
  };
  verdict("H-score", reporter.seconds["BM_HScore"], 2.0);
  verdict("shrinkage H-score", reporter.seconds["BM_HScoreShrinkage"], 2.0);
  verdict("TransRate", reporter.seconds["BM_TransRate"], 2.0);
  verdict("LogME", reporter.seconds["BM_LogME"], 2.0);
  verdict("the four, shared, in-process", reporter.seconds["BM_FourShared"], 2.5);

  if (!fs::exists(caulk)) {
    std::printf("no caulk binary at %s: skipping the pipeline measurements\n", caulk.string().c_str());
    return 0;
  }
  const bool own_scratch = scratch.empty();
  if (own_scratch) scratch = fs::temp_directory_path() / ("caulk-bench-rankers-" + std::to_string(getpid()));
  fs::create_directories(scratch);
  std::vector<std::int64_t> labels(problem().labels.begin(), problem().labels.end());
  caulk::io::write_npy(scratch / "labels.npy", labels);
  for (int m = 0; m < kHubModels; ++m) {
    const fs::path file = scratch / ("m" + std::to_string(m) + ".npy");
    if (!fs::exists(file)) caulk::io::write_npy(file, m == 0 ? problem().features : make_problem(100 + m).features);
  }
  write_text(scratch / "four.hub.toml", hub_text(1));
  write_text(scratch / "four.toml", pipeline_text("four", {"logme", "hscore", "hscore_shrinkage", "transrate"}));
  write_text(scratch / "logme_only.hub.toml", hub_text(1));
  write_text(scratch / "logme_only.toml", pipeline_text("logme_only", {"logme"}));
  write_text(scratch / "hub.hub.toml", hub_text(kHubModels));
  write_text(scratch / "hub.toml", pipeline_text("hub", {"logme"}));

  const double four = time_run(caulk, scratch / "four.toml", scratch / "out-four", static_cast<int>(kCores), 3);
  const double one = time_run(caulk, scratch / "logme_only.toml", scratch / "out-one", static_cast<int>(kCores), 3);
  std::printf("\n`caulk run` with LogME alone on one model:    %.3f s (%.2f x the floor)\n", one, one / floor);
  verdict("`caulk run` with the four rankers, one model", four, 2.5);
  const double serial = time_run(caulk, scratch / "hub.toml", scratch / "out-hub1", 1, 1);
  const double parallel = time_run(caulk, scratch / "hub.toml", scratch / "out-hub2", 2, 1);
  std::printf("hub of %d models, LogME: --jobs 1 %.2f s, --jobs 2 %.2f s: %.2f x (target <= 0.60): %s\n", kHubModels, serial, parallel,
              parallel / serial, parallel / serial <= 0.6 ? "MET" : "NOT MET");
  if (own_scratch) fs::remove_all(scratch);
  benchmark::Shutdown();
  return 0;
}
