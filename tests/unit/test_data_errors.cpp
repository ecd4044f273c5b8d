// Bad data files through `caulk run`: a clear error naming the file and the problem, exit code 1,
// run.json still written, and no half-written output.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "npy_bytes.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;

namespace {

class DataErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    // A valid little task: 6 samples, 2 classes, two models.
    labels_ = dir_.write("labels.npy", npy_i64({0, 1, 0, 1, 0, 1}));
    std::vector<float> a(6 * 3), b(6 * 2);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 7919) % 13) / 13.0f;
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 104729) % 17) / 17.0f;
    dir_.write("a.npy", npy_f32(6, 3, a));
    dir_.write("b.npy", npy_f32(6, 2, b));
    write_hub("[[model]]\nname = \"a\"\nfeatures = \"a.npy\"\n\n[[model]]\nname = \"b\"\nfeatures = \"b.npy\"\n");
    dir_.write("p.toml", R"([pipeline]
name = "errors"
[[node]]
id = "task"
type = "dataset.load"
params = { labels = "labels.npy" }
[[node]]
id = "hub"
type = "adapter.precomputed"
params = { manifest = "hub.toml" }
[[node]]
id = "logme"
type = "rank.logme"
inputs = { features = "hub", data = "task" }
[[node]]
id = "ranking"
type = "report.ranking"
inputs = { scores = ["logme"] }
)");
  }
  void write_hub(const std::string& models) { dir_.write("hub.toml", "[hub]\nname = \"tiny\"\n\n" + models); }

  // --no-data-check: these are the nodes' own checks as they read (tests/unit/data_checks has the checks before running).
  CliResult run() { return run_caulk({"run", (dir_ / "p.toml").string(), "--out", (dir_ / "out").string(), "--no-data-check"}); }

  // The run failed with exit 1, `node` failed with a message containing `message`, and the
  // ranking files were not written.
  void expect_failure(const std::string& node, const std::string& message) {
    CliResult r = run();
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(message));
    auto j = nlohmann::json::parse(read_file(dir_ / "out" / "run.json"));
    EXPECT_EQ(j["status"], "failed");
    EXPECT_EQ(j["nodes"][node]["status"], "failed");
    EXPECT_THAT(j["nodes"][node]["error"].get<std::string>(), HasSubstr(message));
    EXPECT_FALSE(std::filesystem::exists(dir_ / "out" / "ranking.csv"));
  }

  TempDir dir_;
  std::filesystem::path labels_;
};

TEST_F(DataErrors, TheValidSetupRuns) {
  CliResult r = run();
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(DataErrors, MissingLabelsFile) {
  std::filesystem::remove(labels_);
  expect_failure("task", (dir_ / "labels.npy").string() + ":");
}

TEST_F(DataErrors, BadMagicInLabels) {
  dir_.write("labels.npy", "this is not numpy data at all");
  expect_failure("task", (dir_ / "labels.npy").string() + ":");
}

TEST_F(DataErrors, TruncatedFeatures) {
  std::vector<float> a(6 * 3, 1.0f);
  std::string image = npy_f32(6, 3, a);
  dir_.write("a.npy", image.substr(0, image.size() - 5));
  expect_failure("hub", "model 'a' (features, split 'train'");
}

TEST_F(DataErrors, NanInFeaturesNamesRowAndColumn) {
  std::vector<float> a(6 * 3, 0.5f);
  a[2 * 3 + 1] = std::numeric_limits<float>::quiet_NaN();
  dir_.write("a.npy", npy_f32(6, 3, a));
  expect_failure("logme", (dir_ / "a.npy").string() + ": features of model 'a': non-finite value (nan) at row 2, column 1");
}

TEST_F(DataErrors, InfInFeatures) {
  std::vector<float> a(6 * 3, 0.5f);
  a[4] = std::numeric_limits<float>::infinity();
  dir_.write("a.npy", npy_f32(6, 3, a));
  expect_failure("logme", "non-finite value (inf) at row 1, column 1");
}

TEST_F(DataErrors, FeatureRowsDifferFromLabels) {
  std::vector<float> a(5 * 3, 0.5f);
  dir_.write("a.npy", npy_f32(5, 3, a));
  expect_failure("logme", "model 'a': " + (dir_ / "a.npy").string() + ": 5 rows of features for split 'train' but the labels (" +
                              labels_.string() + ") have 6");
}

TEST_F(DataErrors, ManifestUnknownKeyHasLineAndColumn) {
  write_hub("[[model]]\nname = \"a\"\nfeaturs = \"a.npy\"\n");
  expect_failure("hub", (dir_ / "hub.toml").string() + ":6:1: model 'a': unknown key 'featurs' (did you mean 'features'?)");
}

TEST_F(DataErrors, ManifestMissingFileNamesTheModel) {
  write_hub("[[model]]\nname = \"ghost\"\nfeatures = \"ghost.npy\"\n");
  expect_failure("hub", (dir_ / "ghost.npy").string() + ": model 'ghost' (features, split 'train', " + (dir_ / "hub.toml").string() +
                            ":6:12): no such file");
}

TEST_F(DataErrors, BigEndianFeaturesAreRefused) {
  std::vector<float> a(6 * 3, 0.5f);
  dir_.write("a.npy", npy_image(">f4", "(6, 3)", a.data(), a.size() * 4));
  expect_failure("hub", "big-endian");
}

TEST_F(DataErrors, CsvLabelsWithARaggedRow) {
  dir_.write("labels.csv", "label\n0\n1\n0,1\n");
  dir_.write("p.toml", std::string(read_file(dir_ / "p.toml")).replace(read_file(dir_ / "p.toml").find("labels.npy"), 10, "labels.csv"));
  expect_failure("task", (dir_ / "labels.csv").string());
}

TEST_F(DataErrors, ExistingOutputsAreNotClobberedByAFailedRun) {
  ASSERT_EQ(run().exit_code, 0);
  std::string before = read_file(dir_ / "out" / "ranking.csv");
  std::vector<float> a(6 * 3, 0.5f);
  a[0] = std::numeric_limits<float>::quiet_NaN();
  dir_.write("a.npy", npy_f32(6, 3, a));
  EXPECT_EQ(run().exit_code, 1);
  EXPECT_EQ(read_file(dir_ / "out" / "ranking.csv"), before);
  for (const auto& e : std::filesystem::directory_iterator(dir_ / "out"))
    EXPECT_THAT(e.path().filename().string(), ::testing::Not(HasSubstr(".tmp"))) << "a temporary file was left behind";
}

}  // namespace
