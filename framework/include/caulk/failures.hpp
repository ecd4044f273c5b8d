// One message per cause (docs/pipeline-format.md, "When nodes fail").
//
// When many units of a node fail for the same cause (one bad labels file under every model of a
// ranker), the node's error says the cause once, with the units it hit; when several nodes fail
// for the same cause (every ranker on that labels file), the run's summary and the report say it
// once, with the count ("... in 10 models of 2 nodes"). run.json keeps each node's own error.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace caulk {

struct UnitFailure {
  std::string name;   // the unit's name (a model)
  std::string error;  // its error message
  int rank = -1;      // the rank it ran on, in a distributed run (-1: not said)
};

// A node's error for failed units, each cause once:
//   "5 of 5 models failed:\n  5 models ('a', 'b', ...): CAUSE"   (the units' name in CAUSE as <model>)
//   "1 of 5 models failed:\n  model 'a': CAUSE"
// Units whose errors differ only by the unit's own name (its files are named after it) share a
// cause; an error that begins by naming its unit does not name it again.
std::string unit_failures_message(const std::string& what, std::size_t total, const std::vector<UnitFailure>& failures);

struct NodeFailure {
  std::string id, type, error;
};

// One cause of the failures of a run, with what it hit.
struct FailureCause {
  std::string message;
  std::vector<std::string> nodes;       // "'logme' (rank.logme)"
  std::string unit_kind;                // "model", when units failed (else "")
  std::size_t units = 0;                // units that failed for it, over all its nodes
  std::vector<std::string> unit_names;  // each unit once, in order of appearance
  // "node 'x' (t) failed: MESSAGE", "node 'x' (t) failed: model 'm': MESSAGE" (one unit), or
  // "nodes 'a' (t) and 'b' (t) failed: MESSAGE (in 10 models of 2 nodes; models 'm1', ...)".
  std::string str() const;
};

// The failed nodes' errors, grouped by cause (in order of first appearance).
std::vector<FailureCause> group_failures(const std::vector<NodeFailure>& failed);

}  // namespace caulk
