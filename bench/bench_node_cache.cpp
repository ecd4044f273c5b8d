// Re-runs that redo only what changed (caulk/node_cache.hpp), on pipelines/merge.toml through the
// command line, wall-clock: targets from issue 21 (docs/performance.md, "Re-runs").
//   1. An unchanged re-run costs at most 10% of the first run plus the process start (measured as
//      `caulk check` of the same pipeline: loading the plugins and validating).
//   2. A one-parameter change on a merge node (`--set slerp.t=0.3`, with slerp.overwrite=true) costs at most 1.1x running
//      what must run again alone: that node and its descendants. Measured two ways:
//      a. as a pipeline of their own, `caulk run` into a fresh folder reading the first run's files
//         (the merge's two models, the eight other merges for the predictions, the target's test
//         split) with report.html: what a user running those nodes alone waits for, every run's
//         own costs included (the lock, run.json, the ledger, storing results). The exit status
//         follows this one.
//      b. their own seconds in the fresh run (run.json), the report the run writes after its nodes
//         (`caulk report` less the start), plus the process start: no run could cost that little,
//         as it leaves out the run's own costs; printed for comparison.
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

// slerp -> merged_predictions -> accuracy, and report.html, as a pipeline of their own over the
// files the first run into `first` wrote. The predictions node predicts the same nine merges; the
// evaluation judges only its predictions (the five other prediction sets of merge.toml's are
// left out, so this pipeline does a little less than the re-run does).
fs::path write_nodes_alone(const fs::path& dir, const fs::path& first) {
  fs::create_directories(dir);
  auto q = [](const fs::path& p) { return "\"" + p.string() + "\""; };
  std::ofstream(dir / "two.toml") << "[[model]]\nname = \"pre:a\"\ncheckpoint = " << q(first / "tune_a" / "pre:a.safetensors")
                                  << "\n[[model]]\nname = \"pre:b\"\ncheckpoint = " << q(first / "tune_b" / "pre:b.safetensors") << "\n";
  std::ofstream merges(dir / "merges.toml");
  for (const char* m : {"soup", "greedy_soup", "task_arithmetic", "ties", "dare", "fisher", "regmean", "search"})
    merges << "[[model]]\nname = \"" << m << "\"\ncheckpoint = " << q(first / m / (std::string(m) + ".safetensors")) << "\n";
  const fs::path target = first / "zoo" / "target";
  std::ofstream(dir / "alone.toml")
      << "[pipeline]\nname = \"slerp_alone\"\n"
      << "[[node]]\nid = \"two\"\ntype = \"checkpoint.load\"\nparams = { manifest = " << q(dir / "two.toml") << " }\n"
      << "[[node]]\nid = \"merges\"\ntype = \"checkpoint.load\"\nparams = { manifest = " << q(dir / "merges.toml") << " }\n"
      << "[[node]]\nid = \"data\"\ntype = \"dataset.load\"\nparams = { labels = { test = " << q(target / "test_labels.npy")
      << " }, inputs = { test = " << q(target / "test_inputs.npy") << " } }\n"
      << "[[node]]\nid = \"slerp\"\ntype = \"merge.slerp\"\ninputs = { checkpoints = \"two.checkpoints\" }\n"
      << "params = { t = 0.3, dtype = \"BF16\" }\n"
      << "[[node]]\nid = \"merged_predictions\"\ntype = \"predict.checkpoints\"\n"
      << "inputs = { checkpoints = [\"merges.checkpoints\", \"slerp\"], data = \"data\" }\nparams = { splits = [\"test\"] }\n"
      << "[[node]]\nid = \"accuracy\"\ntype = \"eval.classification\"\n"
      << "inputs = { predictions = \"merged_predictions\", data = \"data\" }\n"
      << "[[observer]]\ntype = \"report.html\"\n";
  return dir / "alone.toml";
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

  std::vector<double> start, first, unchanged, changed, alone, report, own_pipeline;
  for (int i = 0; i < kRepeats; ++i) {
    const fs::path out = root / ("run" + std::to_string(i));
    start.push_back(timed(base + " check " + quote(pipeline.string())));
    first.push_back(run(out, ""));
    const Json fresh = record(out);
    const fs::path alone_pipeline = write_nodes_alone(root / ("alone" + std::to_string(i)), out);
    own_pipeline.push_back(timed(base + " run " + quote(alone_pipeline.string()) + " --jobs 2 --out " +
                                 quote((root / ("alone" + std::to_string(i)) / "out").string())));
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
  const double o = median(own_pipeline);
  const bool changed_ok = c <= 1.1 * o;
  std::printf("process start (caulk check merge.toml)   %.3f s\n", s);
  std::printf("first run of merge.toml                  %.3f s\n", f);
  std::printf("unchanged re-run                         %.3f s  (target <= 10%% of the first + start = %.3f s): %s\n", u, 0.10 * f + s,
              unchanged_ok ? "met" : "NOT met");
  std::printf("  of which report.html (after every run)  %.3f s (`caulk report` less the start)\n", median(report));
  std::printf("re-run after --set slerp.t=0.3           %.3f s\n", c);
  std::printf("  a. those nodes as a pipeline of their own (fresh folder, with report.html) %.3f s; ratio %.2f (target <= 1.1): %s\n", o,
              c / o, changed_ok ? "met" : "NOT met");
  std::printf("  b. their own seconds in the first run and the report %.3f s + start = %.3f s; ratio %.2f (1.1 would be %s)\n", a, a + s,
              c / (a + s), c <= 1.1 * (a + s) ? "met" : "NOT met");
  return unchanged_ok && changed_ok ? 0 : 1;
}
