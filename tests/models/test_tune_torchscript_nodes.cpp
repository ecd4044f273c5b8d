// The tuning nodes on TorchScript models through `caulk run` (docs/models.md, "Tuning TorchScript
// models"): tune.peft in every mode, tune.btuning, tune.distill, tune.top_ranked and
// eval.sample_complexity on the small CNN that make_torch_models.py writes (fixture
// models.make_torch_models), checked against PyTorch run by check_tune_torchscript.py with
// Debian's /usr/bin/python3: one optimiser step equals torch.optim's from autograd gradients, and
// the tuned model loaded back in PyTorch (the saved .pt, and the module with the tuned safetensors)
// predicts what caulk's eval.classification reports. Plus --jobs 1 = --jobs 2, and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "run_json.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

fs::path models_dir() { return CAULK_TORCH_MODELS_DIR; }
fs::path script() { return fs::path(CAULK_MODELS_TEST_SOURCE) / "check_tune_torchscript.py"; }

class TuneTorchScript : public ::testing::Test {
 protected:
  void SetUp() override {
    if (fs::exists(models_dir() / "SKIP")) {
      std::ifstream in(models_dir() / "SKIP");
      GTEST_SKIP() << std::string((std::istreambuf_iterator<char>(in)), {});
    }
    if (!fs::exists(models_dir() / "cnn.pt")) GTEST_SKIP() << "no models in " << models_dir() << ": run models.make_torch_models first";
    const auto r = python({"data", models_dir().string(), data().string()});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  }

  static CliResult python(const std::vector<std::string>& args) {
    std::string cmd = "/usr/bin/python3 " + shell_quote(script().string());
    for (const auto& a : args) cmd.append(" ").append(shell_quote(a));
    return run_captured(cmd);
  }
  fs::path data() const { return dir_ / "data"; }

  // dataset.load of the 3-class task on 1 x 8 x 8 images (train, val, test), then `nodes`.
  std::string pipeline(const std::string& nodes) const {
    return fmt::format(R"([pipeline]
name = "tune-torchscript"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = {{ train = "{0}/y_train.npy", val = "{0}/y_val.npy", test = "{0}/y_test.npy" }}, inputs = {{ train = "{0}/x_train.npy", val = "{0}/x_val.npy", test = "{0}/x_test.npy" }} }}
{1})",
                       data().string(), nodes);
  }
  // tune.peft of the hub's `cnn` with `params`, judged on the test split.
  std::string tune(const std::string& params, const std::string& only = "[\"cnn\"]") const {
    return pipeline(fmt::format(R"([[node]]
id = "tune"
type = "tune.peft"
inputs = {{ data = "task" }}
params = {{ manifest = "{0}/hub.toml", only = {1}, {2} }}
[[node]]
id = "judge"
type = "eval.classification"
inputs = {{ predictions = "tune.predictions", data = "task" }}
)",
                                data().string(), only, params));
  }

  CliResult run(const std::string& text, const std::vector<std::string>& extra = {}, const std::string& out = "out") {
    const fs::path p = dir_ / (out + ".toml");
    std::ofstream(p) << text;
    std::vector<std::string> args{"run", p.string(), "--out", (dir_ / out).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_caulk(args);
  }
  nlohmann::json run_json(const std::string& out = "out") const { return nlohmann::json::parse(read_file(dir_ / out / "run.json")); }
  static const nlohmann::json& summary(const nlohmann::json& j, const std::string& node) { return j.at("nodes").at(node).at("summary"); }

  // PyTorch loads what the node saved for `name` and predicts what eval.classification reported.
  void expect_pytorch_predicts(const std::string& name, const std::string& node = "tune", const std::string& out = "out") {
    const auto j = run_json(out);
    const auto& m = summary(j, "judge").at(name);
    const auto r = python({"predict", models_dir().string(), data().string(), (dir_ / out / node).string(), name, "3",
                           nlohmann::json{{"log_loss", m.at("log_loss")}, {"accuracy", m.at("accuracy")}}.dump()});
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  }

  TempDir dir_;
};

TEST_F(TuneTorchScript, LinearProbeIsWhatPyTorchPredictsWithTheSavedModel) {
  auto r = run(tune("mode = \"linear_probe\", optimizer = \"lbfgs\""));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = run_json();
  const auto& s = summary(j, "tune").at("cnn");
  EXPECT_EQ(s.at("family"), "torchscript");
  EXPECT_EQ(s.at("trainable_parameters"), 3 * 32 + 3);  // the new head only
  expect_pytorch_predicts("cnn");
}

