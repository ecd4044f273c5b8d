// Running a pipeline's nodes on a pool (the executor's part between the run's start and its
// record; caulk/executor.hpp): ready nodes submitted in topological order, no more in flight than
// workers, a failure starting nothing more, reused nodes planned before any starts
// (caulk/node_cache.hpp), each node's provenance, ledger record and cache entry made as it ends.
#pragma once
#include <filesystem>
#include <utility>
#include <vector>

#include "caulk/file_hash.hpp"
#include "caulk/io/access_log.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/provenance.hpp"
#include "caulk/run_folder.hpp"
#include "caulk/run_report.hpp"
#include "run_environment.hpp"

namespace caulk {
class NodeCache;
class ObserverSet;
class ThreadPool;
}  // namespace caulk

namespace caulk::detail {

// What the nodes' ends are recorded into; any may be null (not recorded).
struct SchedulerParts {
  ProvenanceRecorder* provenance = nullptr;
  RunFolderLedger* ledger = nullptr;
  FileHashCache* hashes = nullptr;
  NodeCache* cache = nullptr;
  ObserverSet* observers = nullptr;  // told of each node's start and end
};

// Runs (or reuses) every node it can and fills report.nodes: each node's status, time, summary,
// tables, figures and error, and why the others were skipped. Returns whether a stop request
// (caulk/cancel.hpp) cut the run short. Never throws for a node's failure. Every task it gave the
// pool has ended when it returns.
bool run_nodes(const Pipeline& pipeline, RunEnvironment& env, RunReport& report, const SchedulerParts& parts, ThreadPool& pool);

// The folder ledger's entries for the files a node (or an observer) wrote; those `checked` (a
// reused node's) as the check found them.
std::vector<std::pair<std::filesystem::path, RunFolderLedger::Entry>> ledger_entries(const io::AccessLog& files, FileHashCache& hashes,
                                                                                     const KnownFiles* checked = nullptr);

}  // namespace caulk::detail
