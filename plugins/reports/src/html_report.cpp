// report.html: the run as one self-contained HTML page a person opens offline. It runs last,
// after every other node, also when some failed, and reads OUT/run.json as it stands then; `caulk
// report RUN_DIR` runs the same node on a finished run's folder.
#include <fmt/format.h>

#include "caulk/context.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/run_folder.hpp"
#include "caulk/version.hpp"
#include "reports/algorithms/chart_library.hpp"
#include "reports/algorithms/report_builder.hpp"
#include "reports/src/nodes.hpp"

namespace caulk::reports {

namespace {

class HtmlReport : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("report.html",
               "One self-contained HTML report of the run (OUT/report.html): the pipeline graph with each node's status and time, "
               "then every figure and table each node published, grouped by node; opens offline");
    s.run_last();
    s.param(ParamSpec::string("title", "", "the page's title (default: the pipeline's name)"));
    s.param(ParamSpec::path("run", "report on this finished run's folder instead of this run (writes its report.html there)").optional());
    s.param(ParamSpec::flag("graph", true, "lay the pipeline graph out with Graphviz's dot (false: show the DOT text)"));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const std::filesystem::path dir = p.has("run") ? p.path("run") : ctx.out_dir();
    const report::RunFolder folder = report::read_run_folder(dir);
    report::ReportOptions options;
    options.title = p.string("title");
    options.draw_graph = p.flag("graph");
    // The graph's layout is kept in the folder's own state between runs (caulk/run_folder.hpp).
    if (std::error_code ec; std::filesystem::is_directory(dir / kRunStateFolder, ec)) options.keep_graph_in = dir / kRunStateFolder;
    options.caulk_version = CAULK_VERSION_STRING;
    if (!p.has("run")) options.this_node = ctx.id();
    options.charts = report::load_chart_library(report::default_chart_library_folder());
    if (!options.charts.available()) ctx.log("charts are left out: " + options.charts.problem + " (see docs/report.md)");
    const report::Report r = report::build_report(folder, options);
    io::write_file_atomic(dir / "report.html", r.html);
    Json& sum = ctx.summary();
    sum["file"] = "report.html";
    sum["sections"] = r.sections;
    sum["charts"] = r.charts.size();
    sum["tables"] = r.tables;
    sum["images"] = r.images;
    sum["graph"] = r.graph;
    sum["chart_library"] = options.charts.available() ? options.charts.versions : "missing";
    ctx.log(fmt::format("wrote {} ({} charts, {} tables, {} images)", (dir / "report.html").string(), r.charts.size(), r.tables, r.images));
  }
};

}  // namespace

void register_html_report(PluginRegistrar& r) { r.add_node<HtmlReport>(); }

}  // namespace caulk::reports
