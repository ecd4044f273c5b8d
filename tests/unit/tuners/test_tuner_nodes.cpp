// The tuner nodes through `caulk run`: B-Tuning's choice of teachers and their weights checked
// against the LogME scores run.json reports, lambda = 0 against tune.peft's checkpoint bit for bit,
// nested subsets, the aggregate table, and the errors users meet.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "caulk/io/npy.hpp"
#include "cli.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;

namespace {

// A zoo small enough to pre-train in well under a second: a small target and three teachers.
const char* kZoo = R"([pipeline]
name = "tuner-nodes"
[[node]]
id = "zoo"
type = "zoo.pretrain"
params = { seed = 3, inputs = 8, latent = 2, source_samples = 400, train = 60, validation = 40, test = 80, epochs = 3, models = [
  { name = "student", relatedness = 0.5, hidden = [6] },
  { name = "near", relatedness = 0.9, hidden = [12] },
  { name = "deep", relatedness = 0.8, hidden = [10, 7] },
  { name = "far", relatedness = 0.0, hidden = [9] } ] }
[[node]]
id = "subsets"
type = "data.subsample"
inputs = { data = "zoo.data" }
params = { sizes = [20, 40], seeds = 2, seed = 5 }
[[node]]
id = "features"
type = "adapter.mlp"
inputs = { data = "subsets.data", models = "zoo.models" }
[[node]]
id = "logme"
type = "rank.logme"
inputs = { features = "features", data = "subsets.data" }
params = { split = "train_n40_s1" }
)";

const char* kTune = R"(mode = "full", epochs = 4, batch_size = 16, validation_split = "", train_split = "train_n40_s1", seed = 3)";

class TunerNodes : public ::testing::Test {
 protected:
  CliResult run(const std::string& pipeline, const std::string& out = "out") {
    dir_.write("p.toml", pipeline);
    return run_caulk({"run", (dir_ / "p.toml").string(), "--out", (dir_ / out).string()});
  }
  nlohmann::json run_json() { return nlohmann::json::parse(read_file(dir_ / "out" / "run.json")); }
  TempDir dir_;
};

TEST_F(TunerNodes, BTuningPicksTheTopKByLogMEWithSoftmaxWeightsAndLambdaZeroIsTunePeft) {
  const std::string p = std::string(kZoo) + fmt::format(R"(
[[node]]
id = "bt"
type = "tune.btuning"
inputs = {{ data = "subsets.data", models = "zoo.models", features = "features", scores = "logme" }}
params = {{ only = ["student"], k = 2, tau = 0.05, lambda = 50, suffix = ":bt", {0} }}
[[node]]
id = "bt0"
type = "tune.btuning"
inputs = {{ data = "subsets.data", models = "zoo.models", features = "features", scores = "logme" }}
params = {{ only = ["student"], lambda = 0, suffix = ":bt0", {0} }}
[[node]]
id = "plain"
type = "tune.peft"
inputs = {{ data = "subsets.data", models = "zoo.models" }}
params = {{ only = ["student"], suffix = ":plain", {0} }}
)",
                                                        kTune);
  auto r = run(p);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = run_json();
  const auto& scores = j["nodes"]["logme"]["summary"]["scores"];
  // The two best-ranked models other than the target, by the scores LogME reported.
  std::vector<std::pair<double, std::string>> ranked;
  for (const char* m : {"near", "deep", "far"}) ranked.emplace_back(scores[m].get<double>(), m);
  std::sort(ranked.rbegin(), ranked.rend());
  const auto& teachers = j["nodes"]["bt"]["summary"]["student:bt"]["teachers"];
  ASSERT_EQ(teachers.size(), 2u);
  const double z = std::exp(ranked[0].first / 0.05) + std::exp(ranked[1].first / 0.05);
  double sum = 0;
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(teachers[k]["model"], ranked[k].second);
    EXPECT_DOUBLE_EQ(teachers[k]["logme"].get<double>(), ranked[k].first);
    EXPECT_NEAR(teachers[k]["pi"].get<double>(), std::exp(ranked[k].first / 0.05) / z, 1e-12);
    sum += teachers[k]["pi"].get<double>();
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  // lambda = 0: the same checkpoint as tune.peft with the same seed and options, bit for bit.
  const auto a = caulk::mlp::load_model(dir_ / "out" / "bt0" / "student:bt0.safetensors");
  const auto b = caulk::mlp::load_model(dir_ / "out" / "plain" / "student:plain.safetensors");
  const auto c = caulk::mlp::load_model(dir_ / "out" / "bt" / "student:bt.safetensors");
  auto pa = caulk::mlp::parameters(a), pb = caulk::mlp::parameters(b), pc = caulk::mlp::parameters(c);
  ASSERT_EQ(pa.size(), pb.size());
  bool differs_from_bt = false;
  for (std::size_t k = 0; k < pa.size(); ++k) {
    EXPECT_EQ(std::memcmp(pa[k].data, pb[k].data, pa[k].size() * sizeof(float)), 0) << pa[k].name;
    differs_from_bt |= std::memcmp(pa[k].data, pc[k].data, pa[k].size() * sizeof(float)) != 0;
  }
  EXPECT_TRUE(differs_from_bt);
}

