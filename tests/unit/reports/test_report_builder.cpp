// The HTML report built from run records made by hand: the figures and tables each node published,
// grouped under that node whatever its type, names escaped, every chart valid Vega-Lite as the node
// published it, the note without JS; and a third-party-like node's figure end to end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "caulk/error.hpp"
#include "caulk/executor.hpp"
#include "caulk/figures/charts.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/registry.hpp"
#include "fake_nodes.hpp"
#include "reports/algorithms/graph_drawing.hpp"
#include "reports/algorithms/html_text.hpp"
#include "reports/algorithms/report_builder.hpp"
#include "report_test_support.hpp"
#include "temp_dir.hpp"

using namespace caulk;
using namespace caulk::report;
using namespace caulk::report::testing;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

ChartLibrary fake_library() {
  ChartLibrary lib;
  lib.vega = "/*vega-code*/";
  lib.vega_lite = "/*vega-lite-code*/";
  lib.vega_embed = "/*vega-embed-code*/";
  lib.versions = "vega 0, vega-lite 0, vega-embed 0";
  return lib;
}

ChartLibrary missing_library() {
  ChartLibrary lib;
  lib.problem = "the charting JavaScript is missing (here)";
  return lib;
}

Report build(const Json& run, const std::filesystem::path& dir = ".", ChartLibrary lib = fake_library(), std::string dot = "") {
  RunFolder f;
  f.dir = dir;
  f.run = run;
  f.dot = std::move(dot);
  ReportOptions o;
  o.charts = std::move(lib);
  o.draw_graph = false;  // Graphviz is tested on its own below
  o.caulk_version = "test";
  return build_report(f, o);
}

// A small bar chart as a node would publish it.
Json bars(const std::string& title, std::vector<caulk::figures::Bar> values) {
  return caulk::figures::bar_chart({title, "", ""}, "model", "score (higher is better)", std::move(values));
}

// The HTML of the section with this id ("" when absent).
std::string section_html(const Report& r, const std::string& id) {
  const std::string open = "<section id=\"" + id + "\">";
  const std::size_t at = r.html().find(open);
  if (at == std::string::npos) return {};
  return r.html().substr(at, r.html().find("</section>", at) - at);
}

Json run_of(Json nodes, const std::string& status = "ok") {
  return Json{{"pipeline", "p"}, {"status", status}, {"nodes", std::move(nodes)}};
}

void expect_specs_match(const Report& r) {
  const auto specs = embedded_specs(r.html());
  ASSERT_EQ(specs.size(), r.charts.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(specs[i], r.charts[i]) << i;
    expect_valid_vega_lite(specs[i]);
  }
}

// The bar labels of a bar chart, in drawing order.
std::vector<std::string> bar_labels(const Json& spec) {
  std::vector<std::string> out;
  for (const auto& v : spec["data"]["values"]) out.push_back(v["label"]);
  return out;
}

}  // namespace

