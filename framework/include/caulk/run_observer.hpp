// Run observers: engine hooks that see a run from outside its graph (each node as it starts and
// ends, then the run's final state) without being nodes. report.html is one; a third-party plugin
// may add others (a dashboard feed, a notification) with PluginRegistrar::add_observer.
//
// A pipeline asks for an observer under [[observer]] (docs/pipeline-format.md):
//
//   [[observer]]
//   type = "report.html"
//   params = { title = "Merging two models" }
//
// Its parameters are declared and validated like a node's. Observers run in the process that runs
// the graph (rank 0 under mpirun), in file order; the hooks of one run are never called
// concurrently. An observer's outcome never changes a node's: when one throws, the run is
// "failed" and run.json names the observer and why (RunReport::observer_errors).
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "caulk/node.hpp"
#include "caulk/run_report.hpp"

namespace caulk {

class ObserverContext {
 public:
  // `log_line` receives each finished line of log() (stderr when null).
  ObserverContext(std::string type, const Params& params, std::filesystem::path out_dir,
                  std::function<void(const std::string&)> log_line = nullptr);
  const std::string& type() const { return type_; }
  const Params& params() const { return params_; }
  // The run's folder (--out): files the observer writes there are the run's outputs, listed and
  // cleaned with the nodes' (caulk/run_folder.hpp). Write them atomically (caulk/io/atomic_file.hpp).
  const std::filesystem::path& out_dir() const { return out_dir_; }
  // One line to the user on stderr, prefixed with the observer's type.
  void log(std::string_view line) const;
  // In run_finished: the record OUT/run.json holds, as the JSON it was written from (so an
  // observer need not read and parse the file again); null where it is not known.
  const Json* record() const { return record_; }
  void set_record(const Json* record) { record_ = record; }

 private:
  std::string type_;
  const Params& params_;
  std::filesystem::path out_dir_;
  std::function<void(const std::string&)> log_line_;
  const Json* record_ = nullptr;
};

class RunObserver {
 public:
  virtual ~RunObserver();
  // The run starts: every node pending, run.json says "running".
  virtual void run_started(const RunReport& report, ObserverContext& ctx);
  // Node `node` (report.nodes[node]) starts to run, or to be reused from the cache.
  virtual void node_started(const RunReport& report, std::size_t node, ObserverContext& ctx);
  // Node `node` has ended: ok (maybe cached), failed or interrupted. Skipped nodes do not start
  // or end; run_finished sees them.
  virtual void node_finished(const RunReport& report, std::size_t node, ObserverContext& ctx);
  // The run has ended and OUT/run.json holds its final record (also for a failed run; not called
  // for an interrupted one, whose user asked to stop). Also called by `caulk report RUN_DIR` on a
  // run read back from its folder.
  virtual void run_finished(const RunReport& report, ObserverContext& ctx) = 0;
};

}  // namespace caulk
