// merge.regmean and merge.greedy_soup refuse a checkpoint holding NaN or infinity, naming the model,
// the file, the tensor and the element, as the mergers family's merges do. (The MLP runtime
// refuses non-finite parameters whatever the node, so these merges have no allow_non_finite.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "caulk/io/npy.hpp"
#include "cli.hpp"
#include "merge_test_support.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;

namespace {

class MlpMergeNonFinite : public ::testing::Test {
 protected:
  void SetUp() override {
    // A 3-class task on 5 inputs; two small models of one architecture (5 -> 4 -> 3).
    std::mt19937_64 rng(1);
    for (const char* split : {"train", "val"}) {
      const caulk::mlp_merges::testing::Mat<double> x = caulk::mlp_merges::testing::random_matrix(30, 5, rng);
      std::vector<std::int64_t> y;
      for (int i = 0; i < 30; ++i) y.push_back(i % 3);
      caulk::io::write_npy(dir_ / (std::string(split) + "_x.npy"), caulk::Matrix(x));
      caulk::io::write_npy(dir_ / (std::string(split) + "_y.npy"), y);
    }
    for (int i = 0; i < 2; ++i) models_.push_back(caulk::mlp_merges::testing::random_model({5, 4, 3}, 10 + static_cast<std::uint64_t>(i)));
    dir_.write("hub.toml",
               "[hub]\nname = \"h\"\n[[model]]\nname = \"a\"\ncheckpoint = \"a.safetensors\"\n"
               "[[model]]\nname = \"b\"\ncheckpoint = \"b.safetensors\"\n");
  }
  CliResult run(const std::string& type, const std::string& params, const std::string& out) {
    caulk::mlp::save_model(dir_ / "a.safetensors", models_[0]);
    caulk::mlp::save_model(dir_ / "b.safetensors", models_[1]);
    dir_.write("p.toml", R"([pipeline]
name = "p"
[[node]]
id = "data"
type = "dataset.load"
params = { labels = { train = "train_y.npy", val = "val_y.npy" }, inputs = { train = "train_x.npy", val = "val_x.npy" } }
[[node]]
id = "load"
type = "checkpoint.load"
params = { manifest = "hub.toml" }
[[node]]
id = "merge"
type = ")" + type + R"("
inputs = { checkpoints = "load", data = "data" }
params = { )" + params + R"( }
)");
    return run_caulk({"run", (dir_ / "p.toml").string(), "--out", (dir_ / out).string()});
  }
  TempDir dir_;
  std::vector<caulk::mlp::Model<float>> models_;
};

TEST_F(MlpMergeNonFinite, RegMeanAndGreedySoupNameTheModelFileTensorAndElement) {
  // layers.0.weight is 4 x 5 in the file: row 1, column 3 is element 8.
  models_[1].layers[0].W(1, 3) = std::numeric_limits<float>::quiet_NaN();
  for (const char* type : {"merge.regmean", "merge.greedy_soup"}) {
    const auto r = run(type, "", std::string("out-") + type);
    EXPECT_EQ(r.exit_code, 1) << type << r.err;
    EXPECT_THAT(
        r.err, HasSubstr("model 'b': " + (dir_ / "b.safetensors").string() + ": tensor 'layers.0.weight', element 8 (index [1, 3]) is NaN"))
        << type;
    EXPECT_FALSE(std::filesystem::exists(dir_ / (std::string("out-") + type) / "merge" / "merge.safetensors")) << type;
  }
  // An infinite bias is named too.
  models_[1].layers[0].W(1, 3) = 0.5f;
  models_[0].layers[1].b(2) = -std::numeric_limits<float>::infinity();
  const auto r = run("merge.greedy_soup", "", "out-bias");
  EXPECT_THAT(r.err,
              HasSubstr("model 'a': " + (dir_ / "a.safetensors").string() + ": tensor 'layers.1.bias', element 2 (index [2]) is -inf"));
}

}  // namespace