TEST_F(TunerNodes, BaselinesRunAndTheAggregateAveragesOverSeeds) {
  std::string p = kZoo;
  for (int s = 0; s < 2; ++s)
    p += fmt::format(R"(
[[node]]
id = "logme{0}"
type = "rank.logme"
inputs = {{ features = "features", data = "subsets.data" }}
params = {{ split = "train_n20_s{0}" }}
[[node]]
id = "kd{0}"
type = "tune.distill"
inputs = {{ data = "subsets.data", models = "zoo.models", features = "features", scores = "logme{0}" }}
params = {{ only = ["student"], k = 2, suffix = ":kd:s{0}", predict = ["test"], mode = "full", epochs = 3, validation_split = "", train_split = "train_n20_s{0}", seed = {0} }}
[[node]]
id = "top{0}"
type = "tune.top_ranked"
inputs = {{ data = "subsets.data", models = "zoo.models", scores = "logme{0}" }}
params = {{ exclude = ["student"], suffix = ":s{0}", predict = ["test"], mode = "full", epochs = 3, validation_split = "", train_split = "train_n20_s{0}", seed = {0} }}
)",
                     s);
  p += R"(
[[node]]
id = "test"
type = "eval.classification"
inputs = { data = "subsets.data", predictions = ["kd0.predictions", "top0.predictions", "kd1.predictions", "top1.predictions"] }
[[node]]
id = "summary"
type = "eval.aggregate"
inputs = { tables = ["test.metrics"] }
params = { columns = ["accuracy"] }
)";
  auto r = run(p);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = run_json();
  // The aggregate's mean and std are those of the two runs eval.classification reported.
  const auto& test = j["nodes"]["test"]["summary"];
  for (const std::string group : {"student:kd", "top_ranked"}) {
    const double a = test[group + ":s0"]["accuracy"].get<double>(), b = test[group + ":s1"]["accuracy"].get<double>();
    const auto& g = j["nodes"]["summary"]["summary"][group];
    EXPECT_EQ(g["runs"], 2);
    EXPECT_NEAR(g["accuracy"]["mean"].get<double>(), (a + b) / 2, 1e-12);
    EXPECT_NEAR(g["accuracy"]["std"].get<double>(), std::abs(a - b) / std::sqrt(2.0), 1e-12);
  }
  // tune.top_ranked names the model it chose: LogME's best among the non-targets.
  const auto& scores = j["nodes"]["logme0"]["summary"]["scores"];
  std::string best;
  for (const char* m : {"near", "deep", "far"})
    if (best.empty() || scores[m].get<double>() > scores[best].get<double>()) best = m;
  EXPECT_EQ(j["nodes"]["top0"]["summary"]["top_ranked:s0"]["model"], best);
  // ... and says what it was tuned from by the hub's name, not by the name it publishes.
  EXPECT_EQ(j["nodes"]["top0"]["summary"]["top_ranked:s0"]["tuned_from"], best);
  // Each teacher's head was fitted on the training subset.
  EXPECT_EQ(j["nodes"]["kd0"]["summary"]["student:kd:s0"]["teachers"].size(), 2u);
}

