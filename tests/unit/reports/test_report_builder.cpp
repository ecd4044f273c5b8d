// The HTML report built from run records made by hand: sections only for what a run produced,
// names escaped, every chart valid Vega-Lite with the numbers of the run, the note without JS.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "caulk/error.hpp"
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

Json run_of(Json nodes, const std::string& status = "ok") { return Json{{"pipeline", "p"}, {"status", status}, {"nodes", std::move(nodes)}}; }

void expect_specs_match(const Report& r) {
  const auto specs = embedded_specs(r.html);
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

TEST(ReportBuilder, ARunWithoutDomainNodesHasOnlyThePipeline) {
  Report r = build(run_of({{"load", node("dataset.load")}}));
  EXPECT_THAT(r.sections, ElementsAre("pipeline"));
  EXPECT_TRUE(r.charts.empty());
  EXPECT_EQ(r.tables, 0u);
  EXPECT_EQ(r.graph, "none");
  EXPECT_THAT(r.html, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(r.html, HasSubstr("/*vega-embed-code*/"));  // inlined, not linked
  EXPECT_THAT(r.html, Not(HasSubstr("src=\"http")));
  EXPECT_THAT(r.html, Not(HasSubstr("href=\"http")));
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
  EXPECT_THAT(r.html, HasSubstr("node &#39;judge&#39; (eval.rank_correlation) failed: "));
  EXPECT_THAT(r.html, HasSubstr("model &#39;random&#39; is scored by &#39;logme&#39; but has no ground truth"));
  EXPECT_THAT(r.html, HasSubstr("not run: it depends on node &#39;judge&#39;, which failed"));
  EXPECT_THAT(r.html, HasSubstr("Run <strong>FAILED</strong>"));
}

TEST(ReportBuilder, NamesAndErrorsAreEscapedEverywhere) {
  const std::string evil = "a<b>&\"c</script><script>alert(1)</script>";
  Json nodes = Json::object();
  Json scores = Json::object();
  scores[evil] = 1.0;
  scores["plain"] = 2.0;
  nodes[evil] = node("rank.logme", "failed");
  nodes[evil]["error"] = evil;
  nodes["r"] = node("rank.logme", "ok", {{"scores", scores}, {"higher_is_better", true}});
  nodes["t"] = node("eval.classification", "ok", Json::object(),
                    {{"metrics", table(evil, {"model", "accuracy"}, Json::array({Json::array({evil, 0.5})}))}});
  Report r = build(run_of(nodes, "failed"));
  EXPECT_THAT(r.html, Not(HasSubstr("<script>alert(1)")));
  EXPECT_THAT(r.html, Not(HasSubstr("<b>&")));
  EXPECT_THAT(r.html, HasSubstr("a&lt;b&gt;&amp;&quot;c&lt;/script&gt;"));
  // In the chart data the name is intact once parsed.
  expect_specs_match(r);
  bool found = false;
  for (const auto& spec : embedded_specs(r.html))
    for (const auto& v : spec["data"]["values"]) found = found || v.value("label", "") == evil;
  EXPECT_TRUE(found);
}

TEST(ReportBuilder, RankingsShowEachRankerAgainstTheGroundTruthWithItsTau) {
  Json nodes = Json::object();
  nodes["logme"] = node("rank.logme", "ok", {{"scores", {{"m1", 3.0}, {"m2", 1.0}, {"m3", 2.0}}}, {"higher_is_better", true}, {"split", "train"}});
  nodes["gbc"] = node("rank.gbc", "ok", {{"scores", {{"m1", -1.0}, {"m2", -3.0}, {"m3", -2.0}}}, {"higher_is_better", false}});
  nodes["judge"] = node("eval.rank_correlation", "ok",
                        {{"logme", {{"weighted_tau", 0.8125}}}, {"gbc", {{"weighted_tau", -0.25}}}},
                        {{"correlations", table("Rank correlation with accuracy (x.csv)", {"ranker", "weighted_tau"}, Json::array())}});
  nodes["ranking"] = node("report.ranking", "ok", Json::object(),
                          {{"table", table("Ranking", {"rank", "model", "logme", "gbc (lower is better)", "ground truth"},
                                           {{1, "m1", 3.0, -1.0, 0.9}, {2, "m3", 2.0, -2.0, 0.7}, {3, "m2", 1.0, -3.0, 0.8}})}});
  Report r = build(run_of(nodes));
  EXPECT_THAT(r.sections, ElementsAre("pipeline", "rankings", "tables"));
  expect_specs_match(r);
  // The tau chart, one bar chart per ranker, one scatter per ranker.
  ASSERT_EQ(r.charts.size(), 5u);
  EXPECT_THAT(bar_labels(r.charts[0]), ElementsAre("logme", "gbc"));
  EXPECT_THAT(bar_labels(r.charts[1]), ElementsAre("m1", "m3", "m2"));  // higher is better: largest first
  EXPECT_THAT(bar_labels(r.charts[3]), ElementsAre("m2", "m3", "m1"));  // lower is better: smallest first
  const Json& scatter = r.charts[2];
  EXPECT_EQ(scatter["title"]["subtitle"], "weighted Kendall tau = 0.812");
  EXPECT_EQ(scatter["title"]["text"], "logme against the accuracy");
  std::map<std::string, std::pair<double, double>> xy;
  for (const auto& v : scatter["data"]["values"]) xy[v["label"]] = {v["x"], v["y"]};
  EXPECT_EQ(xy["m1"], std::make_pair(3.0, 0.9));
  EXPECT_EQ(xy["m2"], std::make_pair(1.0, 0.8));
  EXPECT_EQ(r.charts[4]["title"]["subtitle"], "weighted Kendall tau = -0.250");
  EXPECT_EQ(r.tables, 2u);
}

TEST(ReportBuilder, RankersWithoutGroundTruthGetBarsOnlyAndANote) {
  Json nodes = {{"logme", node("rank.logme", "ok", {{"scores", {{"a", 1.0}, {"b", 2.0}}}})}};
  Report r = build(run_of(nodes));
  ASSERT_EQ(r.charts.size(), 1u);
  EXPECT_THAT(r.html, HasSubstr("No ground truth in this run"));
}

TEST(ReportBuilder, LearningCurvesDrawTheMeasuredPointsAndTheFittedPowerLaws) {
  Json points = Json::array();
  for (int n : {10, 100, 1000})
    for (int seed : {0, 1}) points.push_back({"strong", n, seed, 0.1 + 1.0 / n + 0.01 * seed});
  Json nodes = {{"curves", node("eval.sample_complexity", "ok", {{"strong", {{"a", 2.0}, {"b", 0.5}, {"c", 0.1}, {"target_risk", 0.3}}}},
                                {{"points", table("Learning-curve points: error on split 'test'", {"model", "n", "seed", "risk"}, points)},
                                 {"curves", table("Sample complexity", {"model", "a", "b", "c"}, {{"strong", 2.0, 0.5, 0.1}})}})}};
  Report r = build(run_of(nodes));
  EXPECT_THAT(r.sections, ElementsAre("pipeline", "learning-curves", "tables"));
  ASSERT_EQ(r.charts.size(), 1u);
  expect_specs_match(r);
  const Json& layers = r.charts[0]["layer"];
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0]["data"]["values"].size(), 6u);
  EXPECT_EQ(layers[0]["encoding"]["x"]["scale"]["type"], "log");
  // The fitted line, sampled from n = 10 to 1000, is a n^-b + c at every sample.
  const Json& fitted = layers[1]["data"]["values"];
  ASSERT_GE(fitted.size(), 10u);
  EXPECT_NEAR(fitted.front()["x"].get<double>(), 10.0, 1e-9);
  EXPECT_NEAR(fitted.back()["x"].get<double>(), 1000.0, 1e-9);
  for (const auto& v : fitted) EXPECT_NEAR(v["y"].get<double>(), 2.0 / std::sqrt(v["x"].get<double>()) + 0.1, 1e-12);
  EXPECT_EQ(layers[2]["data"]["values"][0]["y"], 0.3);
  EXPECT_THAT(r.charts[0]["layer"][0]["encoding"]["y"]["title"].get<std::string>(), HasSubstr("test error on split 'test'"));
}

