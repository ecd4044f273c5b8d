// adapter.models through `caulk run`: the digits zoo of TorchScript CNNs (scripts/make_digits_zoo.py,
// run by the fixture models.make_digits_zoo with Debian's /usr/bin/python3) ranked on a target
// task, every feature and probability against PyTorch's own outputs of the same files, the same
// run.json for --jobs 1 and 2, token ids as int64, MLP hubs without libtorch, and the errors a
// user meets (docs/models.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "caulk/io/npy.hpp"
#include "cli.hpp"
#include "ranking_nodes.hpp"
#include "distributed/mpi_support.hpp"
#include "run_json.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

fs::path zoo() { return CAULK_DIGITS_ZOO; }

const char* kCnnModels[] = {"digits", "parity", "loops", "small", "untrained", "untrained_as_parity"};

// `actual` within 1e-5 relative of PyTorch's: max |a - e| / max |e| (as the TorchScript family's
// own tests measure it, tests/models/model_test_support.hpp). Shapes must agree.
void expect_like_pytorch(const fs::path& actual, const fs::path& expected) {
  const auto a = caulk::io::NpyArray::open(actual).matrix().to_double();
  const auto e = caulk::io::NpyArray::open(expected).matrix().to_double();
  ASSERT_EQ(a.rows(), e.rows()) << actual;
  ASSERT_EQ(a.cols(), e.cols()) << actual;
  ASSERT_GT(e.cwiseAbs().maxCoeff(), 0) << expected;
  EXPECT_LT((a - e).cwiseAbs().maxCoeff() / e.cwiseAbs().maxCoeff(), 1e-5) << actual << " vs " << expected;
}

class ModelsPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    if (fs::exists(zoo() / "SKIP")) {
      std::ifstream in(zoo() / "SKIP");
      GTEST_SKIP() << std::string((std::istreambuf_iterator<char>(in)), {});
    }
    if (!fs::exists(zoo() / "hub.toml")) GTEST_SKIP() << "no zoo in " << zoo() << ": run the fixture test models.make_digits_zoo first";
  }

  std::string file(const std::string& name) const { return (zoo() / name).string(); }

  // dataset.load of the target task with `inputs` (images or tokens), then adapter.models.
  std::string embed(const std::string& hub, const std::string& inputs = "inputs", const std::string& extra = "",
                    const std::string& params = "") const {
    return fmt::format(R"([pipeline]
name = "digits-zoo"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = {{ train = "{0}/train_labels.npy", test = "{0}/test_labels.npy" }}, inputs = {{ train = "{0}/train_{1}.npy", test = "{0}/test_{1}.npy" }} }}
[[node]]
id = "embed"
type = "adapter.models"
inputs = {{ data = "task" }}
params = {{ manifest = "{2}", batch_size = 32{4} }}
{3})",
                       zoo().string(), inputs, hub, extra, params);
  }

  CliResult run(const std::string& pipeline, const std::vector<std::string>& extra = {}, const std::string& out = "out",
                const std::string& env = "") {
    dir_.write("p.toml", pipeline);
    std::vector<std::string> args{"run", (dir_ / "p.toml").string(), "--out", (dir_ / out).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_caulk(args, env);
  }
  fs::path out(const std::string& rel, const std::string& folder = "out") const { return dir_ / folder / rel; }
  nlohmann::json run_json(const std::string& folder = "out") { return nlohmann::json::parse(read_file(dir_ / folder / "run.json")); }

  TempDir dir_;
};

const char* const kRankers = caulk::testing::kLogmeAndLeepOfEmbed;