TEST_F(TunerNodes, SubsetsAreNestedPerSeedAndDifferBetweenSeeds) {
  auto r = run(std::string(kZoo));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = [&](const std::string& split) {
    return caulk::io::NpyArray::open(dir_ / "out" / "subsets" / (split + "_rows.npy")).to_int64();
  };
  const auto small = rows("train_n20_s0"), large = rows("train_n40_s0"), other = rows("train_n20_s1");
  ASSERT_EQ(small.size(), 20u);
  ASSERT_EQ(large.size(), 40u);
  EXPECT_TRUE(std::includes(large.begin(), large.end(), small.begin(), small.end()));
  EXPECT_NE(small, other);
  EXPECT_TRUE(std::is_sorted(small.begin(), small.end()));
  EXPECT_TRUE(std::adjacent_find(large.begin(), large.end()) == large.end());
  std::string bad = kZoo;
  bad.replace(bad.find("sizes = [20, 40]"), 16, "sizes = [20, 61]");
  r = run(bad, "bad");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("a subset of 61 samples from split 'train', which has 60"));
}

TEST_F(TunerNodes, SubsetsOfImagesAndTokenIdsKeepTheirShapeAndElementType) {
  // Model inputs of any rank: 12 float32 images of 1 x 2 x 3 and 12 int64 token rows of 4; each
  // element is its sample's number times 100 plus its position, so a row read back names its source.
  const std::size_t n = 12;
  std::vector<float> images(n * 6);
  std::vector<std::int64_t> tokens(n * 4), labels(n);
  for (std::size_t r = 0; r < n; ++r) {
    labels[r] = static_cast<std::int64_t>(r % 3);
    for (std::size_t k = 0; k < 6; ++k) images[r * 6 + k] = static_cast<float>(r * 100 + k);
    for (std::size_t k = 0; k < 4; ++k) tokens[r * 4 + k] = static_cast<std::int64_t>(r * 100 + k);
  }
  caulk::io::write_npy(dir_ / "labels.npy", labels);
  caulk::io::write_npy(dir_ / "images.npy", caulk::io::DType::F32, {n, 1, 2, 3}, images.data());
  caulk::io::write_npy(dir_ / "tokens.npy", caulk::io::DType::I64, {n, 4}, tokens.data());
  std::string p = "[pipeline]\nname = \"subsets\"\n";
  for (const char* kind : {"images", "tokens"})
    p += fmt::format(R"([[node]]
id = "{0}"
type = "dataset.load"
params = {{ labels = {{ train = "{1}/labels.npy" }}, inputs = {{ train = "{1}/{0}.npy" }} }}
[[node]]
id = "{0}_subsets"
type = "data.subsample"
inputs = {{ data = "{0}" }}
params = {{ sizes = [5], seeds = 1, seed = 2 }}
)",
                     kind, dir_.path().string());
  const auto r = run(p);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* kind : {"images", "tokens"}) {
    const auto folder = dir_ / "out" / (std::string(kind) + "_subsets");
    const auto rows = caulk::io::NpyArray::open(folder / "train_n5_s0_rows.npy").to_int64();
    const auto subset = caulk::io::NpyArray::open(folder / "train_n5_s0_inputs.npy");
    const bool is_images = std::string(kind) == "images";
    EXPECT_EQ(subset.dtype(), is_images ? caulk::io::DType::F32 : caulk::io::DType::I64) << kind;
    EXPECT_EQ(subset.shape(), is_images ? std::vector<std::size_t>({5, 1, 2, 3}) : std::vector<std::size_t>({5, 4})) << kind;
    ASSERT_EQ(rows.size(), 5u);
    const std::size_t width = is_images ? 6 : 4;
    for (std::size_t i = 0; i < rows.size(); ++i)
      for (std::size_t k = 0; k < width; ++k) {
        const double expected = static_cast<double>(rows[i] * 100 + static_cast<std::int64_t>(k));
        const double got = is_images ? static_cast<const float*>(subset.data())[i * width + k]
                                     : static_cast<double>(static_cast<const std::int64_t*>(subset.data())[i * width + k]);
        EXPECT_EQ(got, expected) << kind << " row " << i << " element " << k;
      }
  }
}