TEST_F(TuneTorchScript, PartialByGlobsTakesTorchSgdStep) {
  // One minibatch of every training sample, one epoch: one SGD step (momentum, weight decay on
  // weight matrices), against torch.optim.SGD from autograd gradients.
  auto r =
      run(tune("mode = \"partial\", trainable = [\"proj.*\"], optimizer = \"sgd\", learning_rate = 0.1, momentum = 0.9, "
               "weight_decay = 0.01, epochs = 1, batch_size = 24, validation_split = \"\""));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary(run_json(), "tune").at("cnn").at("trainable_parameters"), 32 * 64 + 32 + 3 * 32 + 3);
  const auto p = python({"step", models_dir().string(), data().string(), (dir_ / "out/tune/cnn.safetensors").string(), "sgd", "0.1", "0.9",
                         "0.01", "0", R"(["proj.*"])"});
  EXPECT_EQ(p.exit_code, 0) << p.err << p.out;
  expect_pytorch_predicts("cnn");
}

TEST_F(TuneTorchScript, FullTakesTorchAdamWStep) {
  auto r =
      run(tune("mode = \"full\", optimizer = \"adam\", learning_rate = 0.01, weight_decay = 0.05, epochs = 1, batch_size = 24, "
               "validation_split = \"\""));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto p = python({"step", models_dir().string(), data().string(), (dir_ / "out/tune/cnn.safetensors").string(), "adam", "0.01", "0",
                         "0.05", "0", R"(["*"])"});
  EXPECT_EQ(p.exit_code, 0) << p.err << p.out;
  expect_pytorch_predicts("cnn");
}

TEST_F(TuneTorchScript, RegressionTakesTorchSgdStepOnTheSquaredError) {
  auto r = run(fmt::format(R"([pipeline]
name = "tune-torchscript-regression"
[[node]]
id = "task"
type = "dataset.load"
params = {{ kind = "regression", labels = {{ train = "{0}/v_train.npy", test = "{0}/v_test.npy" }}, inputs = {{ train = "{0}/x_train.npy", test = "{0}/x_test.npy" }} }}
[[node]]
id = "tune"
type = "tune.peft"
inputs = {{ data = "task" }}
params = {{ manifest = "{0}/hub.toml", only = ["cnn"], mode = "partial", trainable = ["conv2.*", "proj.bias"], optimizer = "sgd", learning_rate = 0.1, weight_decay = 0.01, epochs = 1, batch_size = 24 }}
)",
                           data().string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto p = python({"step", models_dir().string(), data().string(), (dir_ / "out/tune/cnn.safetensors").string(), "sgd", "0.1", "0.9",
                         "0.01", "0", R"(["conv2.*", "proj.bias"])", "values"});
  EXPECT_EQ(p.exit_code, 0) << p.err << p.out;
}

TEST_F(TuneTorchScript, LoraIsFoldedIntoWhatPyTorchLoads) {
  auto r =
      run(tune("mode = \"lora\", lora_weights = [\"proj.weight\", \"conv2.weight\"], rank = 2, lora_alpha = 4, "
               "learning_rate = 0.01, epochs = 5, batch_size = 8"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A (rank x in) and B (out x rank) per weight: proj 32 x 64, conv2 16 x (8 * 3 * 3); the head.
  EXPECT_EQ(summary(run_json(), "tune").at("cnn").at("trainable_parameters"), (2 * 64 + 32 * 2) + (2 * 72 + 16 * 2) + 3 * 32 + 3);
  expect_pytorch_predicts("cnn");
}

TEST_F(TuneTorchScript, TheRunIsTheSameWithOneOrTwoJobs) {
  const std::string p = tune("mode = \"full\", epochs = 3, batch_size = 8, train_samples = 20", "[\"cnn\", \"cnn_traced\"]") + R"([[node]]
id = "again"
type = "adapter.models"
inputs = { data = "task", models = "tune.checkpoints" }
)";
  auto a = run(p, {"--jobs", "1"}, "one");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = run(p, {"--jobs", "2"}, "two");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(comparable_run_json(run_json("one")).dump(1), comparable_run_json(run_json("two")).dump(1));
  // The tuned models came back through their module and tuned weights, with the new 3-class head.
  EXPECT_EQ(summary(run_json("one"), "again").at("cnn").at("source_outputs"), 3);
  EXPECT_EQ(summary(run_json("one"), "tune").at("cnn").at("train_samples"), 20);  // the seeded subsample
  expect_pytorch_predicts("cnn", "tune", "one");
}

TEST_F(TuneTorchScript, ADeltaOverTheModuleIsWhatPyTorchLoadsAndTunesAgain) {
  // save = "delta": only the tuned tensors (LoRA folded into proj.weight, the head); the module
  // gives the rest. The Checkpoint entry (module + delta) tunes again through the `models` input.
  auto r =
      run(tune("mode = \"lora\", lora_weights = [\"proj.weight\"], rank = 2, epochs = 3, batch_size = 8, save = \"delta\"") + R"([[node]]
id = "again"
type = "tune.peft"
inputs = { data = "task", models = "tune.checkpoints" }
params = { mode = "partial", trainable = ["conv2.*"], epochs = 2, batch_size = 8, suffix = ":again" }
[[node]]
id = "judge_again"
type = "eval.classification"
inputs = { predictions = "again.predictions", data = "task" }
)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "out/tune/cnn.delta.safetensors"));
  EXPECT_FALSE(fs::exists(dir_ / "out/tune/cnn.safetensors"));
  expect_pytorch_predicts("cnn");
  const auto j = run_json();
  EXPECT_EQ(summary(j, "again").at("cnn:again").at("family"), "torchscript");
  EXPECT_TRUE(summary(j, "judge_again").contains("cnn:again"));
}

