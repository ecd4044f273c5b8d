// Re-runs that redo only what changed (caulk/node_cache.hpp), on pipelines/merge.toml through the
// command line, wall-clock: targets from issue 21 (docs/performance.md, "Re-runs").
//   1. An unchanged re-run costs at most 10% of the first run plus the process start (measured as
//      `caulk check` of the same pipeline: loading the plugins and validating).
//   2. A one-parameter change on a merge node (`--set slerp.t=0.3`, with slerp.overwrite=true) costs at most 1.1x running
//      what must run again alone: that node and its descendants, as the fresh run timed them
//      (run.json's seconds), the report the run writes after its nodes (`caulk report` less the
//      start), plus the process start.
// Each figure is the median of kRepeats runs. Exits 1 when a target is missed.
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr int kRepeats = 7;  // the machine's noise is a few ms, the margins a few ms too

std::string quote(const std::string& s) { return "'" + s + "'"; }

// Runs the shell command and returns its wall-clock seconds; aborts when it fails.
double timed(const std::string& command) {
  const auto start = std::chrono::steady_clock::now();
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "failed: %s\n", command.c_str());
    std::exit(2);
  }
  return seconds;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Json record(const fs::path& out) {
  std::ifstream in(out / "run.json");
  return Json::parse(in);
}

}  // namespace

int main() {
  const fs::path caulk = fs::path(CAULK_BINARY_DIR) / "bin" / "caulk";
  const fs::path pipeline = fs::path(CAULK_SOURCE_DIR) / "pipelines" / "merge.toml";
  const fs::path root = fs::temp_directory_path() / "caulk-bench-node-cache";
  fs::remove_all(root);
  const std::string base = "env -u CAULK_PLUGIN_PATH " + quote(caulk.string());
  auto run = [&](const fs::path& out, const std::string& extra) {
    return timed(base + " run " + quote(pipeline.string()) + " --jobs 2 --out " + quote(out.string()) + " " + extra);
  };

  std::vector<double> start, first, unchanged, changed, alone, report;
  for (int i = 0; i < kRepeats; ++i) {
    const fs::path out = root / ("run" + std::to_string(i));
    start.push_back(timed(base + " check " + quote(pipeline.string())));
    first.push_back(run(out, ""));
    const Json fresh = record(out);
    unchanged.push_back(run(out, ""));
    const Json again = record(out);
    for (const auto& [id, node] : again["nodes"].items())
      if (!node.value("cached", false)) std::fprintf(stderr, "warning: %s ran again unchanged\n", id.c_str());
    changed.push_back(run(out, "--set slerp.t=0.3 --set slerp.overwrite=true"));  // merges replace their output only when told to
    // What had to run again, timed by the fresh run.
    double needed = 0;
    std::set<std::string> ran;
    const Json after_change = record(out);
    for (const auto& [id, node] : after_change["nodes"].items())
      if (!node.value("cached", false)) {
        ran.insert(id);
        needed += fresh["nodes"][id]["seconds"].get<double>();
      }
    // report.html, a run observer, is no node: its cost is `caulk report` on the folder less the
    // process start, and it is part of running those nodes alone as of any run.
    report.push_back(std::max(0.0, timed(base + " report " + quote(out.string())) - start.back()));
    alone.push_back(needed + report.back());
    if (i == 0) {
      std::printf("ran again after --set slerp.t=0.3:");
      for (const auto& id : ran) std::printf(" %s", id.c_str());
      std::printf("\n");
    }
  }
  fs::remove_all(root);

  const double s = median(start), f = median(first), u = median(unchanged), c = median(changed), a = median(alone);
  const bool unchanged_ok = u <= 0.10 * f + s;
  const bool changed_ok = c <= 1.1 * (a + s);
  std::printf("process start (caulk check merge.toml)   %.3f s\n", s);
  std::printf("first run of merge.toml                  %.3f s\n", f);
  std::printf("unchanged re-run                         %.3f s  (target <= 10%% of the first + start = %.3f s): %s\n", u, 0.10 * f + s,
              unchanged_ok ? "met" : "NOT met");
  std::printf("  of which report.html (after every run)  %.3f s (`caulk report` less the start)\n", median(report));
  std::printf("re-run after --set slerp.t=0.3           %.3f s\n", c);
  std::printf("  those nodes alone (fresh run's seconds, and the report) %.3f s + start = %.3f s; ratio %.2f (target <= 1.1): %s\n", a,
              a + s, c / (a + s), changed_ok ? "met" : "NOT met");
  return unchanged_ok && changed_ok ? 0 : 1;
}