TEST_F(TunerNodes, ErrorsNameWhatIsWrong) {
  // Scores without LogME weights.
  std::string p = std::string(kZoo) + fmt::format(R"(
[[node]]
id = "gbc"
type = "rank.gbc"
inputs = {{ features = "features", data = "subsets.data" }}
[[node]]
id = "bt"
type = "tune.btuning"
inputs = {{ data = "subsets.data", models = "zoo.models", features = "features", scores = "gbc" }}
params = {{ only = ["student"], {0} }}
)",
                                                  kTune);
  auto r = run(p);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("B-Tuning needs rank.logme's scores"));

  // A model name in `exclude` that the ranking does not have (a typo would exclude nothing).
  p = std::string(kZoo) + fmt::format(R"(
[[node]]
id = "bt"
type = "tune.btuning"
inputs = {{ data = "subsets.data", models = "zoo.models", features = "features", scores = "logme" }}
params = {{ only = ["student"], exclude = ["nera"], {0} }}
)",
                                      kTune);
  r = run(p, "exclude");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("p.toml:30:"));
  EXPECT_THAT(r.err, HasSubstr("`exclude` names model 'nera', which the ranking of 'logme' does not have"));
  EXPECT_THAT(r.err, HasSubstr("(did you mean 'near'?)"));

  // Teachers' features whose rows do not match the data's training split: features of another
  // zoo's data (50 training rows) against this one (60).
  p = std::string(kZoo) + fmt::format(R"(
[[node]]
id = "zoo2"
type = "zoo.pretrain"
params = {{ seed = 3, inputs = 8, latent = 2, source_samples = 400, train = 50, validation = 40, test = 80, epochs = 3, models = [
  {{ name = "near", relatedness = 0.9, hidden = [12] }} ] }}
[[node]]
id = "features2"
type = "adapter.mlp"
inputs = {{ data = "zoo2.data", models = "zoo2.models" }}
[[node]]
id = "logme2"
type = "rank.logme"
inputs = {{ features = "features2", data = "zoo2.data" }}
[[node]]
id = "bt"
type = "tune.btuning"
inputs = {{ data = "zoo.data", models = "zoo.models", features = "features2", scores = "logme2" }}
params = {{ only = ["student"], mode = "full", epochs = 2, validation_split = "" }}
)");
  r = run(p, "rows");
  EXPECT_NE(r.exit_code, 0);
  // (From the tuner, or from the ranker, whose unit names the model before the file.)
  EXPECT_THAT(r.err, HasSubstr("model 'near'"));
  EXPECT_THAT(r.err, HasSubstr("50 rows of features for split 'train' but the labels"));
  EXPECT_THAT(r.err, HasSubstr("near.train.features.npy"));

  // A linear probe: the term would change nothing.
  p = std::string(kZoo) + R"(
[[node]]
id = "bt"
type = "tune.btuning"
inputs = { data = "subsets.data", models = "zoo.models", features = "features", scores = "logme" }
params = { only = ["student"], mode = "linear_probe" }
)";
  r = run(p, "probe");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("with a linear probe the features do not train"));

  // Every candidate excluded.
  p = std::string(kZoo) + fmt::format(R"(
[[node]]
id = "bt"
type = "tune.btuning"
inputs = {{ data = "subsets.data", models = "zoo.models", features = "features", scores = "logme" }}
params = {{ only = ["student"], exclude = ["near", "deep", "far"], {0} }}
)",
                                      kTune);
  r = run(p, "excluded");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("no teacher candidates"));
}

}  // namespace