TEST_F(TuneTorchScript, BadTuningRequestsSayWhatToDo) {
  struct Case {
    std::string params, message;
  };
  for (const Case& c : {Case{"mode = \"partial\", trainable = [\"layer4.*\"]", "`trainable` glob 'layer4.*' matches no parameter"},
                        Case{"mode = \"lora\", lora_weights = [\"bn1.*\"]", "which is not a weight matrix"},
                        Case{"mode = \"lora\", lora_weights = [\"nothing.weight\"]", "`lora_weights` glob 'nothing.weight' matches no"},
                        Case{"mode = \"adapter\"", "mode = \"adapter\" inserts a bottleneck layer into caulk's MLP"},
                        Case{"mode = \"partial\"", "needs `trainable`"}}) {
    SCOPED_TRACE(c.params);
    auto r = run(tune(c.params));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("node 'tune' (tune.peft) failed"));
    EXPECT_THAT(r.err, HasSubstr("model 'cnn'"));
    EXPECT_THAT(r.err, HasSubstr(c.message));
  }
}

// The hub embedded and ranked by LogME, as the tuners read it.
std::string ranked(const std::string& data) {
  return fmt::format(R"([[node]]
id = "embed"
type = "adapter.models"
inputs = {{ data = "task" }}
params = {{ manifest = "{0}/hub.toml" }}
[[node]]
id = "logme"
type = "rank.logme"
inputs = {{ features = "embed.features", data = "task" }}
)",
                     data);
}

