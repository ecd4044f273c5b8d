// The pipeline's graph in the report: the DOT `caulk graph` prints (OUT/pipeline.dot), each node
// marked with its status and time, laid out by Graphviz's `dot -Tsvg`.
#pragma once
#include <chrono>
#include <string>

#include "caulk/context.hpp"

namespace caulk::report {

// The DOT with one more statement per node of run.json: its label (id, type, status and time),
// a fill colour per status, and a border that tells the status without colour (failed: thick,
// skipped: dashed, running: dotted).
std::string dot_with_status(const std::string& dot, const Json& run);

struct GraphDrawing {
  std::string svg;   // inline <svg> element; empty when Graphviz could not draw it
  std::string note;  // why there is no drawing
};

// Runs `dot -Tsvg` (found on PATH) on the text, bounded by `timeout`. Never throws for a missing
// or failing Graphviz: the note says what happened.
GraphDrawing draw_with_graphviz(const std::string& dot, std::chrono::seconds timeout = std::chrono::seconds(30));

}  // namespace caulk::report