TEST_F(ModelsPipeline, FeaturesAndProbabilitiesAreThoseOfPyTorch) {
  auto r = run(embed(file("hub.toml"), "inputs", kRankers), {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* model : kCnnModels)
    for (const char* split : {"train", "test"}) {
      SCOPED_TRACE(fmt::format("{} {}", model, split));
      expect_like_pytorch(out(fmt::format("embed/{}.{}.features.npy", model, split)),
                          zoo() / "ref" / fmt::format("{}.{}.features.npy", model, split));
      expect_like_pytorch(out(fmt::format("embed/{}.{}.source_probs.npy", model, split)),
                          zoo() / "ref" / fmt::format("{}.{}.probs.npy", model, split));
    }
  const auto j = run_json();
  const std::string text = j.dump();
  // Both rankers scored every model; the summary says what each model is.
  for (const char* model : kCnnModels) EXPECT_THAT(text, HasSubstr(fmt::format("\"{}\"", model)));
  EXPECT_THAT(text, HasSubstr("\"family\":\"torchscript\""));
  EXPECT_THAT(text, HasSubstr("\"feature_dim\":32"));
}

TEST_F(ModelsPipeline, TokenIdsRunAsInt64) {
  auto r = run(embed(file("tokens_hub.toml"), "tokens"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* split : {"train", "test"}) {
    expect_like_pytorch(out(fmt::format("embed/tokens.{}.features.npy", split)),
                        zoo() / "ref" / fmt::format("tokens.{}.features.npy", split));
    expect_like_pytorch(out(fmt::format("embed/tokens.{}.source_probs.npy", split)),
                        zoo() / "ref" / fmt::format("tokens.{}.probs.npy", split));
  }
}

// An MLP hub (zoo.pretrain) through adapter.models: the same features and probabilities as
// adapter.mlp, and libtorch never loaded (the dynamic loader lists every library it opens).
TEST_F(ModelsPipeline, MlpHubsRunWithoutLoadingLibtorch) {
  const std::string p = R"([pipeline]
name = "mlp-zoo"
[[node]]
id = "zoo"
type = "zoo.pretrain"
params = { seed = 3, inputs = 8, latent = 2, source_samples = 300, train = 40, validation = 20, test = 50, epochs = 2, models = [
  { name = "near", relatedness = 0.9, hidden = [12] }, { name = "far", relatedness = 0.0, hidden = [10, 6] } ] }
[[node]]
id = "any"
type = "adapter.models"
inputs = { data = "zoo.data", models = "zoo.models" }
[[node]]
id = "mlp"
type = "adapter.mlp"
inputs = { data = "zoo.data", models = "zoo.models" }
)";
  auto r = run(p, {}, "out", "LD_DEBUG=files");
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
  EXPECT_THAT(r.err, HasSubstr("models.so"));  // the loader's list is there, with the plugins
  EXPECT_THAT(r.err, Not(HasSubstr("libtorch")));
  EXPECT_THAT(r.err, Not(HasSubstr("caulk_models_torch")));
  for (const char* model : {"near", "far"})
    for (const char* what : {"features", "source_probs"}) {
      const auto a = caulk::io::NpyArray::open(out(fmt::format("any/{}.test.{}.npy", model, what))).matrix().to_double();
      const auto b = caulk::io::NpyArray::open(out(fmt::format("mlp/{}.test.{}.npy", model, what))).matrix().to_double();
      ASSERT_EQ(a.rows(), b.rows());
      ASSERT_EQ(a.cols(), b.cols());
      EXPECT_LE((a - b).cwiseAbs().maxCoeff(), 1e-5 * (1 + b.cwiseAbs().maxCoeff())) << model << " " << what;
    }

  // The same check sees libtorch when a TorchScript model runs.
  auto t = run(embed(file("tokens_hub.toml"), "tokens"), {}, "torch", "LD_DEBUG=files");
  ASSERT_EQ(t.exit_code, 0);
  EXPECT_THAT(t.err, HasSubstr("libtorch"));
}

TEST_F(ModelsPipeline, OnlyAndSplitsChooseWhatRuns) {
  auto r = run(embed(file("hub.toml"), "inputs", "", R"(, only = ["parity", "digits"], splits = ["test"])"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto summary = run_json()["nodes"]["embed"]["summary"];
  EXPECT_EQ(summary.size(), 2u);
  EXPECT_TRUE(summary.contains("parity") && summary.contains("digits"));
  EXPECT_TRUE(fs::exists(out("embed/parity.test.features.npy")));
  EXPECT_FALSE(fs::exists(out("embed/parity.train.features.npy")));
  EXPECT_FALSE(fs::exists(out("embed/loops.test.features.npy")));

  // A name the hub lacks: a problem before anything runs, and the node's own error without the checks.
  r = run(embed(file("hub.toml"), "inputs", "", R"(, only = ["resnet"])"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("parameter 'only': no model 'resnet' in the hub"));
  r = run(embed(file("hub.toml"), "inputs", "", R"(, only = ["resnet"])"), {"--no-data-check"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("`only` names model 'resnet', which is not in the hub"));
}

// source_probs = false: the features alone (a TorchScript model runs its feature method, not
// forward too), the same bytes as with the probabilities, and no probabilities file.
TEST_F(ModelsPipeline, FeaturesOnlyRunWithoutTheSourceHead) {
  auto r = run(embed(file("hub.toml"), "inputs", "", R"(, only = ["digits"], splits = ["test"])"), {}, "both");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run(embed(file("hub.toml"), "inputs", "", R"(, only = ["digits"], splits = ["test"], source_probs = false)"), {}, "features");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(out("embed/digits.test.features.npy", "features")), read_file(out("embed/digits.test.features.npy", "both")));
  EXPECT_TRUE(fs::exists(out("embed/digits.test.source_probs.npy", "both")));
  EXPECT_FALSE(fs::exists(out("embed/digits.test.source_probs.npy", "features")));
}

TEST_F(ModelsPipeline, AFileThatIsNotTorchScriptIsAClearError) {
  auto r = run(embed(file("bad/not_torchscript.toml")));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("not_torchscript.pt"));
  EXPECT_THAT(r.err, HasSubstr("model 'broken'"));
  EXPECT_THAT(r.err, HasSubstr("not a TorchScript file"));
  EXPECT_THAT(r.err, HasSubstr("torch.jit.save"));
}

TEST_F(ModelsPipeline, AMissingFeatureMethodIsAClearError) {
  auto r = run(embed(file("bad/no_such_method.toml")));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("parity.pt"));
  EXPECT_THAT(r.err, HasSubstr("model 'parity'"));
  EXPECT_THAT(r.err, HasSubstr("feature_method 'features' is not a method"));
  EXPECT_THAT(r.err, HasSubstr("embed"));  // the methods it has
}

TEST_F(ModelsPipeline, InputsOfTheWrongShapeAreAClearError) {
  std::string p = embed(file("hub.toml"));
  const std::string test_inputs = zoo().string() + "/test_inputs.npy";
  p.replace(p.find(test_inputs), test_inputs.size(), file("bad/test_inputs_flat.npy"));
  auto r = run(p);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // Every model failing alike is said once, its file as <model>.pt, the models named after (caulk/failures.hpp).
  EXPECT_THAT(r.err, HasSubstr("'digits'"));
  EXPECT_THAT(r.err, ::testing::ContainsRegex("(digits|<model>)\\.pt"));
  EXPECT_THAT(r.err, HasSubstr("test_inputs_flat.npy"));
  EXPECT_THAT(r.err, HasSubstr("shape [32, 64]"));
}

TEST_F(ModelsPipeline, InputsOfTheWrongDtypeAreAClearError) {
  // Token ids (int64) given to the CNNs, which take float32 images.
  auto r = run(embed(file("hub.toml"), "tokens"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // Every model failing alike is said once, its file as <model>.pt, the models named after (caulk/failures.hpp).
  EXPECT_THAT(r.err, HasSubstr("'digits'"));
  EXPECT_THAT(r.err, ::testing::ContainsRegex("(digits|<model>)\\.pt"));
  EXPECT_THAT(r.err, HasSubstr("_tokens.npy"));
  EXPECT_THAT(r.err, HasSubstr("int64"));
}

TEST_F(ModelsPipeline, DatasetLoadChecksTheSamplesOfInputsOfAnyRank) {
  // Images (rank 4) with the test split's labels: 300 samples against 300 labels is fine...
  auto ok = run(fmt::format(R"([pipeline]
name = "shapes"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = "{0}/test_labels.npy", inputs = "{0}/test_inputs.npy" }}
)",
                            zoo().string()));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  // ...against the train split's 300 labels too, so use fewer labels: a mismatch names the file.
  dir_.write("labels.csv", "label\n1\n2\n");
  auto bad = run(fmt::format(R"([pipeline]
name = "shapes"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = "{0}", inputs = "{1}/test_inputs.npy" }}
)",
                             (dir_ / "labels.csv").string(), zoo().string()));
  // Found by the data check, before running (exit 2); by the node itself with --no-data-check (exit 1).
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("test_inputs.npy has 300 rows (its first dimension)"));
  EXPECT_THAT(bad.err, HasSubstr("have 2"));
  bad = run(fmt::format(R"([pipeline]
name = "shapes"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = "{0}", inputs = "{1}/test_inputs.npy" }}
)",
                        (dir_ / "labels.csv").string(), zoo().string()),
            {"--no-data-check"});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("test_inputs.npy: inputs has 300 rows (samples, its first dimension)"));
}

