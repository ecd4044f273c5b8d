// The HTML report of a run, from its folder: run.json (statuses, times, errors, and every figure
// and table the nodes published), pipeline.dot, and the images figures name. One self-contained
// file: styles, scripts, images and chart data inline. It knows no node type: each node's figures
// and tables are laid out under the node (docs/report.md).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "caulk/context.hpp"
#include "caulk/io/atomic_file.hpp"
#include "reports/algorithms/chart_library.hpp"

namespace caulk::report {

struct RunFolder {
  std::filesystem::path dir;
  Json run;                       // run.json, as read
  const Json* written = nullptr;  // or run.json as the JSON it was written from (not owned)
  std::string dot;                // pipeline.dot; empty when the folder has none
  const Json& record() const { return written ? *written : run; }
};

// Reads DIR/run.json (and DIR/pipeline.dot when present). Throws DataError naming the file when
// run.json is missing or is not a caulk run record.
RunFolder read_run_folder(const std::filesystem::path& dir);
// The same, with run.json's record given (ObserverContext::record) instead of read: it must
// outlive the RunFolder. Throws DataError as read_run_folder does when it is not a run record.
RunFolder run_folder_with_record(const std::filesystem::path& dir, const Json& record);

struct ReportOptions {
  std::string title;  // empty: "caulk run: <pipeline name>"
  ChartLibrary charts;
  bool draw_graph = true;  // lay the graph out with Graphviz (false: DOT text)
  // Where the graph's layout is kept between reports on the same folder (its .caulk/); empty: not kept.
  std::filesystem::path keep_graph_in;
  std::string caulk_version;
};

struct Report {
  // The page: `head`, then each of `scripts` in a <script> element of its own, then `rest`. The
  // scripts go from their files to the page's file piece by piece (chart_library.hpp).
  std::string head, rest;
  std::vector<InlineScript> scripts;
  std::string html() const;                // the whole page as one string
  void write(io::AtomicFile& file) const;  // the whole page into a file
  std::vector<std::string> sections;       // ids of the sections present, in order
  std::vector<Json> charts;                // each chart's Vega-Lite spec, in page order
  std::vector<std::string> chart_titles;
  std::size_t tables = 0, images = 0;
  std::string graph;  // "svg", "dot" (text, Graphviz missing or failed) or "none" (no pipeline.dot)
};

// Never throws for what the run left missing or odd (a section is left out, or says what is
// missing); throws Error only for a run.json without a "nodes" object.
Report build_report(const RunFolder& run, const ReportOptions& options);

}  // namespace caulk::report
