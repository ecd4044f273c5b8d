// Running a validated pipeline: ready nodes on a pool of --jobs threads, results independent of
// the width; on a failure no new node starts, running ones finish, descendants are skipped, and
// every error is reported. Writes OUT/run.json atomically: status "running" when the run starts
// (so a record left by a killed run never passes for a result), then the outcome at the end.
// When a stop is requested (caulk/cancel.hpp: SIGINT, SIGTERM) no new node starts, running
// nodes stop at their next step, and run.json says "interrupted".
#pragma once
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "caulk/context.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/provenance.hpp"
#include "caulk/run_report.hpp"

namespace caulk {

class ThreadPool;

struct RunOptions {
  std::filesystem::path out_dir;  // created if missing
  unsigned jobs = 1;
  std::ostream* out = nullptr;  // tables and reports (stdout when null)
  std::ostream* err = nullptr;  // progress and errors (stderr when null)
  bool progress_bars = false;   // draw bars (stderr is a terminal)
  // Who runs the nodes' distributable units (caulk/units.hpp); this process's pool when null.
  UnitDispatcher* units = nullptr;
  // The memory budget of one node, in bytes (NodeContext::check_memory); 0 means no limit.
  std::size_t memory_limit = 0;
  // The command line's part of the provenance (caulk/provenance.hpp); null for a run started by
  // a program: run.json then records no command, plugins or pipeline copy.
  const RunInvocation* invocation = nullptr;
  // Reuse the results of nodes whose inputs and parameters did not change since a run into the
  // same folder (caulk/node_cache.hpp); false (`--no-cache`) runs every node.
  bool use_cache = true;
};

// Runs every node and tells the pipeline's run observers (caulk/run_observer.hpp) as it goes;
// writes OUT/run.json ("running" at the start, the outcome at the end, then again only when an
// observer failed), OUT/pipeline.dot and, given an invocation, the copy of the pipeline file
// OUT/pipeline.toml. First takes the folder's lock (caulk/run_folder.hpp: throws RunFolderBusy when
// another run holds it), then removes the temporaries that killed runs left in the output folder
// (io::recover_stale_temporaries) and moves aside the outputs of another pipeline; at the end
// removes the previous run's outputs this run did not write again. Never throws for a node's or an
// observer's failure or an interruption (all are in the report), nor when the final run.json cannot
// be written (report.record_error says why). Throws Error only when the run cannot start (e.g. the
// output folder cannot be created or written).
RunReport run_pipeline(const Pipeline& pipeline, const RunOptions& options);

// Runs pipelines on a pool of threads it owns for its lifetime (caulk/parallel.hpp): nodes, the
// units they deal and the loops inside them run on it, and two executors in one process never
// share or swap pools. A program that runs several pipelines (a sweep, a service) starts its
// threads once. run_pipeline(p, o) is Executor(o.jobs).run(p, o).
class Executor {
 public:
  explicit Executor(unsigned jobs);  // 0 counts as 1
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  unsigned jobs() const;
  // run_pipeline's contract, on this executor's pool: its width replaces options.jobs. One run at
  // a time per executor (a second caller waits).
  RunReport run(const Pipeline& pipeline, const RunOptions& options);

 private:
  std::unique_ptr<ThreadPool> pool_;
  std::mutex running_;
};

}  // namespace caulk
