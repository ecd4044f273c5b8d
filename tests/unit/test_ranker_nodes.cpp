// The ranker and judging nodes through `caulk run`: source probabilities missing, ground truth
// missing a model or naming an unknown one, a bad ground-truth value; and what run.json says.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
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
    dir_.write("hub.toml",
               "[hub]\nname = \"tiny\"\n\n[[model]]\nname = \"a\"\nfeatures = \"a.npy\"\n\n"
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

  CliResult run(std::vector<std::string> extra = {}) {
    // --no-data-check: these are the nodes' own checks as they run (tests/unit/data_checks has the checks before).
    std::vector<std::string> args = {"run", (dir_ / "p.toml").string(), "--out", (dir_ / "out").string(), "--no-data-check"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_caulk(args);
  }
  // Gives every model source probabilities (or logits) from the same 12 x 3 rows.
  void write_source_rows(const std::vector<float>& rows) {
    dir_.write("probs.npy", npy_f32(12, 3, rows));
    dir_.write("hub.toml",
               "[hub]\nname = \"tiny\"\n\n[[model]]\nname = \"a\"\nfeatures = \"a.npy\"\nsource_probs = \"probs.npy\"\n\n"
               "[[model]]\nname = \"b\"\nfeatures = \"b.npy\"\nsource_probs = \"probs.npy\"\n");
  }
  void set_ranker_params(const std::string& params) {
    std::string text = read_file(dir_ / "p.toml");
    text.replace(text.find("inputs = { features = \"hub\", data = \"task\" }"), 44,
                 "inputs = { features = \"hub\", data = \"task\" }\nparams = { " + params + " }");
    dir_.write("p.toml", text);
  }
  nlohmann::json run_json() { return nlohmann::json::parse(read_file(dir_ / "out" / "run.json")); }

  TempDir dir_;
};

TEST_F(RankerNodes, LeepWithoutSourceProbabilitiesNamesTheModel) {
  write_pipeline("rank.leep");
  CliResult r = run();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // Both models lack them: one cause, said once, the models named after it (caulk/failures.hpp).
  EXPECT_THAT(r.err, HasSubstr("model '<model>' has no source-class probabilities"));
  EXPECT_THAT(r.err, HasSubstr("models 'a', 'b'"));
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

// ----------------------------------------------------------------------------- source rows

std::vector<float> logit_rows() {
  std::vector<float> v(12 * 3);
  for (std::size_t i = 0; i < 12; ++i)
    for (std::size_t z = 0; z < 3; ++z) v[3 * i + z] = static_cast<float>(static_cast<int>((i * 5 + z * 3) % 7) - 3) * 0.7f;
  return v;
}

std::vector<float> softmax_rows(const std::vector<float>& logits) {
  std::vector<float> p(logits.size());
  for (std::size_t i = 0; i < 12; ++i) {
    double sum = 0;
    for (std::size_t z = 0; z < 3; ++z) sum += std::exp(static_cast<double>(logits[3 * i + z]));
    for (std::size_t z = 0; z < 3; ++z) p[3 * i + z] = static_cast<float>(std::exp(static_cast<double>(logits[3 * i + z])) / sum);
  }
  return p;
}

// Rows of source_probs that are not probabilities stop LEEP (before: a wrong or non-finite score
// and exit 0), with the model, the file, the row and what to do.
TEST_F(RankerNodes, LeepRefusesSourceRowsThatAreNotProbabilities) {
  std::vector<float> times7 = softmax_rows(logit_rows());
  for (std::size_t z = 0; z < 3; ++z) times7[3 * 4 + z] *= 7;
  write_source_rows(times7);
  write_pipeline("rank.leep");
  CliResult r = run();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr((dir_ / "probs.npy").string() + ": LEEP: source_probs of model 'a': row 4 sums to 7"));
  EXPECT_THAT(r.err, HasSubstr("if the file holds logits, set source_logits = true on the node"));

  write_source_rows(logit_rows());
  write_pipeline("rank.nce");
  r = run();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("NCE: source_probs of model 'a': row 0 has a negative probability"));
}

// source_logits = true: the rows are logits and LEEP scores their softmax, the same score as the
// softmax written to the file (to float32 rounding).
TEST_F(RankerNodes, LeepScoresTheSoftmaxOfLogits) {
  write_source_rows(softmax_rows(logit_rows()));
  write_pipeline("rank.leep");
  CliResult r = run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double from_probs = run_json()["nodes"]["ranker"]["summary"]["scores"]["a"].get<double>();
  write_source_rows(logit_rows());
  write_pipeline("rank.leep");
  set_ranker_params("source_logits = true");
  r = run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(run_json()["nodes"]["ranker"]["summary"]["scores"]["a"].get<double>(), from_probs, 1e-6);
}

