// The averagers' nodes through the CLI: the demos show what the issue promises, predictions
// round-trip through files, a saved weight function reproduces the local average, and bad input
// gets a clear error naming the model or file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "caulk/io/npy.hpp"
#include "cli.hpp"
#include "averagers/algorithms/simulation.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using Json = nlohmann::json;

namespace {

Json run_pipeline(const std::filesystem::path& pipeline, const std::filesystem::path& out, CliResult* result = nullptr) {
  auto r = run_caulk({"run", pipeline.string(), "--out", out.string(), "--jobs", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (result) *result = r;
  return Json::parse(read_file(out / "run.json"));
}

double risk(const Json& report, const std::string& model) { return report["summary"]["risks"][model]["risk"].get<double>(); }

TEST(AveragingDemos, RegionalExpertsLocalAverageWinsAndPicksTheRightModelPerRegion) {
  TempDir dir;
  const Json j = run_pipeline(source_dir() / "pipelines" / "local_averaging_regression.toml", dir / "out");
  const Json& report = j["nodes"]["report"];
  const double local = risk(report, "local");
  for (const char* single : {"expert_a", "expert_b", "expert_c"}) EXPECT_LT(local, 0.2 * risk(report, single)) << single;
  for (const char* baseline : {"equal", "best", "global", "mallows", "jackknife"})
    EXPECT_LT(local, 0.2 * risk(report, baseline)) << baseline;
  // The weights the report wrote for plotting: in each region the region's expert weighs most.
  std::istringstream csv(read_file(dir / "out" / "report" / "weights.test.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "z0,z1,expert_a,expert_b,expert_c");
  double weight_sum[3][3] = {}, rows[3] = {};
  while (std::getline(csv, line)) {
    std::vector<double> v;
    std::istringstream fields(line);
    for (std::string f; std::getline(fields, f, ',');) v.push_back(std::stod(f));
    ASSERT_EQ(v.size(), 5u);
    const int region = caulk::avg::expert_region(v[0], v[1]);
    rows[region] += 1;
    for (int k = 0; k < 3; ++k) weight_sum[region][k] += v[2 + k];
  }
  for (int region = 0; region < 3; ++region) {
    ASSERT_GT(rows[region], 100);
    EXPECT_GT(weight_sum[region][region] / rows[region], 0.85) << "region " << region;
  }
}

TEST(AveragingDemos, UniformlyBestModelLocalAverageLosesAtMostAFewPercentToGlobal) {
  TempDir dir;
  const Json j = run_pipeline(source_dir() / "pipelines" / "local_averaging_uniform.toml", dir / "out");
  const Json& report = j["nodes"]["report"];
  EXPECT_LT(risk(report, "local"), 1.03 * risk(report, "global"));
  EXPECT_EQ(report["summary"]["trust"].size(), 3u);
  EXPECT_GT(report["summary"]["trust"]["expert_a"]["mean_weight"].get<double>(), 0.8);
}

TEST(AveragingDemos, ClassificationLocalAverageBeatsTheBaselinesOnLogLoss) {
  TempDir dir;
  CliResult r;
  const Json j = run_pipeline(source_dir() / "pipelines" / "local_averaging_classification.toml", dir / "out", &r);
  const Json& risks = j["nodes"]["report"]["summary"]["risks"];
  for (const char* other : {"left_expert", "right_expert", "partly_related", "equal", "best", "global"}) {
    EXPECT_LT(risks["local"]["log_loss"].get<double>(), risks[other]["log_loss"].get<double>()) << other;
    EXPECT_GE(risks["local"]["accuracy"].get<double>(), risks[other]["accuracy"].get<double>()) << other;
  }
  EXPECT_THAT(r.out, HasSubstr("accuracy"));
}

TEST(AveragingNodes, SavedPredictionsAndWeightFunctionReproduceTheLocalAverage) {
  TempDir dir;
  const auto first = dir.write("fit.toml", R"(
[pipeline]
name = "fit"
[[node]]
id = "sim"
type = "simulate.local_experts"
params = { seed = 2, train = 50, validation = 300, test = 200 }
[[node]]
id = "local"
type = "average.local"
inputs = { predictions = ["sim.predictions"], data = "sim.data" }
params = { basis = "spline", knots = 2, penalty = 1e-3 }
[[node]]
id = "experts"
type = "predictions.save"
inputs = { predictions = ["sim.predictions"] }
params = { parameters = { expert_a = 6, expert_b = 6, expert_c = 6 } }
[[node]]
id = "combined"
type = "predictions.save"
inputs = { predictions = ["local.predictions"] }
)");
  run_pipeline(first, dir / "one");
  EXPECT_THAT(read_file(dir / "one" / "experts" / "predictions.toml"), HasSubstr("parameters = 6"));
  const std::string one = (dir / "one").string();
  const auto second = dir.write("apply.toml", R"(
[pipeline]
name = "apply"
[[node]]
id = "experts"
type = "predictions.load"
params = { manifest = ")" + one + R"(/experts/predictions.toml" }
[[node]]
id = "data"
type = "dataset.load"
params = { kind = "regression", labels = { test = ")" +
                                                  one + R"(/sim/test_y.npy" }, covariates = { test = ")" + one + R"(/sim/test_z.npy" } }
[[node]]
id = "apply"
type = "average.apply"
inputs = { predictions = ["experts"], data = "data" }
params = { function = ")" + one + R"(/local/weight_function.json" }
[[node]]
id = "mallows"
type = "average.mallows"
inputs = { predictions = ["experts"], data = "data" }
params = { fit_split = "test", manifest = ")" + one +
                                                  R"(/experts/predictions.toml" }
[[node]]
id = "combined"
type = "predictions.save"
inputs = { predictions = ["apply.predictions"] }
)");
  const Json j = run_pipeline(second, dir / "two");
  EXPECT_EQ(j["nodes"]["apply"]["summary"]["splits"], Json::array({"test"}));
  const auto a = caulk::io::NpyArray::open(dir / "one" / "combined" / "local.test.npy").matrix().to_double();
  const auto b = caulk::io::NpyArray::open(dir / "two" / "combined" / "apply.test.npy").matrix().to_double();
  ASSERT_EQ(a.rows(), 200);
  EXPECT_LE((a - b).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(AveragingNodes, BadInputGetsErrorsNamingTheModelOrFile) {
  TempDir dir;
  caulk::Matrix good = caulk::Matrix::Constant(4, 2, 0.5), wide = caulk::Matrix::Constant(4, 3, 0.25), nan = good;
  nan(2, 1) = std::numeric_limits<double>::quiet_NaN();
  caulk::io::write_npy(dir / "good.npy", good);
  caulk::io::write_npy(dir / "wide.npy", wide);
  caulk::io::write_npy(dir / "nan.npy", nan);
  auto load = [&](const std::string& manifest) {
    dir.write("m.toml", manifest);
    dir.write("p.toml",
              "[pipeline]\nname = \"p\"\n[[node]]\nid = \"load\"\ntype = \"predictions.load\"\nparams = { manifest = \"m.toml\" }\n");
    return run_caulk({"run", (dir / "p.toml").string(), "--out", (dir / "out").string()});
  };
  auto r = load(
      "[hub]\nkind = \"classification\"\n[[model]]\nname = \"a\"\npredictions = { val = \"good.npy\" }\n[[model]]\nname = "
      "\"b\"\npredictions = { val = \"wide.npy\" }\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("predictions of model 'b' on split 'val'"));
  EXPECT_THAT(r.err, HasSubstr("has 3 columns but model 'a' has 2"));
  r = load("[hub]\nkind = \"regression\"\n[[model]]\nname = \"a\"\npredictions = { val = \"nan.npy\" }\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("nan.npy"));
  EXPECT_THAT(r.err, HasSubstr("model 'a'"));
  r = load("[hub]\n[[model]]\nname = \"a\"\npredictions = { val = \"good.npy\" }\n");
  EXPECT_THAT(r.err, HasSubstr("says no kind"));
  r = load("[hub]\nkind = \"classification\"\n[[model]]\nname = \"a\"\npredictions = { val = \"wide.npy\" }\n");
  EXPECT_THAT(r.err, HasSubstr("the probabilities of row 0 sum to 0.75"));

  // Mallows without a parameter count names the model; labels of the wrong length name the model.
  dir.write("mallows.toml", R"(
[pipeline]
name = "mallows"
[[node]]
id = "sim"
type = "simulate.local_experts"
params = { train = 20, validation = 20, test = 20 }
[[node]]
id = "mallows"
type = "average.mallows"
inputs = { predictions = ["sim.predictions"], data = "sim.data" }
params = { parameters = { expert_a = 3, expert_b = 3 } }
)");
  r = run_caulk({"run", (dir / "mallows.toml").string(), "--out", (dir / "out2").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("needs the number of parameters of model 'expert_c'"));
  caulk::io::write_npy(dir / "y.npy", std::vector<double>{1, 2, 3});
  dir.write("short.toml", R"(
[pipeline]
name = "short"
[[node]]
id = "sim"
type = "simulate.local_experts"
params = { train = 20, validation = 20, test = 20 }
[[node]]
id = "data"
type = "dataset.load"
params = { kind = "regression", labels = { val = "y.npy" } }
[[node]]
id = "global"
type = "average.global"
inputs = { predictions = ["sim.predictions"], data = "data" }
)");
  r = run_caulk({"run", (dir / "short.toml").string(), "--out", (dir / "out3").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("model 'expert_a' has 20 rows of predictions on split 'val' but the labels there have 3 rows"));
}

}  // namespace
