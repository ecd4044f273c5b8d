// The ranker and judging nodes through `caulk run`: source probabilities missing, ground truth
// missing a model or naming an unknown one, a bad ground-truth value; and what run.json says.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "npy_bytes.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;

namespace {

class RankerNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("labels.npy", npy_i64({0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}));
    std::vector<float> a(12 * 3), b(12 * 4);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 7919) % 13) / 13.0f;
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 104729) % 17) / 17.0f;
    dir_.write("a.npy", npy_f32(12, 3, a));
    dir_.write("b.npy", npy_f32(12, 4, b));
    dir_.write("hub.toml", "[hub]\nname = \"tiny\"\n\n[[model]]\nname = \"a\"\nfeatures = \"a.npy\"\n\n"
                           "[[model]]\nname = \"b\"\nfeatures = \"b.npy\"\n");
    dir_.write("truth.csv", "model,accuracy\na,0.7\nb,0.9\n");
  }

  void write_pipeline(const std::string& ranker_type, const std::string& extra = "") {
    dir_.write("p.toml", R"([pipeline]
name = "ranker-nodes"
[[node]]
id = "task"
type = "dataset.load"
params = { labels = "labels.npy" }
[[node]]
id = "hub"
type = "adapter.precomputed"
params = { manifest = "hub.toml" }
[[node]]
id = "ranker"
type = ")" + ranker_type + R"("
inputs = { features = "hub", data = "task" }
[[node]]
id = "judge"
type = "eval.rank_correlation"
inputs = { scores = ["ranker"] }
params = { ground_truth = "truth.csv" }
)" + extra);
  }

  CliResult run() { return run_caulk({"run", (dir_ / "p.toml").string(), "--out", (dir_ / "out").string()}); }
  nlohmann::json run_json() { return nlohmann::json::parse(read_file(dir_ / "out" / "run.json")); }

  TempDir dir_;
};

TEST_F(RankerNodes, LeepWithoutSourceProbabilitiesNamesTheModel) {
  write_pipeline("rank.leep");
  CliResult r = run();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("model 'a' has no source-class probabilities"));
  EXPECT_EQ(run_json()["nodes"]["ranker"]["status"], "failed");
}

TEST_F(RankerNodes, JudgeReportsEveryMeasureInRunJson) {
  write_pipeline("rank.hscore");
  CliResult r = run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto judged = run_json()["nodes"]["judge"]["summary"]["ranker"];
  for (const char* key : {"weighted_tau", "kendall_tau", "spearman", "pearson", "top1_regret"}) EXPECT_TRUE(judged.contains(key)) << key;
  // Two models: every correlation is +1 or -1, and the regret is 0 or 0.2.
  EXPECT_EQ(std::abs(judged["kendall_tau"].get<double>()), 1.0);
  const double regret = judged["top1_regret"].get<double>();
  EXPECT_TRUE(regret == 0.0 || std::abs(regret - 0.2) < 1e-12) << regret;
  EXPECT_THAT(r.out, HasSubstr("weighted_tau"));
}

TEST_F(RankerNodes, ModelMissingFromGroundTruthIsNamed) {
  dir_.write("truth.csv", "model,accuracy\na,0.7\n");
  write_pipeline("rank.gbc");
  CliResult r = run();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("model 'b' is scored by 'ranker' but has no ground truth"));
}

TEST_F(RankerNodes, GroundTruthForAnUnscoredModelIsNamed) {
  dir_.write("truth.csv", "model,accuracy\na,0.7\nb,0.9\nc,0.1\n");
  write_pipeline("rank.transrate");
  CliResult r = run();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("model 'c' has ground truth"));
}

TEST_F(RankerNodes, BadGroundTruthValueNamesFileAndLine) {
  dir_.write("truth.csv", "model,top1\na,0.7\nb,high\n");
  write_pipeline("rank.sfda");
  std::string text = read_file(dir_ / "p.toml");
  text.replace(text.find("ground_truth = \"truth.csv\""), 26, "ground_truth = \"truth.csv\", column = \"top1\"");
  dir_.write("p.toml", text);
  CliResult r = run();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("truth.csv:3"));
}

TEST_F(RankerNodes, ParcSaysHowManyRowsItSampled) {
  write_pipeline("rank.parc");
  std::string text = read_file(dir_ / "p.toml");
  text.replace(text.find("inputs = { features = \"hub\", data = \"task\" }"), 44,
               "inputs = { features = \"hub\", data = \"task\" }\nparams = { max_samples = 8, seed = 3 }");
  dir_.write("p.toml", text);
  CliResult r = run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto summary = run_json()["nodes"]["ranker"]["summary"];
  EXPECT_EQ(summary["max_samples"], 8);
  EXPECT_EQ(summary["seed"], 3);
  EXPECT_EQ(summary["details"]["a"]["samples"], 8);
}

}  // namespace