TEST_F(TuneTorchScript, BTuningAndDistillationRunAndReduceToPlainTuningWithoutTheirTerm) {
  const std::string common = "mode = \"full\", epochs = 2, batch_size = 8, learning_rate = 0.01";
  const std::string nodes = ranked(data().string()) + fmt::format(R"([[node]]
id = "btune"
type = "tune.btuning"
inputs = {{ data = "task", features = "embed.features", scores = "logme" }}
params = {{ manifest = "{0}/hub.toml", only = ["cnn"], k = 1, {1} }}
[[node]]
id = "btune0"
type = "tune.btuning"
inputs = {{ data = "task", features = "embed.features", scores = "logme" }}
params = {{ manifest = "{0}/hub.toml", only = ["cnn"], k = 1, lambda = 0, {1} }}
[[node]]
id = "distill"
type = "tune.distill"
inputs = {{ data = "task", features = "embed.features", scores = "logme" }}
params = {{ manifest = "{0}/hub.toml", only = ["cnn"], k = 1, {1} }}
[[node]]
id = "distill0"
type = "tune.distill"
inputs = {{ data = "task", features = "embed.features", scores = "logme" }}
params = {{ manifest = "{0}/hub.toml", only = ["cnn"], k = 1, alpha = 0, {1} }}
[[node]]
id = "plain"
type = "tune.peft"
inputs = {{ data = "task" }}
params = {{ manifest = "{0}/hub.toml", only = ["cnn"], {1} }}
)",
                                                                  data().string(), common);
  auto r = run(pipeline(nodes), {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = run_json();
  const auto& bt = summary(j, "btune").at("cnn");
  EXPECT_EQ(bt.at("teachers").at(0).at("model"), "cnn_traced");  // a target never teaches itself
  EXPECT_TRUE(bt.at("distance_to_teachers").is_number());
  EXPECT_EQ(summary(j, "distill").at("cnn").at("teachers").at(0).at("model"), "cnn_traced");
  // With lambda = 0 (alpha = 0) the term adds nothing: exactly the plain run's losses.
  const double plain = summary(j, "plain").at("cnn").at("train_loss");
  EXPECT_EQ(summary(j, "btune0").at("cnn").at("train_loss").get<double>(), plain);
  EXPECT_EQ(summary(j, "distill0").at("cnn").at("train_loss").get<double>(), plain);
  // ... and with the term, training differs.
  EXPECT_NE(bt.at("train_loss").get<double>(), plain);
  EXPECT_NE(summary(j, "distill").at("cnn").at("train_loss").get<double>(), plain);
}

TEST_F(TuneTorchScript, TopRankedTunesTheBestModelByLogME) {
  const std::string nodes = ranked(data().string()) + fmt::format(R"([[node]]
id = "tune"
type = "tune.top_ranked"
inputs = {{ data = "task", scores = "logme" }}
params = {{ manifest = "{0}/hub.toml", mode = "linear_probe", optimizer = "lbfgs" }}
[[node]]
id = "judge"
type = "eval.classification"
inputs = {{ predictions = "tune.predictions", data = "task" }}
)",
                                                                  data().string());
  auto r = run(pipeline(nodes));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = run_json();
  // The choice is the argmax of LogME's scores in run.json (both models are the same network, one
  // scripted and one traced, so either may win by rounding).
  std::string best;
  double best_score = -INFINITY;
  for (const auto& [model, v] : summary(j, "logme").at("scores").items())
    if (v.get<double>() > best_score) best_score = v.get<double>(), best = model;  // the first of equals, as top_k
  EXPECT_EQ(summary(j, "tune").at("top_ranked").at("model"), best);
  expect_pytorch_predicts("top_ranked");
}

TEST_F(TuneTorchScript, SampleComplexityAtTheWholeSplitIsTheProbesLogLoss) {
  // At n = the whole training split the subsample is the split, and the L-BFGS probe reaches the
  // unique optimum of its convex objective whatever the head's start: the risk (log loss) is
  // tune.peft's probe's, as eval.classification measures it (to L-BFGS's tolerance; a weight decay
  // of 0.01 makes the optimum well defined).
  const std::string nodes = fmt::format(R"([[node]]
id = "curve"
type = "eval.sample_complexity"
inputs = {{ data = "task" }}
params = {{ manifest = "{0}/hub.toml", only = ["cnn"], sizes = [6, 12, 24], seeds = 1, risk = "log_loss", optimizer = "lbfgs", weight_decay = 0.01 }}
[[node]]
id = "tune"
type = "tune.peft"
inputs = {{ data = "task" }}
params = {{ manifest = "{0}/hub.toml", only = ["cnn"], optimizer = "lbfgs", weight_decay = 0.01, validation_split = "" }}
[[node]]
id = "judge"
type = "eval.classification"
inputs = {{ predictions = "tune.predictions", data = "task" }}
)",
                                        data().string());
  auto r = run(pipeline(nodes), {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = run_json();
  const double probe = summary(j, "judge").at("cnn").at("log_loss");
  const std::string points = read_file(dir_ / "out/curve/points.csv");
  double at_24 = NAN;
  std::istringstream lines(points);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("cnn,24,", 0) == 0) at_24 = std::stod(line.substr(line.rfind(',') + 1));
  ASSERT_FALSE(std::isnan(at_24)) << points;
  EXPECT_NEAR(at_24, probe, 1e-4 * probe);
  EXPECT_TRUE(summary(j, "curve").at("cnn").at("a").is_number());
}

}  // namespace
