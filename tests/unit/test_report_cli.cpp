// The report of a run through the real binary: the report.html observer at the end of `caulk run`
// (also when a node failed) and `caulk report RUN_DIR` on a finished run's folder.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

namespace {

std::filesystem::path failing_run() { return source_dir() / "tests/integration/report/failing_run.toml"; }

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ReportCli, TheReportOfADemoRunDrawsWhatItsNodesPublished) {
  TempDir dir;
  auto r = run_caulk({"run", (source_dir() / "pipelines/rank_hub.toml").string(), "--out", (dir / "out").string(), "--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json run = Json::parse(read_file(dir / "out" / "run.json"));
  EXPECT_FALSE(run["nodes"].contains("html"));  // an observer, not a node
  const std::string page = read_file(dir / "out" / "report.html");
  EXPECT_THAT(r.err, HasSubstr("[report.html] wrote " + (dir / "out" / "report.html").string() + " (12 charts"));
  // Ten rankers publish a bar chart each; the judge its tau chart and one figure of ten scatter
  // panels (against the ground truth).
  EXPECT_EQ(count(page, "<figure class=\"chart\""), 12u);
  const auto pipeline_at = page.find("<section id=\"pipeline\">");
  ASSERT_NE(pipeline_at, std::string::npos);
  for (const char* id : {"node-task", "node-hub", "node-logme", "node-gbc", "node-judge", "node-ranking"})
    EXPECT_GT(page.find(std::string("<section id=\"") + id + "\">"), pipeline_at) << id;
  // A ranker's figure draws the scores it published, best first.
  const Json& bars = run["nodes"]["logme"]["figures"]["figure"]["spec"]["data"]["values"];
  const Json& scores = run["nodes"]["logme"]["summary"]["scores"];
  ASSERT_EQ(bars.size(), scores.size());
  for (std::size_t i = 0; i < bars.size(); ++i) {
    EXPECT_EQ(bars[i]["value"], scores[bars[i]["label"].get<std::string>()]);
    if (i > 0) {
      EXPECT_GE(bars[i - 1]["value"].get<double>(), bars[i]["value"].get<double>());
    }
  }
  // The judge's scatter: one panel per ranker, each model at (its score, its ground truth).
  const Json& panels = run["nodes"]["judge"]["figures"]["scatter_figure"]["spec"]["concat"];
  ASSERT_EQ(panels.size(), 10u);
  EXPECT_EQ(panels[0]["title"]["text"], "logme against the accuracy");
  const Json& logme_points = panels[0]["layer"][0]["data"]["values"];
  ASSERT_EQ(logme_points.size(), scores.size());
  for (const auto& point : logme_points) EXPECT_EQ(point["x"], scores[point["label"].get<std::string>()]);
  // The dataset and the hub are summarised.
  EXPECT_TRUE(run["nodes"]["task"]["tables"].contains("summary"));
  EXPECT_EQ(run["nodes"]["hub"]["tables"]["summary"]["rows"].size(), 5u * 2u);  // five models, two splits
  // Written once the run had ended: every node counted as what it became.
  const std::size_t header_at = page.find("<header>");
  ASSERT_NE(header_at, std::string::npos);
  const std::string header = page.substr(header_at, page.find("</header>") - header_at);
  EXPECT_THAT(header, HasSubstr("Run <strong>succeeded</strong>: 14 nodes (14 ok)"));
  EXPECT_THAT(header, Not(HasSubstr("running")));
  EXPECT_THAT(page, HasSubstr("<title>caulk run: rank-hub</title>"));
  EXPECT_THAT(page, HasSubstr("Scores of logme (rank.logme)"));
  // The run made its page from run.json's record as written (ObserverContext::record), every score
  // a double; made again from the file, it is the same page.
  auto again = run_caulk({"report", (dir / "out").string()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(read_file(dir / "out" / "report.html"), page);
}

TEST(ReportCli, AFailedRunStillEndsWithAReportThatNamesTheFailure) {
  TempDir dir;
  auto r = run_caulk({"run", failing_run().string(), "--out", (dir / "out").string(), "--jobs", "2", "--no-data-check"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const Json run = Json::parse(read_file(dir / "out" / "run.json"));
  EXPECT_EQ(run["status"], "failed");
  EXPECT_EQ(run["nodes"]["judge"]["status"], "failed");
  EXPECT_EQ(run["nodes"]["ranking"]["status"], "skipped");
  const std::string page = read_file(dir / "out" / "report.html");
  EXPECT_THAT(page, HasSubstr("node &#39;judge&#39; (eval.rank_correlation) failed: "));
  EXPECT_THAT(page, HasSubstr("model &#39;random&#39; is scored by &#39;logme&#39; but has no ground truth"));
  EXPECT_THAT(page, HasSubstr("Run <strong>FAILED</strong>"));
}

TEST(ReportCli, CaulkReportRegeneratesTheSameReportFromTheRunFolder) {
  TempDir dir;
  const auto out = dir / "out";
  ASSERT_EQ(run_caulk({"run", failing_run().string(), "--out", out.string(), "--jobs", "2", "--no-data-check"}).exit_code, 1);
  const std::string written = read_file(out / "report.html");
  std::filesystem::remove(out / "report.html");
  auto r = run_caulk({"report", out.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("[report.html] wrote " + (out / "report.html").string()));
  const std::string again = read_file(out / "report.html");
  EXPECT_THAT(again, HasSubstr("node &#39;judge&#39; (eval.rank_correlation) failed: "));
  // The same page: the run's observer saw the final record too. Only the graph's layout may be
  // kept from the first (the same text either way), so compare the pages whole.
  EXPECT_EQ(written, again);
  EXPECT_THAT(written, Not(HasSubstr("&#8230; running")));
  auto title = run_caulk({"report", out.string(), "--title", "A <title>"});
  EXPECT_EQ(title.exit_code, 0) << title.err;
  EXPECT_THAT(read_file(out / "report.html"), HasSubstr("<title>A &lt;title&gt;</title>"));
  // It does not touch run.json.
  EXPECT_EQ(Json::parse(read_file(out / "run.json"))["status"], "failed");
  // One observer by name; an unknown one is named with the loaded ones.
  EXPECT_EQ(run_caulk({"report", out.string(), "--observer", "report.html"}).exit_code, 0);
  auto unknown = run_caulk({"report", out.string(), "--observer", "report.pdf"});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_THAT(unknown.err, HasSubstr("no loaded run observer 'report.pdf' (the loaded ones: report.html)"));
}

TEST(ReportCli, CaulkReportOnAFolderThatIsNotARunIsAUsageError) {
  TempDir dir;
  auto r = run_caulk({"report", dir.path().string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("run.json holds no readable run record"));
  dir.write("run.json", "{ broken");
  auto bad = run_caulk({"report", dir.path().string()});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("run.json holds no readable run record: [json.exception.parse_error"));
  dir.write("run.json", "{\"status\": \"ok\"}");
  auto not_a_run = run_caulk({"report", dir.path().string()});
  EXPECT_EQ(not_a_run.exit_code, 2);
  EXPECT_THAT(not_a_run.err, HasSubstr("not a run record (run.json): it needs \"status\" and \"nodes\""));
  EXPECT_FALSE(std::filesystem::exists(dir / "report.html"));
}

TEST(ReportCli, WithoutTheChartingJavaScriptTheReportIsStillWrittenAndSaysWhy) {
  TempDir dir;
  auto r = run_caulk({"run", (source_dir() / "pipelines/quickstart.toml").string(), "--out", (dir / "out").string()},
                     "CAULK_REPORT_JS=" + shell_quote((dir / "no-js").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("charts are left out"));
  const std::string page = read_file(dir / "out" / "report.html");
  EXPECT_THAT(page, HasSubstr("Charts are not drawn in this report"));
  EXPECT_THAT(page, HasSubstr("<th>model</th>"));
}

}  // namespace
