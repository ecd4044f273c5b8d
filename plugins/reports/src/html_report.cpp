// report.html: the run as one self-contained HTML page a person opens offline. A run observer
// (caulk/run_observer.hpp): it writes the page once the run has ended, also when nodes failed,
// from the folder's final run.json; `caulk report RUN_DIR` writes it for any run's folder.
#include <fmt/format.h>

#include <future>

#include "caulk/run_observer.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/run_folder.hpp"
#include "caulk/version.hpp"
#include "reports/algorithms/chart_library.hpp"
#include "reports/algorithms/report_builder.hpp"
#include "reports/src/nodes.hpp"

namespace caulk::reports {

namespace {

class HtmlReport : public RunObserver {
 public:
  static NodeSpec spec() {
    NodeSpec s("report.html",
               "One self-contained HTML report of the run (OUT/report.html): the pipeline graph with each node's status and time, "
               "then every figure and table each node published, grouped by node; opens offline");
    s.param(ParamSpec::string("title", "", "the page's title (default: the pipeline's name)"));
    s.param(ParamSpec::flag("graph", true, "lay the pipeline graph out with Graphviz's dot (false: show the DOT text)"));
    return s;
  }

  // The page is made from the folder (run.json, pipeline.dot, the figures' files), so that `caulk
  // report RUN_DIR` makes the same page from a folder alone; run.json's record is taken as it was
  // written when the engine gives it.
  void run_finished(const RunReport&, ObserverContext& ctx) override {
    const Params& p = ctx.params();
    const std::filesystem::path& dir = ctx.out_dir();
    // The charting scripts (most of the page's bytes) are mapped and checked meanwhile.
    auto charts = std::async(std::launch::async, [] { return report::load_chart_library(report::default_chart_library_folder()); });
    const report::RunFolder folder = ctx.record() ? report::run_folder_with_record(dir, *ctx.record()) : report::read_run_folder(dir);
    report::ReportOptions options;
    options.title = p.string("title");
    options.draw_graph = p.flag("graph");
    // The graph's layout is kept in the folder's own state between runs (caulk/run_folder.hpp).
    if (std::error_code ec; std::filesystem::is_directory(dir / kRunStateFolder, ec)) options.keep_graph_in = dir / kRunStateFolder;
    options.caulk_version = CAULK_VERSION_STRING;
    options.charts = charts.get();
    if (!options.charts.available()) ctx.log("charts are left out: " + options.charts.problem + " (see docs/report.md)");
    const report::Report r = report::build_report(folder, options);
    io::AtomicFile page(dir / "report.html");
    r.write(page);
    // Made from the folder, and again by `caulk report OUT` when a power loss damaged it: unflushed.
    page.commit(io::OnExisting::Replace, io::Durability::Recomputable);
    ctx.log(fmt::format("wrote {} ({} charts, {} tables, {} images)", (dir / "report.html").string(), r.charts.size(), r.tables, r.images));
  }
};

}  // namespace

void register_html_report(PluginRegistrar& r) { r.add_observer<HtmlReport>(); }

}  // namespace caulk::reports