// ----------------------------------------------------------------------------- memory

// 200 x 50000 float32 features (40 MB) would make H-score hold four 50000 x 50000 matrices (about
// 75 GiB); the node refuses at once, naming itself, the model, the estimate, the budget and what
// to do, before allocating anything.
TEST_F(RankerNodes, WideFeaturesAreRefusedBeforeAllocating) {
  const std::size_t N = 200, D = 50000;
  std::vector<float> wide(N * D);
  for (std::size_t i = 0; i < wide.size(); ++i) wide[i] = static_cast<float>((i * 7919) % 101) / 101.0f;
  std::vector<std::int64_t> labels(N);
  for (std::size_t i = 0; i < N; ++i) labels[i] = static_cast<std::int64_t>(i % 3);
  dir_.write("labels.npy", npy_i64(labels));
  dir_.write("wide.npy", npy_f32(N, D, wide));
  wide = {};
  dir_.write("hub.toml",
             "[hub]\nname = \"wide\"\n\n[[model]]\nname = \"wide\"\nfeatures = \"wide.npy\"\n\n"
             "[[model]]\nname = \"a\"\nfeatures = \"wide.npy\"\n");
  write_pipeline("rank.hscore");
  const auto started = std::chrono::steady_clock::now();
  CliResult r = run({"--memory-limit", "8G", "--jobs", "1"});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_LT(seconds, 20.0);
  EXPECT_THAT(r.err, HasSubstr("node 'ranker' (rank.hscore) would need about 74.9 GiB for model 'wide' (200 x 50000 features: "
                               "the 50000 x 50000 scatter matrix and its eigendecomposition), more than the memory budget of "
                               "8.0 GiB (--memory-limit"));
  EXPECT_THAT(r.err, HasSubstr("rank.logme scores the features through the thin SVD of the N x D matrix instead"));
  EXPECT_THAT(r.err, HasSubstr("Or raise --memory-limit"));
  EXPECT_EQ(run_json()["nodes"]["ranker"]["status"], "failed");
}

// The budget is what --memory-limit says: the tiny hub fits in 64M and not in 1K; two models
// scored at once count twice.
TEST_F(RankerNodes, MemoryLimitIsTheBudgetOfEachNode) {
  write_pipeline("rank.sfda");
  CliResult r = run({"--memory-limit", "64M"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run({"--memory-limit", "1K", "--jobs", "2", "--no-cache"});  // checked when the node runs, not when reused
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("node 'ranker' (rank.sfda) would need about"));
  EXPECT_THAT(r.err, HasSubstr("with up to 2 models scored at once (--jobs 2;"));
  EXPECT_THAT(r.err, HasSubstr("more than the memory budget of 1.0 KiB"));
  r = run({"--memory-limit", "0"});  // no limit
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(RankerNodes, MemoryLimitMustBeASize) {
  write_pipeline("rank.gbc");
  CliResult r = run({"--memory-limit", "lots"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("'lots' is not a memory size"));
  r = run_caulk({"run", "--help"});
  EXPECT_THAT(r.out, HasSubstr("--memory-limit"));
  EXPECT_THAT(r.out, HasSubstr("half of MemAvailable"));
}

// ----------------------------------------------------------------------------- LogME details

TEST_F(RankerNodes, LogMERecordsTheNumericalRankAndTheClassesScored) {
  // Class 2 never appears in the scored rows: LogME scores classes 0 and 1 only.
  dir_.write("labels.npy", npy_i64({0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1}));
  dir_.write("labels_test.npy", npy_i64({0, 1, 2}));
  write_pipeline("rank.logme");
  std::string text = read_file(dir_ / "p.toml");
  text.replace(text.find("params = { labels = \"labels.npy\" }"), 34,
               "params = { labels = { train = \"labels.npy\", test = \"labels_test.npy\" } }");
  dir_.write("p.toml", text);
  CliResult r = run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto details = run_json()["nodes"]["ranker"]["summary"]["details"];
  EXPECT_EQ(details["a"]["numerical_rank"], 3);
  EXPECT_EQ(details["b"]["numerical_rank"], 4);
  EXPECT_EQ(details["a"]["route"], "gram");
  EXPECT_EQ(details["a"]["classes_scored"], 2);
}

// ----------------------------------------------------------------------------- judging

// A ground truth that is not a finite number: the error names the file, the line and the model
// (before: "weighted tau: value 1 is not finite").
TEST_F(RankerNodes, NonFiniteGroundTruthIsNamed) {
  dir_.write("truth.csv", "model,accuracy\na,0.7\nb,inf\n");
  write_pipeline("rank.gbc");
  CliResult r = run();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr((dir_ / "truth.csv").string() + ":3: column 'accuracy': the ground truth of model 'b' is inf"));
}

}  // namespace