TEST(ReportBuilder, MergesDrawTheSearchCurveTheScaleStabilityAndTheWeightImages) {
  caulk::testing::TempDir dir;
  // A tiny PNG with its own title, as analysis.weight_patterns writes them.
  auto chunk = [](const std::string& type, const std::string& data) {
    std::string out(4, '\0');
    out[3] = static_cast<char>(data.size());
    return out + type + data + std::string(4, '\0');
  };
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + chunk("tEXt", std::string("Title\0cosine of layer 0", 23)) + chunk("IEND", "");
  dir.write("patterns/cosine.layers.0.png", png);
  Json search_rows = Json::array({{1, 0.2, 0.8, 1.0, 0.70, ""}, {2, 0.5, 0.5, 1.0, 0.75, "*"}, {3, 0.8, 0.2, 1.0, 0.72, ""},
                                  {4, 0.2, 0.8, 2.0, 0.60, ""}, {5, 0.5, 0.5, 2.0, 0.65, ""}, {6, 0.8, 0.2, 2.0, 0.61, ""}});
  Json nodes = Json::object();
  nodes["search"] = node("search.merge_coefficients", "ok", Json::object(),
                         {{"table", table("task_arithmetic coefficients: accuracy on split 'val'", {"candidate", "w:a", "w:b", "lambda", "accuracy", "best"},
                                          search_rows)}});
  nodes["stability"] = node("analysis.scale_stability", "ok", Json::object(),
                            {{"table", table("Prediction stability under parameter scaling (every parameter) on split 'test'",
                                             {"model", "s", "accuracy", "agreement"},
                                             {{"soup", 0.5, 0.6, 0.8}, {"soup", 1.0, 0.7, 1.0}, {"soup", 2.0, 0.7, 0.9}})}});
  nodes["patterns"] = node("analysis.weight_patterns", "ok", {{"cosine_images", {"cosine.layers.0.png", "missing.png"}}});
  Report r = build(run_of(nodes), dir.path());
  EXPECT_THAT(r.sections, ElementsAre("pipeline", "merges", "tables"));
  expect_specs_match(r);
  ASSERT_EQ(r.charts.size(), 3u);
  // Two models: the held-out score against the first model's weight, one line per lambda, the
  // chosen candidate marked.
  const Json& search = r.charts[0];
  ASSERT_EQ(search["layer"].size(), 3u);
  EXPECT_EQ(search["layer"][0]["data"]["values"].size(), 6u);
  EXPECT_EQ(search["layer"][2]["data"]["values"], Json::parse(R"([{"series": "lambda = 1", "x": 0.5, "y": 0.75, "note": "chosen"}])"));
  EXPECT_THAT(search["layer"][0]["encoding"]["x"]["title"].get<std::string>(), HasSubstr("weight of a"));
  EXPECT_EQ(r.charts[1]["layer"][0]["encoding"]["x"]["scale"]["type"], "log");
  EXPECT_EQ(r.images, 1u);
  EXPECT_THAT(r.html, HasSubstr("data:image/png;base64," + base64(png)));
  EXPECT_THAT(r.html, HasSubstr("alt=\"cosine of layer 0\""));
  EXPECT_THAT(r.html, HasSubstr("Image patterns/missing.png is missing from the run folder"));
}

