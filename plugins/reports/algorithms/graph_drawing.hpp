// The pipeline's graph in the report: the DOT `caulk graph` prints (OUT/pipeline.dot), each node
// marked with its status and time, laid out by Graphviz's `dot -Tsvg`.
#pragma once
#include <chrono>
#include <filesystem>
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

// The graph of dot_with_status(dot, run), drawn once per layout: Graphviz lays out a version whose
// third label line is a stand-in as wide as the status line can be ("ok (cached), 00.00 s"), then
// each node's stand-in is replaced by its real status line. The laid-out drawing is kept in
// `keep_in` (a folder, OUT/.caulk/ in a run: the report runs every time and starting `dot` is most
// of its cost), keyed by a hash of that version of the DOT text (the pipeline's graph, each node's
// status, border and tooltip, not its time or cached flag) and of the `dot` program, so a re-run
// with the same graph and statuses reuses it and any change draws it again. An empty `keep_in`, or
// a kept drawing that does not fit, draws afresh. `reused` (optional) says whether the kept one was
// used. Never throws; the note says why there is no drawing.
GraphDrawing draw_graph_with_status(const std::string& dot, const Json& run, const std::filesystem::path& keep_in, bool* reused = nullptr);

}  // namespace caulk::report
