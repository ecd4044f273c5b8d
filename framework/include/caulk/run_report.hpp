// What a run did, node by node: the record run.json holds (caulk/executor.hpp writes it) and what
// run observers (caulk/run_observer.hpp) see.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "caulk/json.hpp"

namespace caulk {

// A node's state in a run. Pending or Running while the run goes on; Interrupted: stopped by a
// SIGINT/SIGTERM. run.json spells each as to_string gives it ("ok", "failed", ...).
enum class NodeStatus { Pending, Running, Ok, Failed, Skipped, Interrupted };
std::string_view to_string(NodeStatus status);

// The state of a whole run, as run.json's "status" spells it (to_string).
enum class RunStatus { Running, Ok, Failed, Interrupted };
std::string_view to_string(RunStatus status);

struct NodeOutcome {
  std::string id, type;
  NodeStatus status = NodeStatus::Pending;
  double seconds = 0;
  std::string error;
  bool cached = false;  // reused from an earlier run into the folder, not run
  Json summary = Json::object();
  Json tables = Json::object();   // every Table the node published, by port (for reports)
  Json figures = Json::object();  // every Figure the node published, by port (for reports)
};

struct RunReport {
  std::string pipeline;
  bool finished = false;           // false: run.json says "running"
  bool ok = true;                  // every node ok
  int interrupted_by = 0;          // the signal that stopped the run (0: not interrupted)
  std::vector<NodeOutcome> nodes;  // in file order
  Json ranks;                      // a distributed run's processes and units by rank (null otherwise)
  // Why the final run.json could not be written (e.g. a full disk); empty when it was.
  std::string record_error;
  Json provenance;  // run.json's "provenance" (caulk/provenance.hpp)
  // The run observers that failed (observer id -> why); each makes the run "failed" without touching the
  // nodes' outcomes.
  std::vector<std::pair<std::string, std::string>> observer_errors;
  // What became of the previous run's files in the folder (caulk/run_folder.hpp), for the user.
  std::vector<std::string> folder_notes;
  std::size_t outputs_written = 0;  // files and folders the nodes wrote
  RunStatus status() const;
  Json to_json() const;
  // The inverse of to_json, for a run read back from its folder (`caulk report`); throws Error
  // when `record` is not a run.json.
  static RunReport from_json(const Json& record);
};

}  // namespace caulk