TEST(ReportBuilder, AveragingDrawsTheRisksAndTheWeightsOverTwoCovariates) {
  caulk::testing::TempDir dir;
  std::string csv = "z0,z1,a,b\n";
  for (int i = 0; i < 40; ++i) {
    const double z0 = i / 39.0, z1 = (i % 7) / 6.0, wa = z0;
    csv += std::to_string(z0) + "," + std::to_string(z1) + "," + std::to_string(wa) + "," + std::to_string(1 - wa) + "\n";
  }
  dir.write("report/weights.test.csv", csv);
  dir.write("report/trust.csv", "model,mean_weight,share_top\na,0.5,0.4\nb<i>,0.5,0.6\n");
  Json nodes = {{"report", node("report.averaging", "ok",
                                {{"split", "test"}, {"loss", "squared"}, {"trust", {{"a", Json::object()}, {"b", Json::object()}}}},
                                {{"table", table("Out-of-sample risk", {"model", "from", "risk"},
                                                 {{"a", "sim", 2.0}, {"b", "sim", 3.0}, {"local", "local", 0.5}})}})}};
  Report r = build(run_of(nodes), dir.path());
  EXPECT_THAT(r.sections, ElementsAre("pipeline", "averaging", "tables"));
  expect_specs_match(r);
  ASSERT_EQ(r.charts.size(), 2u);
  EXPECT_THAT(bar_labels(r.charts[0]), ElementsAre("local", "a", "b"));  // lowest risk first
  EXPECT_TRUE(r.charts[1].contains("facet"));
  EXPECT_EQ(r.charts[1]["spec"]["mark"]["type"], "rect");
  // The trust table the node printed but did not publish, from its CSV.
  EXPECT_THAT(r.html, HasSubstr("Where each model is trusted (report/trust.csv)"));
  EXPECT_THAT(r.html, HasSubstr("<td>b&lt;i&gt;</td><td class=\"num\" title=\"0.5\">0.5</td>"));
  EXPECT_EQ(r.tables, 2u);
}

