// One message per cause (issue 21 item 2; caulk/failures.hpp): many units failing for one cause are
// said once with their count, nothing is named twice, and run.json keeps each node's own error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "caulk/failures.hpp"
#include "cli.hpp"
#include "npy_bytes.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + what.size())) ++n;
  return n;
}

// The error of one model, as the rankers' unit throws it for a labels file shorter than the features.
std::string rows_error(const std::string& model) {
  return "demo/features/" + model + "_train.npy: 600 rows of features for split 'train' but the labels (demo/labels_train.npy) have 593";
}

TEST(FailureCauses, UnitsWithOneCauseAreSaidOnceWithTheirNames) {
  const std::string m = caulk::unit_failures_message(
      "model", 5, {{"sharp-large", rows_error("sharp-large")}, {"blurry", rows_error("blurry")}, {"random", rows_error("random")}});
  EXPECT_EQ(m,
            "3 of 5 models failed:\n  3 models ('sharp-large', 'blurry', 'random'): demo/features/<model>_train.npy: 600 rows of "
            "features for split 'train' but the labels (demo/labels_train.npy) have 593");
}

TEST(FailureCauses, DifferentCausesStayApartAndAUnitIsNotNamedTwice) {
  const std::string m =
      caulk::unit_failures_message("model", 3, {{"a", "model 'a': out of memory"}, {"b", rows_error("b")}, {"c", "disk full"}});
  EXPECT_EQ(m, "3 of 3 models failed:\n  model 'a': out of memory\n  model 'b': " + rows_error("b") + "\n  model 'c': disk full");
}

TEST(FailureCauses, ANameInsideALongerWordIsNotTakenForTheUnit) {
  // "a" is not replaced inside "labels" or "train": the two errors differ only where they name their unit.
  const std::string m = caulk::unit_failures_message("model", 2, {{"a", "f/a.npy: bad labels train"}, {"b", "f/b.npy: bad labels train"}});
  EXPECT_THAT(m, HasSubstr("2 models ('a', 'b'): f/<model>.npy: bad labels train"));
}

TEST(FailureCauses, NodesFailingForOneCauseAreCountedTogether) {
  const std::string err = caulk::unit_failures_message(
      "model", 5, {{"x", rows_error("x")}, {"y", rows_error("y")}, {"z", rows_error("z")}, {"u", rows_error("u")}});
  auto causes = caulk::group_failures({{"logme", "rank.logme", err}, {"hscore", "rank.hscore", err}, {"task", "dataset.load", "boom"}});
  ASSERT_EQ(causes.size(), 2u);
  EXPECT_EQ(causes[0].units, 8u);
  EXPECT_EQ(causes[0].nodes.size(), 2u);
  EXPECT_EQ(causes[0].str(),
            "nodes 'logme' (rank.logme) and 'hscore' (rank.hscore) failed: demo/features/<model>_train.npy: 600 rows of features for "
            "split 'train' but the labels (demo/labels_train.npy) have 593 (in 8 models of 2 nodes; models 'x', 'y', 'z', 'u')");
  EXPECT_EQ(causes[1].str(), "node 'task' (dataset.load) failed: boom");
}

TEST(FailureCauses, OneUnitOfOneNode) {
  auto causes = caulk::group_failures({{"logme", "rank.logme", caulk::unit_failures_message("model", 2, {{"a", "disk full"}})}});
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0].str(), "node 'logme' (rank.logme) failed: model 'a': disk full");
}

// The reproduction: the demo hub with a labels file 7 rows short, ranked by two rankers. Before,
// every model's error was printed once per ranker while running and again at the end, and the
// report repeated it; now the cause is printed once and the report says it once.
TEST(FailureCauses, OneBadLabelsFileUnderTwoRankersIsSaidOnce) {
  TempDir dir;
  fs::copy(source_dir() / "pipelines" / "demo", dir / "demo", fs::copy_options::recursive);
  std::vector<std::int64_t> labels(593);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 3);
  dir.write("demo/labels_train.npy", npy_i64(labels));
  dir.write("p.toml", R"([pipeline]
name = "one-cause"
[[node]]
id = "task"
type = "dataset.load"
params = { labels = { train = "demo/labels_train.npy", test = "demo/labels_test.npy" } }
[[node]]
id = "hub"
type = "adapter.precomputed"
params = { manifest = "demo/hub.toml" }
[[node]]
id = "logme"
type = "rank.logme"
inputs = { features = "hub", data = "task" }
[[node]]
id = "hscore"
type = "rank.hscore"
inputs = { features = "hub", data = "task" }
[[observer]]
type = "report.html"
)");
  // --no-data-check: the runtime path (the data check would refuse this pipeline before running).
  CliResult r = run_caulk({"run", (dir / "p.toml").string(), "--out", (dir / "out").string(), "--jobs", "2", "--no-data-check"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(count(r.err, "rows of features for split 'train'"), 1u) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(have 593 \(in (5 models of 1 node|10 models of 2 nodes); models 'sharp-large')")))
      << r.err;
  EXPECT_THAT(r.err,
              Not(HasSubstr("model 'sharp-large': " + (dir / "demo/features/sharp-large_train.npy").string() + ": model 'sharp-large'")));
  // run.json keeps each failed node's own error.
  auto run = nlohmann::json::parse(read_file(dir / "out" / "run.json"));
  EXPECT_THAT(run["nodes"]["logme"]["error"].get<std::string>(), HasSubstr("5 of 5 models failed"));
  // The report's "What failed" says the cause once.
  const std::string html = read_file(dir / "out" / "report.html");
  const std::size_t start = html.find("<section id=\"failures\">");
  ASSERT_NE(start, std::string::npos);
  const std::string section = html.substr(start, html.find("</section>", start) - start);
  EXPECT_EQ(count(section, "rows of features for split"), 1u) << section;
}

}  // namespace