TEST(ReportBuilder, ARunWithoutFiguresOrTablesHasOnlyThePipeline) {
  Report r = build(run_of({{"load", node("dataset.load")}}));
  EXPECT_THAT(r.sections, ElementsAre("pipeline"));
  EXPECT_TRUE(r.charts.empty());
  EXPECT_EQ(r.tables, 0u);
  EXPECT_EQ(r.graph, "none");
  EXPECT_THAT(r.html(), HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(r.html(), HasSubstr("/*vega-embed-code*/"));  // inlined, not linked
  EXPECT_THAT(r.html(), Not(HasSubstr("src=\"http")));
  EXPECT_THAT(r.html(), Not(HasSubstr("href=\"http")));
}

TEST(ReportBuilder, AFailedRunSaysFirstWhichNodeFailedAndWhy) {
  Json nodes = Json::object();
  nodes["load"] = node("dataset.load");
  nodes["judge"] = node("eval.rank_correlation", "failed");
  nodes["judge"]["error"] = "model 'random' is scored by 'logme' but has no ground truth";
  nodes["ranking"] = node("report.ranking", "skipped");
  nodes["ranking"]["error"] = "not run: it depends on node 'judge', which failed";
  Report r = build(run_of(nodes, "failed"));
  ASSERT_FALSE(r.sections.empty());
  EXPECT_EQ(r.sections.front(), "failures");
  EXPECT_THAT(r.html(), HasSubstr("node &#39;judge&#39; (eval.rank_correlation) failed: "));
  EXPECT_THAT(r.html(), HasSubstr("model &#39;random&#39; is scored by &#39;logme&#39; but has no ground truth"));
  EXPECT_THAT(r.html(), HasSubstr("not run: it depends on node &#39;judge&#39;, which failed"));
  EXPECT_THAT(r.html(), HasSubstr("Run <strong>FAILED</strong>"));
}

// The report knows no node type: a type no plugin of caulk has gets the same layout, each node's
// figures (charts with their captions) and tables in that node's own section, in run.json's order.
TEST(ReportBuilder, EachNodesFiguresAndTablesAreGroupedUnderThatNode) {
  Json nodes = Json::object();
  nodes["first"] =
      node("thirdparty.scorer", "ok", Json::object(), {{"t", table("First's table", {"k", "v"}, Json::array({Json::array({"a", 1.5})}))}},
           {{"chart", figure("What first drew.", bars("First's chart", {{"m1", 1.0}, {"m2", 3.0}}))}});
  nodes["quiet"] = node("thirdparty.quiet");
  nodes["second"] = node("another.kind", "ok", Json::object(), Json(),
                         {{"a", figure("Second's first.", bars("Second A", {{"x", 1.0}}))},
                          {"b", figure("Second's second.", bars("Second B", {{"y", 2.0}}))}});
  Report r = build(run_of(nodes));
  EXPECT_THAT(r.sections, ElementsAre("pipeline", "node-first", "node-second"));
  expect_specs_match(r);
  ASSERT_EQ(r.charts.size(), 3u);
  EXPECT_EQ(r.charts[0], nodes["first"]["figures"]["chart"]["spec"]);  // drawn as published
  EXPECT_THAT(bar_labels(r.charts[0]), ElementsAre("m2", "m1"));
  EXPECT_EQ(r.chart_titles[1], "Second A");
  EXPECT_EQ(r.tables, 1u);
  const std::string first = section_html(r, "node-first"), second = section_html(r, "node-second");
  EXPECT_THAT(first, HasSubstr("<h2>first (thirdparty.scorer)</h2>"));
  EXPECT_THAT(first, HasSubstr("aria-label=\"First&#39;s chart\""));
  EXPECT_THAT(first, HasSubstr("<p class=\"caption\">What first drew.</p>"));
  EXPECT_THAT(first, HasSubstr("First&#39;s table"));
  EXPECT_THAT(first, Not(HasSubstr("Second A")));
  EXPECT_THAT(second, HasSubstr("aria-label=\"Second A\""));
  EXPECT_THAT(second, HasSubstr("aria-label=\"Second B\""));
  EXPECT_THAT(second, HasSubstr("Second&#39;s second."));
  // The table of contents names each node.
  EXPECT_THAT(r.html(), HasSubstr("<li><a href=\"#node-first\">first (thirdparty.scorer)</a></li>"));
}

TEST(ReportBuilder, AFiguresImagesAreInlinedWithTheirOwnTitles) {
  caulk::testing::TempDir dir;
  // A tiny PNG with its own title, as analysis.weight_patterns writes them.
  auto chunk = [](const std::string& type, const std::string& data) {
    std::string out(4, '\0');
    out[3] = static_cast<char>(data.size());
    return out + type + data + std::string(4, '\0');
  };
  const std::string png =
      std::string("\x89PNG\r\n\x1a\n", 8) + chunk("tEXt", std::string("Title\0cosine of layer 0", 23)) + chunk("IEND", "");
  dir.write("patterns/cosine.layers.0.png", png);
  Json images = figure("Weights of every layer.", Json(), Json::array({"patterns/cosine.layers.0.png", "patterns/missing.png"}));
  images["title"] = "Weight patterns";
  Json nodes = {{"patterns", node("some.analysis", "ok", Json::object(), Json(), {{"images", images}})}};
  Report r = build(run_of(nodes), dir.path());
  EXPECT_THAT(r.sections, ElementsAre("pipeline", "node-patterns"));
  EXPECT_TRUE(r.charts.empty());
  EXPECT_EQ(r.images, 1u);
  const std::string section = section_html(r, "node-patterns");
  EXPECT_THAT(section, HasSubstr("<strong>Weight patterns</strong> Weights of every layer."));
  EXPECT_THAT(section, HasSubstr("data:image/png;base64," + base64(png)));
  EXPECT_THAT(section, HasSubstr("alt=\"cosine of layer 0\""));
  EXPECT_THAT(section, HasSubstr("Image patterns/missing.png is missing from the run folder"));
}

TEST(ReportBuilder, NamesAndErrorsAreEscapedEverywhere) {
  const std::string evil = "a<b>&\"c</script><script>alert(1)</script>";
  Json nodes = Json::object();
  nodes[evil] = node("rank.logme", "failed");
  nodes[evil]["error"] = evil;
  nodes["r"] = node(evil, "ok", Json::object(), Json(), {{evil, figure(evil, bars(evil, {{evil, 1.0}, {"plain", 2.0}}))}});
  nodes["t"] =
      node("x.y", "ok", Json::object(), {{"metrics", table(evil, {"model", "accuracy"}, Json::array({Json::array({evil, 0.5})}))}});
  Report r = build(run_of(nodes, "failed"));
  EXPECT_THAT(r.html(), Not(HasSubstr("<script>alert(1)")));
  EXPECT_THAT(r.html(), Not(HasSubstr("<b>&")));
  EXPECT_THAT(r.html(), HasSubstr("a&lt;b&gt;&amp;&quot;c&lt;/script&gt;"));
  // In the chart data the name is intact once parsed.
  expect_specs_match(r);
  bool found = false;
  for (const auto& spec : embedded_specs(r.html()))
    for (const auto& v : spec["data"]["values"]) found = found || v.value("label", "") == evil;
  EXPECT_TRUE(found);
}

TEST(ReportBuilder, WithoutTheChartingJavaScriptTheReportSaysSoAndKeepsTheTables) {
  Json nodes = {{"logme", node("rank.logme", "ok", Json::object(), {{"t", table("T", {"x"}, {{1}})}},
                               {{"figure", figure("c", bars("Scores of logme (rank.logme)", {{"a", 1.0}}))}})}};
  Report r = build(run_of(nodes), ".", missing_library());
  EXPECT_THAT(r.html(), HasSubstr("Charts are not drawn in this report"));
  EXPECT_THAT(r.html(), HasSubstr("Chart not drawn: Scores of logme (rank.logme)"));
  EXPECT_THAT(r.html(), Not(HasSubstr("/*vega")));
  EXPECT_EQ(r.tables, 1u);
  EXPECT_THAT(r.html(), HasSubstr("<th>x</th>"));
}

TEST(ReportBuilder, EveryTableOfEveryNodeIsShown) {
  Json nodes = Json::object();
  nodes["a"] =
      node("x.one", "ok", Json::object(),
           {{"t1", table("First <table>", {"k", "v"}, Json::array({Json::array({"r", 1.23456789}), Json::array({"s", nullptr})}))}});
  nodes["b"] = node("x.two", "ok", Json::object(),
                    {{"t2", table("Second", {"k"}, Json::array({Json::array({"q"})}))}, {"t3", table("Third", {"k"}, Json::array())}});
  Report r = build(run_of(nodes));
  EXPECT_EQ(r.tables, 3u);
  EXPECT_THAT(section_html(r, "node-a"), HasSubstr("First &lt;table&gt;"));
  EXPECT_THAT(section_html(r, "node-a"), HasSubstr("<td class=\"num\" title=\"1.23456789\">1.235</td>"));
  EXPECT_THAT(section_html(r, "node-b"), HasSubstr("Second"));
  EXPECT_THAT(section_html(r, "node-b"), HasSubstr("Third"));
}

TEST(ReportBuilder, AChartWithNothingFiniteToDrawIsANoteNotAnEmptyChart) {
  Json nodes = {{"logme", node("rank.logme", "ok", Json::object(), Json(),
                               {{"figure", figure("c", bars("Scores of logme (rank.logme)", {{"a", std::nan("")}}))}})}};
  Report r = build(run_of(nodes));
  EXPECT_TRUE(r.charts.empty());
  EXPECT_THAT(r.html(), HasSubstr("Nothing to draw for Scores of logme (rank.logme): no finite values."));
}

TEST(ReportBuilder, AValueOfAnUnexpectedTypeSpoilsOnlyItsSection) {
  Json nodes = Json::object();
  nodes["bad"] = node("x.one", "failed");
  nodes["bad"]["error"] = 42;  // run.json edited by hand: the error is not text
  nodes["odd"] = node("x.two", "ok", Json::object(), Json(), {{"f", 42}, {"g", figure("g", Json("not a spec"))}});
  nodes["logme"] = node("rank.logme", "ok", Json::object(), Json(), {{"figure", figure("c", bars("Scores", {{"a", 1.0}, {"b", 2.0}}))}});
  Report r = build(run_of(nodes, "failed"));
  EXPECT_THAT(r.html(), HasSubstr("This section could not be made from run.json"));
  EXPECT_THAT(r.sections, ::testing::Contains("node-logme"));
  EXPECT_EQ(r.charts.size(), 1u);
}

// The report is written once the run has ended (a run observer): the header counts every node by
// what it became; a record left by a killed run says which nodes were still running.
TEST(ReportBuilder, TheHeaderCountsEveryNodeByItsStatus) {
  Json nodes = Json::object();
  nodes["a"] = node("x.one");
  nodes["b"] = node("x.two");
  Report r = build(run_of(nodes));
  std::string header = r.html().substr(r.html().find("<header>"), r.html().find("</header>") - r.html().find("<header>"));
  EXPECT_THAT(header, HasSubstr("Run <strong>succeeded</strong>: 2 nodes (2 ok)"));
  EXPECT_THAT(header, Not(HasSubstr("running")));
  nodes["b"] = node("x.two", "running");
  r = build(run_of(nodes, "running"));
  header = r.html().substr(r.html().find("<header>"), r.html().find("</header>") - r.html().find("<header>"));
  EXPECT_THAT(header, HasSubstr("2 nodes (1 ok, 1 running)"));
  EXPECT_THAT(section_html(r, "pipeline"), HasSubstr("&#8230; running"));
}

// End to end, as a third-party plugin's node would be: the engine records the Figure a node of a
// type the report has never heard of publishes, and the report draws it under that node.
TEST(ReportBuilder, AFigureAThirdPartyNodePublishesIsDrawnUnderThatNode) {
  Registry registry;
  caulk::testing::register_fake_nodes(registry);
  caulk::testing::TempDir dir;
  const auto file = dir.write("p.toml", R"([pipeline]
name = "third party"
[[node]]
id = "src"
type = "test.source"
params = { rows = 5 }
[[node]]
id = "theirs"
type = "test.figure"
inputs = { data = "src" }
)");
  std::ostringstream out, err;
  RunOptions o;
  o.out_dir = dir.path() / "out";
  o.jobs = 1;
  o.out = &out;
  o.err = &err;
  ASSERT_TRUE(run_pipeline(validate_pipeline(parse_pipeline_file(file), registry), o).ok) << err.str();
  ReportOptions options;
  options.charts = fake_library();
  options.draw_graph = false;
  const Report r = build_report(read_run_folder(dir.path() / "out"), options);
  EXPECT_THAT(r.sections, ElementsAre("pipeline", "node-theirs"));
  ASSERT_EQ(r.charts.size(), 1u);
  EXPECT_EQ(r.charts[0]["data"]["values"][0]["value"], 5.0);
  const std::string section = section_html(r, "node-theirs");
  EXPECT_THAT(section, HasSubstr("<h2>theirs (test.figure)</h2>"));
  EXPECT_THAT(section, HasSubstr("aria-label=\"Rows of the data (third-party chart)\""));
  EXPECT_THAT(section, HasSubstr("One bar: how many rows the source emitted."));
  EXPECT_THAT(section, HasSubstr("<th>what</th>"));
}

TEST(ChartLibrary, AScriptFileIsInlinedWithItsClosingTagsEscapedAndItsSourceMapCommentsLeftOut) {
  caulk::testing::TempDir dir;
  const auto file = dir.write("vega.min.js", "var a='</script>';\n//# sourceMappingURL=vega.min.js.map\nvar b=1;</script");
  const InlineScript script = InlineScript::from_file(file);
  std::string text;
  for (const auto& piece : script.pieces()) text += piece;
  EXPECT_EQ(text, "var a='<\\/script>';\n\nvar b=1;<\\/script");
  EXPECT_EQ(script.size(), text.size());
  EXPECT_THROW(InlineScript::from_file(dir / "missing.js"), DataError);
}

TEST(ReportBuilder, ThePageWrittenToAFileIsThePageAsOneString) {
  caulk::testing::TempDir dir;
  dir.write("js/vega.min.js", "var vega='</script>';\n//# sourceMappingURL=x.map\n");
  dir.write("js/vega-lite.min.js", "/*vega-lite*/");
  dir.write("js/vega-embed.min.js", "/*vega-embed*/");
  dir.write("js/versions.txt", "vega 1, vega-lite 2, vega-embed 3\n");
  dir.write("js/LICENSES.txt", "MIT <c>");
  const ChartLibrary lib = load_chart_library(dir / "js");
  ASSERT_TRUE(lib.available()) << lib.problem;
  const Report r = build(run_of({{"load", node("dataset.load")}}), dir.path(), lib);
  caulk::io::AtomicFile page(dir / "report.html");
  r.write(page);
  page.commit();
  EXPECT_EQ(caulk::testing::read_file(dir / "report.html"), r.html());
  EXPECT_THAT(r.html(), HasSubstr("<script>\nvar vega='<\\/script>';\n\n\n</script>\n<script>\n/*vega-lite*/\n</script>\n"));
  EXPECT_THAT(r.html(), HasSubstr("MIT &lt;c&gt;"));
  EXPECT_THAT(r.html(), HasSubstr("charts drawn by vega 1, vega-lite 2, vega-embed 3"));
}

TEST(ReportBuilder, ReadingARunFolderNamesTheFileThatIsWrong) {
  caulk::testing::TempDir dir;
  EXPECT_THAT([&] { read_run_folder(dir.path()); }, ::testing::ThrowsMessage<DataError>(HasSubstr("no run.json here")));
  dir.write("run.json", "{ not json");
  EXPECT_THAT([&] { read_run_folder(dir.path()); }, ::testing::ThrowsMessage<DataError>(HasSubstr("not valid JSON")));
  dir.write("run.json", "[1, 2]");
  EXPECT_THAT([&] { read_run_folder(dir.path()); }, ::testing::ThrowsMessage<DataError>(HasSubstr("not a caulk run record")));
  dir.write("run.json", R"({"pipeline": "p", "status": "ok", "nodes": {}})");
  dir.write("pipeline.dot", "digraph \"p\" {\n}\n");
  RunFolder f = read_run_folder(dir.path());
  EXPECT_EQ(f.dot, "digraph \"p\" {\n}\n");
}

// ------------------------------------------------------------------------------ the graph

TEST(ReportGraph, EachNodeGetsItsStatusAndTimeInItsLabelAndABorderPerStatus) {
  const std::string dot = "digraph \"p\" {\n  \"a\" [label=\"a\\nx.one\"];\n  \"b\" [label=\"b\\nx.two\"];\n  \"a\" -> \"b\";\n}\n";
  Json run = run_of({{"a", node("x.one", "failed")}, {"b", node("x.two", "skipped")}}, "failed");
  run["nodes"]["a"]["seconds"] = 1.5;
  const std::string marked = dot_with_status(dot, run);
  EXPECT_THAT(marked, HasSubstr("\"a\" [label=\"a\\nx.one\\nFAILED, 1.50 s\", style=\"rounded,filled,bold\""));
  EXPECT_THAT(marked, HasSubstr("\"b\" [label=\"b\\nx.two\\nskipped\", style=\"rounded,filled,dashed\""));
  EXPECT_EQ(marked.back(), '\n');
  EXPECT_EQ(marked.substr(marked.size() - 2), "}\n");
}

TEST(ReportGraph, GraphvizDrawsAnSvgOrTheNoteSaysWhyNot) {
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  ::setenv("PATH", "/nonexistent-caulk-test", 1);
  GraphDrawing none = draw_with_graphviz("digraph { a -> b }");
  ::setenv("PATH", saved.c_str(), 1);
  EXPECT_TRUE(none.svg.empty());
  EXPECT_THAT(none.note, HasSubstr("was not found on PATH"));

  GraphDrawing bad = draw_with_graphviz("this is not dot");
  GraphDrawing good = draw_with_graphviz("digraph { \"<x>\" -> b }");
  if (!good.note.empty() && good.note.find("not found") != std::string::npos) GTEST_SKIP() << "Graphviz is not installed: " << good.note;
  EXPECT_THAT(good.svg.substr(0, 4), "<svg");
  EXPECT_THAT(good.svg, HasSubstr("&lt;x&gt;"));
  EXPECT_THAT(good.svg, Not(HasSubstr("<?xml")));
  EXPECT_TRUE(bad.svg.empty());
  EXPECT_THAT(bad.note, HasSubstr("failed"));
}

TEST(ReportGraph, TheReportShowsTheDotTextWhenItIsNotDrawn) {
  Json nodes = {{"a", node("x.one")}};
  Report r = build(run_of(nodes), ".", fake_library(), "digraph \"p\" {\n  \"a\";\n}\n");
  EXPECT_EQ(r.graph, "dot");
  EXPECT_THAT(r.html(), HasSubstr("<pre class=\"dot\">digraph &quot;p&quot;"));
}