TEST(ReportBuilder, ANodesCsvFileIsReadAsCsvQuotedCommasAndQuotesIncluded) {
  caulk::testing::TempDir dir;
  dir.write("report/trust.csv", "model,mean_weight\n\"a, the first\",0.5\n\"b \"\"quoted\"\"\",0.25\n");
  dir.write("broken/trust.csv", "model,mean_weight\n\"never closed,0.5\n");
  const Json summary = {{"split", "test"}, {"loss", "squared"}, {"trust", {{"a", Json::object()}, {"b", Json::object()}}}};
  Json nodes = {{"report", node("report.averaging", "ok", summary)}, {"broken", node("report.averaging", "ok", summary)}};
  Report r = build(run_of(nodes), dir.path());
  // One cell per field: the comma and the doubled quotes are inside the fields.
  EXPECT_THAT(r.html, HasSubstr("<tr><td>a, the first</td><td class=\"num\" title=\"0.5\">0.5</td></tr>"));
  EXPECT_THAT(r.html, HasSubstr("<td>b &quot;quoted&quot;</td>"));
  // A file the reader refuses is named with the reason, not drawn as a garbled table.
  EXPECT_THAT(r.html, HasSubstr("Where each model is trusted (broken/trust.csv): "));
  EXPECT_THAT(r.html, HasSubstr("quote"));
}

TEST(ReportBuilder, WithoutTheChartingJavaScriptTheReportSaysSoAndKeepsTheTables) {
  Json nodes = {{"logme", node("rank.logme", "ok", {{"scores", {{"a", 1.0}, {"b", 2.0}}}}, {{"t", table("T", {"x"}, {{1}})}})}};
  Report r = build(run_of(nodes), ".", missing_library());
  EXPECT_THAT(r.html, HasSubstr("Charts are not drawn in this report"));
  EXPECT_THAT(r.html, HasSubstr("Chart not drawn: Scores of logme (rank.logme)"));
  EXPECT_THAT(r.html, Not(HasSubstr("/*vega")));
  EXPECT_EQ(r.tables, 1u);
  EXPECT_THAT(r.html, HasSubstr("<th>x</th>"));
}

TEST(ReportBuilder, EveryTableOfEveryNodeIsShown) {
  Json nodes = Json::object();
  nodes["a"] = node("x.one", "ok", Json::object(), {{"t1", table("First <table>", {"k", "v"}, Json::array({Json::array({"r", 1.23456789}), Json::array({"s", nullptr})}))}});
  nodes["b"] = node("x.two", "ok", Json::object(), {{"t2", table("Second", {"k"}, Json::array({Json::array({"q"})}))}, {"t3", table("Third", {"k"}, Json::array())}});
  Report r = build(run_of(nodes));
  EXPECT_EQ(r.tables, 3u);
  EXPECT_THAT(r.html, HasSubstr("First &lt;table&gt;"));
  EXPECT_THAT(r.html, HasSubstr("<td class=\"num\" title=\"1.23456789\">1.235</td>"));
  EXPECT_THAT(r.html, HasSubstr("Second"));
  EXPECT_THAT(r.html, HasSubstr("Third"));
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
  EXPECT_THAT(r.html, HasSubstr("<pre class=\"dot\">digraph &quot;p&quot;"));
}

// ------------------------------------------------------------------------------ binning