// pipelines/real_models/real_models.toml on the zoo, the whole demo in one graph (docs/models.md):
// ranked, tuned (probes, LoRA), merged (soup, TIES, Fisher), averaged (local, global), evaluated.
// The same run.json and files with --jobs 1 and 2; the ranking judged against the probe accuracy
// scikit-learn measured (the zoo's ground_truth.csv); the tuned and merged models' and the
// averages' test accuracy and log loss against PyTorch and numpy on the files the run wrote
// (check_real_demo.py).
TEST_F(ModelsPipeline, TheRealModelsDemoRanksTunesMergesAndAverages) {
  const fs::path pipeline = zoo().parent_path() / "real_models.toml";
  fs::copy_file(source_dir() / "pipelines" / "real_models" / "real_models.toml", pipeline, fs::copy_options::overwrite_existing);
  auto r = run_caulk({"run", pipeline.string(), "--out", (dir_ / "out").string(), "--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto one = run_caulk({"run", pipeline.string(), "--out", (dir_ / "one").string(), "--jobs", "1"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const auto j = run_json();
  EXPECT_EQ(j["status"], "ok");
  for (const auto& [id, node] : j["nodes"].items()) EXPECT_EQ(node["status"], "ok") << id;
  EXPECT_TRUE(fs::exists(dir_ / "out" / "report.html"));
  EXPECT_THAT(r.err, Not(HasSubstr("warning")));

  // --jobs changes nothing: run.json (paths differ by the output folder only) and the files.
  const auto strip = [&](const std::string& folder) {
    std::string s = comparable_run_json(run_json(folder)).dump();
    const std::string prefix = (dir_ / folder).string();
    for (std::size_t at; (at = s.find(prefix)) != std::string::npos;) s.replace(at, prefix.size(), "OUT");
    return s;
  };
  EXPECT_EQ(strip("one"), strip("out"));
  std::vector<std::string> files;
  for (const char* model : kCnnModels) {
    files.push_back(fmt::format("embed/{}.test.features.npy", model));
    files.push_back(fmt::format("saved/{}.test.npy", model));
  }
  for (const char* f : {"lora_a/lora_a.safetensors", "fisher_a/lora_a.fisher.safetensors", "soup/soup.safetensors", "ties/ties.safetensors",
                        "fisher_merge/fisher_merge.safetensors", "local/weights.test.npy", "saved/local.test.npy", "saved/global.test.npy"})
    files.push_back(f);
  for (const auto& f : files) EXPECT_EQ(read_file(out(f, "one")), read_file(out(f))) << f;

  // 1. Ranked: the model pre-trained on the target's own labeling (all ten digits) probes best, by
  // far (ground_truth.csv), and LogME ranks it first; the probes tuned here agree.
  EXPECT_EQ(j["nodes"]["ranking"]["summary"]["order"][0], "digits");
  EXPECT_EQ(j["nodes"]["judge"]["summary"]["logme"]["top1_regret"], 0.0);
  EXPECT_GT(j["nodes"]["judge"]["summary"]["logme"]["kendall_tau"].get<double>(), 0.5);
  EXPECT_EQ(j["nodes"]["judge_tuned"]["summary"]["logme"]["top1_regret"], 0.0);

  // 2. Tuned: the LoRA tunes are of the model LogME put first, and read digits far above chance
  // (0.1); LoRA trained its factors (more trainable parameters than the probe's head).
  const auto& accuracy = j["nodes"]["accuracy"]["summary"];
  for (const char* tune : {"lora_a", "lora_b", "lora_c"}) {
    SCOPED_TRACE(tune);
    EXPECT_EQ(j["nodes"][tune]["summary"][tune]["model"], "digits");
    EXPECT_GT(j["nodes"][tune]["summary"][tune]["trainable_parameters"].get<int>(),
              j["nodes"]["top_probe"]["summary"]["top_probe"]["trainable_parameters"].get<int>());
    EXPECT_GT(accuracy[tune]["accuracy"].get<double>(), 0.6);
  }
  // 3. Merged: every merge still reads digits, and Fisher merging is another model than the soup.
  for (const char* merge : {"soup", "ties", "fisher_merge"}) EXPECT_GT(accuracy[merge]["accuracy"].get<double>(), 0.6) << merge;
  EXPECT_NE(read_file(out("soup/soup.safetensors")), read_file(out("fisher_merge/fisher_merge.safetensors")));
  // 4. Averaged: fitted on val, both averages are at least as good as the best single candidate on
  // test by log loss (what they minimise), within noise.
  double best_single = 1e300;
  for (const char* m : {"digits", "parity", "loops", "small", "untrained", "untrained_as_parity", "lora_a", "lora_b", "lora_c"})
    best_single = std::min(best_single, accuracy[m]["log_loss"].get<double>());
  for (const char* avg : {"local", "global"}) EXPECT_LT(accuracy[avg]["log_loss"].get<double>(), best_single + 0.05) << avg;

  // The numbers against PyTorch (the saved .pt files; the module with the saved safetensors; the
  // soup as the mean of the tunes' tensors) and numpy (sum_k w_k(x) p_k(x) of the saved files).
  const std::string cmd = "/usr/bin/python3 " + shell_quote(std::string(CAULK_MODELS_TEST_SOURCE) + "/check_real_demo.py") + " " +
                          shell_quote(zoo().string()) + " " + shell_quote((dir_ / "out").string());
  const CliResult check = run_captured(cmd);
  EXPECT_EQ(check.exit_code, 0) << cmd << "\n" << check.out << check.err;
}

// Under mpirun each model is a unit any rank may run (loading libtorch there): the same run.json
// and feature files as one process.
TEST_F(ModelsPipeline, UnderMpiTheRanksGiveTheSameRun) {
  CAULK_REQUIRE_MPI();
  const fs::path pipeline = zoo().parent_path() / "real_models_mpi.toml";
  fs::copy_file(source_dir() / "pipelines" / "real_models" / "real_models.toml", pipeline, fs::copy_options::overwrite_existing);
  auto one = run_caulk(mpi_run_args(pipeline, dir_ / "one", 1));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto many = run_mpi(3, mpi_run_args(pipeline, dir_ / "many", 1));
  ASSERT_EQ(many.exit_code, 0) << many.err;
  const auto strip = [&](const std::string& folder) {
    std::string s = comparable_run_json(run_json(folder)).dump();
    const std::string prefix = (dir_ / folder).string();
    for (std::size_t at; (at = s.find(prefix)) != std::string::npos;) s.replace(at, prefix.size(), "OUT");
    return s;
  };
  EXPECT_EQ(strip("one"), strip("many"));
  EXPECT_EQ(run_json("many")["ranks"]["processes"], 3);
  for (const char* model : kCnnModels)
    EXPECT_EQ(read_file(out(fmt::format("embed/{}.test.features.npy", model), "one")),
              read_file(out(fmt::format("embed/{}.test.features.npy", model), "many")))
        << model;
}

}  // namespace
