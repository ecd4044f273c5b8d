// Ranking a hub on several processes (issue 9, docs/performance.md and docs/scaling.md).
//
// Target: a hub of 16 models (N = 20000, D = 1024, C = 10 float32 features) ranked by LogME with
// `mpirun -np 2 caulk run ... --jobs 1` in at most 0.6 x the time of one process with --jobs 1,
// on a 2-core machine, both measured here in the same run. Also prints the per-unit cost (one
// model scored) and what travels per unit, for the estimates of docs/scaling.md.
// Usage: bench_mpi [--caulk PATH/TO/caulk] [--scratch DIR] [--repeats K] [--ranks R]. Writes
// 16 x 80 MB of features under the scratch folder (default: a folder in /tmp, removed at the end).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "bench_support.hpp"
#include "caulk/io/npy.hpp"

#ifndef CAULK_MPIEXEC
#define CAULK_MPIEXEC ""
#endif

namespace fs = std::filesystem;
using namespace caulk::bench;

namespace {

constexpr int kHubModels = 16;

void write_text(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

std::string mpirun_prefix(int ranks) {
  std::string cmd = std::string("'") + CAULK_MPIEXEC + "'";
  if (::geteuid() == 0) cmd += " --allow-run-as-root";
  cmd +=
      " --oversubscribe --bind-to none --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
      " --mca pml ob1 -np " +
      std::to_string(ranks) + " ";
  return cmd;
}

// Wall seconds of `[PREFIX] caulk run PIPELINE --jobs 1`, the best of `repeats` runs (page cache warm).
double time_run(const std::string& prefix, const fs::path& caulk, const fs::path& pipeline, const fs::path& out, int repeats) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const std::string cmd = prefix + "'" + caulk.string() + "' run '" + pipeline.string() + "' --out '" + out.string() +
                            "' --jobs 1 >/dev/null 2>'" + (out.string() + ".err") + "'";
    const auto start = std::chrono::steady_clock::now();
    const int status = std::system(cmd.c_str());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (status != 0) {
      std::fprintf(stderr, "failed: %s (see %s.err)\n", cmd.c_str(), out.string().c_str());
      std::exit(1);
    }
    best = std::min(best, seconds);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path caulk = fs::canonical("/proc/self/exe").parent_path() / "caulk";
  fs::path scratch;
  int repeats = 2, ranks = 2;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--caulk") == 0 && i + 1 < argc)
      caulk = argv[++i];
    else if (std::strcmp(argv[i], "--scratch") == 0 && i + 1 < argc)
      scratch = argv[++i];
    else if (std::strcmp(argv[i], "--repeats") == 0 && i + 1 < argc)
      repeats = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--ranks") == 0 && i + 1 < argc)
      ranks = std::atoi(argv[++i]);
  }
  if (std::strlen(CAULK_MPIEXEC) == 0) {
    std::printf("caulk was built without MPI support: nothing to measure\n");
    return 0;
  }
  const bool own_scratch = scratch.empty();
  if (own_scratch) scratch = fs::temp_directory_path() / ("caulk-bench-mpi-" + std::to_string(getpid()));
  fs::create_directories(scratch);
  std::vector<std::int64_t> labels(problem().labels.begin(), problem().labels.end());
  caulk::io::write_npy(scratch / "labels.npy", labels);
  std::string hub = "[hub]\nname = \"bench\"\n";
  for (int m = 0; m < kHubModels; ++m) {
    const fs::path file = scratch / ("m" + std::to_string(m) + ".npy");
    if (!fs::exists(file)) caulk::io::write_npy(file, m == 0 ? problem().features : make_problem(100 + m).features);
    hub += "[[model]]\nname = \"m" + std::to_string(m) + "\"\nfeatures = \"m" + std::to_string(m) + ".npy\"\n";
  }
  write_text(scratch / "hub.hub.toml", hub);
  write_text(scratch / "hub.toml",
             "[pipeline]\nname = \"hub\"\n[[node]]\nid = \"task\"\ntype = \"dataset.load\"\nparams = { labels = \"labels.npy\" }\n"
             "[[node]]\nid = \"hub\"\ntype = \"adapter.precomputed\"\nparams = { manifest = \"hub.hub.toml\" }\n"
             "[[node]]\nid = \"logme\"\ntype = \"rank.logme\"\ninputs = { features = \"hub\", data = \"task\" }\n");

  // Warm the page cache once, then alternate so both see the same machine.
  time_run("", caulk, scratch / "hub.toml", scratch / "out-warm", 1);
  const double single = time_run("", caulk, scratch / "hub.toml", scratch / "out-single", repeats);
  const double many = time_run(mpirun_prefix(ranks), caulk, scratch / "hub.toml", scratch / "out-mpi", repeats);

  // Per-unit figures from the runs' own records.
  std::ifstream in(scratch / "out-single" / "run.json");
  const auto single_json = nlohmann::json::parse(in);
  double unit_sum = 0, unit_max = 0;
  for (const auto& [model, s] : single_json["nodes"]["logme"]["summary"]["seconds"].items()) {
    unit_sum += s.get<double>();
    unit_max = std::max(unit_max, s.get<double>());
  }
  std::ifstream in_mpi(scratch / "out-mpi" / "run.json");
  const auto mpi_json = nlohmann::json::parse(in_mpi);

  std::printf("hub of %d models (N = %d, D = %d, C = %d, float32), LogME, --jobs 1\n", kHubModels, kRows, kDims, kClasses);
  std::printf("  one process:             %.2f s (best of %d)\n", single, repeats);
  std::printf("  mpirun -np %d:            %.2f s (best of %d): %.2f x one process (target <= 0.60): %s\n", ranks, many, repeats,
              many / single, many / single <= 0.6 ? "MET" : "NOT MET");
  std::printf("  units by rank:           %s\n", mpi_json["ranks"]["units"].dump().c_str());
  std::printf("  per unit (one model):    mean %.3f s, max %.3f s of scoring\n", unit_sum / kHubModels, unit_max);
  const auto& r = mpi_json["ranks"];
  std::size_t remote = 0;
  for (std::size_t k = 1; k < r["units"].size(); ++k) remote += r["units"][k].get<std::size_t>();
  if (remote)
    std::printf("  per remote unit on the wire: %.0f bytes to the worker (description), %.0f bytes back (result)\n",
                r["bytes_to_workers"].get<double>() / remote, r["bytes_from_workers"].get<double>() / remote);
  if (own_scratch) fs::remove_all(scratch);
  return 0;
}