TEST(ReportCharts, WeightsAreAveragedOverEqualWidthBins) {
  CovariateWeights d;
  d.models = {"a", "b"};
  d.covariate_names = {"z0"};
  d.covariates = {{0.0}, {0.1}, {0.9}, {1.0}, {0.5}};
  d.weights = {{1.0, 0.0}, {0.5, 0.5}, {0.0, 1.0}, {0.2, 0.8}, {0.4, 0.6}};
  const auto cells = bin_weights(d, 2);
  // Bins [0, 0.5) and [0.5, 1]; 0.5 falls in the second.
  ASSERT_EQ(cells.size(), 4u);
  EXPECT_EQ(cells[0].model, 0u);
  EXPECT_DOUBLE_EQ(cells[0].mean_weight, 0.75);
  EXPECT_DOUBLE_EQ(cells[0].x_lo, 0.0);
  EXPECT_DOUBLE_EQ(cells[0].x_hi, 0.5);
  EXPECT_EQ(cells[0].rows, 2u);
  EXPECT_DOUBLE_EQ(cells[1].mean_weight, (0.0 + 0.2 + 0.4) / 3);
  EXPECT_DOUBLE_EQ(cells[2].mean_weight, 0.25);
  EXPECT_DOUBLE_EQ(cells[3].mean_weight, (1.0 + 0.8 + 0.6) / 3);
  d.weights.pop_back();
  EXPECT_THROW(bin_weights(d, 2), Error);
}

TEST(ReportCharts, OneCovariateGivesALinePerModelWithinTheUnitInterval) {
  CovariateWeights d;
  d.models = {"a", "b"};
  d.covariate_names = {"z0"};
  for (int i = 0; i < 10; ++i) {
    d.covariates.push_back({double(i)});
    d.weights.push_back({i / 9.0, 1 - i / 9.0});
  }
  Json spec = covariate_weights_chart({"w", "", ""}, d, 5);
  expect_valid_vega_lite(spec);
  EXPECT_EQ(spec["layer"][0]["data"]["values"].size(), 10u);
  EXPECT_EQ(spec["layer"][0]["encoding"]["y"]["scale"]["domain"], Json::parse("[0, 1]"));
}

TEST(ReportBuilder, AChartWithNothingFiniteToDrawIsANoteNotAnEmptyChart) {
  Json nodes = {{"logme", node("rank.logme", "ok", {{"scores", {{"a", nullptr}, {"b", nullptr}}}})}};
  Report r = build(run_of(nodes));
  EXPECT_TRUE(r.charts.empty());
  EXPECT_THAT(r.html, HasSubstr("Nothing to draw for Scores of logme (rank.logme): no finite values."));
}

TEST(ReportBuilder, AValueOfAnUnexpectedTypeSpoilsOnlyItsSection) {
  Json nodes = Json::object();
  nodes["bad"] = node("x.one", "failed");
  nodes["bad"]["error"] = 42;  // run.json edited by hand: the error is not text
  nodes["logme"] = node("rank.logme", "ok", {{"scores", {{"a", 1.0}, {"b", 2.0}}}});
  Report r = build(run_of(nodes, "failed"));
  EXPECT_THAT(r.html, HasSubstr("This section could not be made from run.json"));
  EXPECT_THAT(r.sections, ::testing::Contains("rankings"));
  EXPECT_EQ(r.charts.size(), 1u);
}

TEST(ReportBuilder, TheGreedySoupsIngredientsAreShownFromTheirCsv) {
  caulk::testing::TempDir dir;
  dir.write("soup/ingredients.csv", "step,ingredient,own_accuracy,soup_with_it,kept\n1,pre:b,0.7667,0.7667,yes\n2,pre:a,0.7467,0.7933,yes\n");
  Report r = build(run_of({{"soup", node("merge.greedy_soup")}}), dir.path());
  EXPECT_THAT(r.sections, ElementsAre("pipeline", "merges"));
  EXPECT_THAT(r.html, HasSubstr("Ingredients as tried (soup/ingredients.csv)"));
  EXPECT_THAT(r.html, HasSubstr("<td>pre:a</td><td class=\"num\" title=\"0.7467\">0.7467</td>"));
  EXPECT_EQ(r.tables, 1u);
}
