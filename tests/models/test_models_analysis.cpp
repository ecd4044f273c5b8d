// Analysing, predicting with and merging TorchScript models through `caulk run` on the digits zoo
// (scripts/make_digits_zoo.py, the fixture models.make_digits_zoo): analysis.fisher's files
// against a per-sample, per-class autograd loop in PyTorch, predict.checkpoints against PyTorch's
// forward of the same module with the same (or averaged) weights, the same bytes with --jobs 1
// and 2, and the clear errors of nodes that need an MLP's internals (docs/models.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "caulk/io/safetensors.hpp"
#include "cli.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

fs::path zoo() { return CAULK_DIGITS_ZOO; }

class ModelsAnalysis : public ::testing::Test {
 protected:
  void SetUp() override {
    if (fs::exists(zoo() / "SKIP")) {
      std::ifstream in(zoo() / "SKIP");
      GTEST_SKIP() << std::string((std::istreambuf_iterator<char>(in)), {});
    }
    if (!fs::exists(zoo() / "hub.toml")) GTEST_SKIP() << "no zoo in " << zoo() << ": run the fixture test models.make_digits_zoo first";
  }

  static std::string file(const std::string& name) { return (zoo() / name).string(); }

  // dataset.load of the zoo's target task (images), then `nodes`.
  static std::string task(const std::string& nodes) {
    return fmt::format(R"([pipeline]
name = "digits-analysis"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = {{ train = "{0}/train_labels.npy", test = "{0}/test_labels.npy" }}, inputs = {{ train = "{0}/train_inputs.npy", test = "{0}/test_inputs.npy" }} }}
{1})",
                       zoo().string(), nodes);
  }

  CliResult run(const std::string& pipeline, const std::vector<std::string>& extra = {}, const std::string& out = "out") {
    dir_.write(out + ".toml", pipeline);
    std::vector<std::string> args{"run", (dir_ / (out + ".toml")).string(), "--out", (dir_ / out).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_caulk(args);
  }
  fs::path out(const std::string& rel, const std::string& folder = "out") const { return dir_ / folder / rel; }
  nlohmann::json run_json(const std::string& folder = "out") const { return nlohmann::json::parse(read_file(dir_ / folder / "run.json")); }

  // check_analysis_in_pytorch.py with `args`: its exit code 0 means every number matched PyTorch.
  static void expect_pytorch_agrees(const std::vector<std::string>& args) {
    std::string cmd = "/usr/bin/python3 " + shell_quote(std::string(CAULK_MODELS_TEST_SOURCE) + "/check_analysis_in_pytorch.py");
    for (const auto& a : args) cmd.append(" ").append(shell_quote(a));
    const CliResult r = run_captured(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out << r.err;
  }

  TempDir dir_;
};

// ------------------------------------------------------------------------- analysis.fisher

constexpr const char* kFisher = R"([[node]]
id = "fisher"
type = "analysis.fisher"
inputs = {{ data = "task" }}
params = {{ manifest = "{0}/hub.toml", only = ["digits", "untrained_as_parity"], max_samples = 12 }}
[[node]]
id = "sampled"
type = "analysis.fisher"
inputs = {{ data = "task" }}
params = {{ manifest = "{0}/hub.toml", only = ["digits"], max_samples = 12, expectation = "sampled", seed = 7 }}
)";

TEST_F(ModelsAnalysis, FisherIsAPerSamplePerClassAutogradLoopInPyTorch) {
  auto r = run(task(fmt::format(fmt::runtime(kFisher), zoo().string())), {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string inputs = file("train_inputs.npy");
  // Exact: every class weighted by its probability; a module with another model's weights; sampled.
  expect_pytorch_agrees({"fisher", file("digits.pt"), "-", inputs, "12", "0", "0", out("fisher/digits.fisher.safetensors")});
  expect_pytorch_agrees({"fisher", file("untrained.pt"), file("parity.safetensors"), inputs, "12", "0", "0",
                         out("fisher/untrained_as_parity.fisher.safetensors")});
  expect_pytorch_agrees({"fisher", file("digits.pt"), "-", inputs, "12", "1", "7", out("sampled/digits.fisher.safetensors")});
  // The sampled Fisher is another number than the exact one (the check above could not pass by accident).
  const auto exact = caulk::io::Checkpoint::open(out("fisher/digits.fisher.safetensors"));
  const auto sampled = caulk::io::Checkpoint::open(out("sampled/digits.fisher.safetensors"));
  EXPECT_NE(exact.to_double("fc.weight"), sampled.to_double("fc.weight"));

  const auto j = run_json();
  const auto& summary = j["nodes"]["fisher"]["summary"]["digits"];
  EXPECT_EQ(summary["family"], "torchscript");
  EXPECT_EQ(summary["samples"], 12);
  EXPECT_GT(summary["trace"].get<double>(), 0.0);
  EXPECT_EQ(j["nodes"]["sampled"]["summary"]["digits"]["expectation"], "sampled");
}

TEST_F(ModelsAnalysis, FisherFilesAreTheSameBytesWithOneOrTwoJobs) {
  const std::string p = task(fmt::format(fmt::runtime(kFisher), zoo().string()));
  auto a = run(p, {"--jobs", "1"}, "one");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = run(p, {"--jobs", "2"}, "two");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  for (const char* f :
       {"fisher/digits.fisher.safetensors", "fisher/untrained_as_parity.fisher.safetensors", "sampled/digits.fisher.safetensors"})
    EXPECT_EQ(read_file(out(f, "one")), read_file(out(f, "two"))) << f;
  EXPECT_EQ(run_json("one")["nodes"]["fisher"]["summary"].dump(), run_json("two")["nodes"]["fisher"]["summary"].dump());
}

// The Checkpoint analysis.fisher publishes still names the module, its feature method and weights.
TEST_F(ModelsAnalysis, FisherKeepsTheModuleOfEachModel) {
  auto r = run(task(fmt::format(R"([[node]]
id = "fisher"
type = "analysis.fisher"
inputs = {{ data = "task" }}
params = {{ manifest = "{0}/hub.toml", only = ["untrained_as_parity"], max_samples = 4 }}
[[node]]
id = "again"
type = "analysis.fisher"
inputs = {{ data = "task", models = "fisher.checkpoints" }}
params = {{ max_samples = 4 }}
)",
                                zoo().string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Run again from the published entries: the same model (module and weights), the same file.
  EXPECT_EQ(read_file(out("fisher/untrained_as_parity.fisher.safetensors")),
            read_file(out("again/untrained_as_parity.fisher.safetensors")));
}

TEST_F(ModelsAnalysis, FisherOfInputsOfTheWrongShapeIsAClearError) {
  auto r = run(fmt::format(R"([pipeline]
name = "bad"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = {{ test = "{0}/test_labels.npy" }}, inputs = {{ test = "{0}/bad/test_inputs_flat.npy" }} }}
[[node]]
id = "fisher"
type = "analysis.fisher"
inputs = {{ data = "task" }}
params = {{ manifest = "{0}/hub.toml", only = ["digits"], split = "test", max_samples = 4 }}
)",
                           zoo().string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("model 'digits'"));
  EXPECT_THAT(r.err, HasSubstr("test_inputs_flat.npy"));
  EXPECT_THAT(r.err, HasSubstr("[4, 64]"));  // the samples it was given
}

// ------------------------------------------------------------------------- predict.checkpoints

// A TorchScript module with the fine-tunes' weights (finetunes.toml), through checkpoint.load and
// predict.checkpoints; predictions.save writes them where PyTorch can read them.
constexpr const char* kFineTunes = R"([[node]]
id = "hub"
type = "checkpoint.load"
params = {{ manifest = "{0}/finetunes.toml" }}
{1}
[[node]]
id = "predict"
type = "predict.checkpoints"
inputs = {{ checkpoints = [{2}], data = "task" }}
params = {{ splits = ["test"], batch_size = 50 }}
[[node]]
id = "saved"
type = "predictions.save"
inputs = {{ predictions = "predict" }}
)";

TEST_F(ModelsAnalysis, PredictionsOfTorchScriptModelsWithTheirWeightsAreThoseOfPyTorch) {
  auto r = run(task(fmt::format(fmt::runtime(kFineTunes), zoo().string(), "", "\"hub\"")), {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string inputs = file("test_inputs.npy");
  expect_pytorch_agrees({"predict", file("digits.pt"), out("saved/base.test.npy"), inputs, "-"});
  // One fine-tune (each PyTorch check loads torch, seconds): the soup test covers all three.
  expect_pytorch_agrees({"predict", file("digits.pt"), out("saved/ft_a.test.npy"), inputs, file("ft_a.safetensors")});
  // A fine-tune predicts otherwise than its base (the checks above tell the weights apart).
  EXPECT_NE(read_file(out("saved/base.test.npy")), read_file(out("saved/ft_a.test.npy")));
}

// ------------------------------------------------------------------------- merges

TEST_F(ModelsAnalysis, ASoupOfTorchScriptFineTunesPredictsAsPyTorchWithTheAveragedStateDict) {
  auto r = run(task(fmt::format(fmt::runtime(kFineTunes), zoo().string(), R"([[node]]
id = "soup"
type = "merge.linear"
inputs = { checkpoints = "hub" }
)",
                                "\"soup\"")),
               {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The base is left out of merge.linear (it uses none): the soup is the mean of the three fine-tunes.
  expect_pytorch_agrees({"predict", file("digits.pt"), out("saved/soup.test.npy"), file("test_inputs.npy"), file("ft_a.safetensors"),
                         file("ft_b.safetensors"), file("ft_c.safetensors")});
  // The merged model is the module with the merged weights, by PyTorch's names.
  const auto merged = caulk::io::SafetensorsFile::open(out("soup/soup.safetensors"));
  std::vector<std::string> names;
  for (const auto& t : merged.tensors()) names.push_back(t.name);
  EXPECT_THAT(names, ::testing::Contains("conv1.weight"));
  EXPECT_THAT(names, ::testing::Contains("fc.bias"));
  EXPECT_EQ(names.size(), 10u);
}

// A module's own weights (no `weights` in the manifest) are exported by PyTorch's names before
// merging; modules of one architecture from different files merge, in the first one's module.
TEST_F(ModelsAnalysis, AModulesOwnWeightsMergeWithAnotherFilesOfTheSameArchitecture) {
  dir_.write("pair.toml", fmt::format(R"([hub]
name = "pair"
[[model]]
name = "parity"
torchscript = "{0}/parity.pt"
feature_method = "embed"
[[model]]
name = "untrained_as_parity"
torchscript = "{0}/untrained.pt"
feature_method = "embed"
weights = "{0}/parity.safetensors"
)",
                                      zoo().string()));
  auto r = run(task(fmt::format(R"([[node]]
id = "hub"
type = "checkpoint.load"
params = {{ manifest = "{0}" }}
[[node]]
id = "pair"
type = "merge.linear"
inputs = {{ checkpoints = "hub" }}
[[node]]
id = "predict"
type = "predict.checkpoints"
inputs = {{ checkpoints = "pair", data = "task" }}
params = {{ splits = ["test"] }}
[[node]]
id = "saved"
type = "predictions.save"
inputs = {{ predictions = "predict" }}
)",
                                (dir_ / "pair.toml").string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("come from different module files"));
  EXPECT_TRUE(fs::exists(out("pair/parity.weights.safetensors")));
  // The mean of the parity model's weights with themselves, in parity.pt: the parity model.
  expect_pytorch_agrees({"predict", file("parity.pt"), out("saved/pair.test.npy"), file("test_inputs.npy"), file("parity.safetensors")});
}

TEST_F(ModelsAnalysis, MergingATorchScriptModelWithAnMlpIsAClearError) {
  auto r = run(task(fmt::format(R"([[node]]
id = "zoo"
type = "zoo.pretrain"
params = {{ seed = 3, inputs = 8, latent = 2, source_samples = 200, train = 20, validation = 10, test = 20, epochs = 1, models = [
  {{ name = "mlp", relatedness = 0.9, hidden = [6] }} ] }}
[[node]]
id = "hub"
type = "checkpoint.load"
params = {{ manifest = "{0}/finetunes.toml" }}
[[node]]
id = "mixed"
type = "merge.linear"
inputs = {{ checkpoints = ["zoo.models", "hub"] }}
)",
                                zoo().string())));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("merge.linear: model 'base' is a TorchScript model"));
  EXPECT_THAT(r.err, HasSubstr("digits.pt"));
  EXPECT_THAT(r.err, HasSubstr("but model 'mlp' is not"));
}

// pipelines/real_models/merge_real_models.toml on the zoo: soup, TIES and Fisher merges of the
// fine-tunes (Fisher from analysis.fisher's TorchScript files), predicted and evaluated.
TEST_F(ModelsAnalysis, TheMergeRealModelsPipelineMergesTheFineTunes) {
  const fs::path pipeline = zoo().parent_path() / "merge_real_models.toml";
  fs::copy_file(source_dir() / "pipelines" / "real_models" / "merge_real_models.toml", pipeline, fs::copy_options::overwrite_existing);
  auto r = run_caulk({"run", pipeline.string(), "--out", (dir_ / "out").string(), "--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = run_json();
  EXPECT_EQ(j["status"], "ok");
  for (const auto& [id, node] : j["nodes"].items()) EXPECT_EQ(node["status"], "ok") << id;
  EXPECT_TRUE(fs::exists(out("report.html")));
  const auto& accuracy = j["nodes"]["accuracy"]["summary"];
  for (const char* model : {"base", "ft_a", "ft_b", "ft_c", "soup", "ties", "fisher_merge", "greedy_soup", "output_ensemble"}) {
    SCOPED_TRACE(model);
    ASSERT_TRUE(accuracy.contains(model)) << accuracy.dump();
    EXPECT_GT(accuracy[model]["accuracy"].get<double>(), 0.8);  // every merge still reads digits
  }
  // Fisher merging weighs the fine-tunes otherwise than the soup: another model, Matena and
  // Raffel's formula on analysis.fisher's files of the TorchScript fine-tunes.
  EXPECT_NE(read_file(out("soup/soup.safetensors")), read_file(out("fisher_merge/fisher_merge.safetensors")));
  std::vector<std::string> args{"fisher_merge", out("fisher_merge/fisher_merge.safetensors")};
  for (const char* m : {"ft_a", "ft_b", "ft_c"}) {
    args.push_back(out(fmt::format("fisher/{}.fisher.safetensors", m)));
    args.push_back(file(std::string(m) + ".safetensors"));
  }
  expect_pytorch_agrees(args);
}

// search.merge_coefficients scores each candidate as the module with the candidate's weights: the
// published model is PyTorch's task-arithmetic merge with the chosen coefficients, and the score
// the search reported is the log loss eval.classification measures on its predictions.
TEST_F(ModelsAnalysis, ACoefficientSearchOverTorchScriptFineTunesPublishesPyTorchsMerge) {
  dir_.write("two.toml", fmt::format(R"([hub]
name = "two"
[[model]]
name = "base"
torchscript = "{0}/digits.pt"
feature_method = "embed"
base = true
[[model]]
name = "ft_a"
torchscript = "{0}/digits.pt"
feature_method = "embed"
weights = "{0}/ft_a.safetensors"
[[model]]
name = "ft_b"
torchscript = "{0}/digits.pt"
feature_method = "embed"
weights = "{0}/ft_b.safetensors"
)",
                                     zoo().string()));
  auto r = run(task(fmt::format(R"([[node]]
id = "hub"
type = "checkpoint.load"
params = {{ manifest = "{0}" }}
[[node]]
id = "search"
type = "search.merge_coefficients"
inputs = {{ checkpoints = "hub", data = "task" }}
params = {{ method = "task_arithmetic", grid = 5, lambdas = [0.5, 1.5], split = "test", metric = "log_loss" }}
[[node]]
id = "predict"
type = "predict.checkpoints"
inputs = {{ checkpoints = "search.checkpoints", data = "task" }}
params = {{ splits = ["test"] }}
[[node]]
id = "accuracy"
type = "eval.classification"
inputs = {{ predictions = "predict", data = "task" }}
[[node]]
id = "saved"
type = "predictions.save"
inputs = {{ predictions = "predict" }}
)",
                                (dir_ / "two.toml").string())),
               {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = run_json();
  const auto& search = j["nodes"]["search"]["summary"];
  EXPECT_EQ(search["candidates"], 10);
  expect_pytorch_agrees({"task_arithmetic", file("digits.pt"), out("saved/search.test.npy"), file("test_inputs.npy"),
                         fmt::format("{}", search["best_lambda"].get<double>()),
                         fmt::format("{}", search["best_weights"]["ft_a"].get<double>()), file("ft_a.safetensors"),
                         fmt::format("{}", search["best_weights"]["ft_b"].get<double>()), file("ft_b.safetensors")});
  EXPECT_NEAR(search["best_score"].get<double>(), j["nodes"]["accuracy"]["summary"]["search"]["log_loss"].get<double>(), 1e-9);
}

// merge.greedy_soup of TorchScript fine-tunes (the base among the ingredients, on its module's own
// weights): the published soup predicts as PyTorch's greedy soup of the same files.
TEST_F(ModelsAnalysis, AGreedySoupOfTorchScriptModelsIsPyTorchsGreedySoup) {
  auto r = run(task(fmt::format(R"([[node]]
id = "hub"
type = "checkpoint.load"
params = {{ manifest = "{0}/finetunes.toml" }}
[[node]]
id = "soup"
type = "merge.greedy_soup"
inputs = {{ checkpoints = "hub", data = "task" }}
params = {{ split = "test", metric = "log_loss" }}
[[node]]
id = "predict"
type = "predict.checkpoints"
inputs = {{ checkpoints = "soup.checkpoints", data = "task" }}
params = {{ splits = ["test"] }}
[[node]]
id = "saved"
type = "predictions.save"
inputs = {{ predictions = "predict" }}
)",
                                zoo().string())),
               {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_pytorch_agrees({"greedy_soup", file("digits.pt"), out("saved/soup.test.npy"), file("test_inputs.npy"), file("test_labels.npy"),
                         "-", file("ft_a.safetensors"), file("ft_b.safetensors"), file("ft_c.safetensors")});
  const auto summary = run_json()["nodes"]["soup"]["summary"];
  EXPECT_EQ(summary["ingredients"].size(), 4u);
  EXPECT_GE(summary["kept"].size(), 1u);
}

// analysis.scale_stability of TorchScript models: every point is PyTorch's accuracy and agreement
// of the module with its parameters times s.
TEST_F(ModelsAnalysis, ScaleStabilityOfTorchScriptModelsIsPyTorchsOnScaledParameters) {
  auto r = run(task(fmt::format(R"([[node]]
id = "hub"
type = "checkpoint.load"
params = {{ manifest = "{0}/finetunes.toml" }}
[[node]]
id = "stability"
type = "analysis.scale_stability"
inputs = {{ checkpoints = "hub", data = "task" }}
params = {{ scales = [0.25, 0.5, 1, 2, 4] }}
)",
                                zoo().string())),
               {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto summary = run_json()["nodes"]["stability"]["summary"];
  expect_pytorch_agrees(
      {"scale_stability", file("digits.pt"), "-", file("test_inputs.npy"), file("test_labels.npy"), summary["base"].dump()});
  expect_pytorch_agrees({"scale_stability", file("digits.pt"), file("ft_b.safetensors"), file("test_inputs.npy"), file("test_labels.npy"),
                         summary["ft_b"].dump()});
  // Scaling changes some predictions (the check above sees more than the unscaled model).
  EXPECT_LT(summary["ft_b"][0]["agreement"].get<double>(), 1.0);
  EXPECT_EQ(summary["ft_b"][2]["agreement"].get<double>(), 1.0);  // s = 1
}

// ------------------------------------------------------------------------- ensembles

TEST_F(ModelsAnalysis, AnOutputEnsembleOfTorchScriptModelsIsTheMeanOfPyTorchsProbabilities) {
  auto r = run(task(fmt::format(R"([[node]]
id = "hub"
type = "checkpoint.load"
params = {{ manifest = "{0}/finetunes.toml" }}
[[node]]
id = "outputs"
type = "ensemble.predictions"
inputs = {{ checkpoints = "hub", data = "task" }}
params = {{ splits = ["test"] }}
[[node]]
id = "features"
type = "ensemble.features"
inputs = {{ checkpoints = "hub", data = "task" }}
params = {{ head = "refit", splits = ["test"] }}
[[node]]
id = "accuracy"
type = "eval.classification"
inputs = {{ predictions = ["outputs", "features"], data = "task" }}
[[node]]
id = "saved"
type = "predictions.save"
inputs = {{ predictions = ["outputs", "features"] }}
)",
                                zoo().string())),
               {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The base (the module's own weights) is a member too: its weights are the module's file's.
  expect_pytorch_agrees({"ensemble", file("digits.pt"), out("saved/outputs.test.npy"), file("test_inputs.npy"), file("digits.safetensors"),
                         file("ft_a.safetensors"), file("ft_b.safetensors"), file("ft_c.safetensors")});
  // A head refitted on the mean of the embed() features reads the digits.
  EXPECT_GT(run_json()["nodes"]["accuracy"]["summary"]["features"]["accuracy"].get<double>(), 0.8);
  EXPECT_EQ(run_json()["nodes"]["features"]["summary"]["feature_dim"], 32);
}

// Nodes that need an MLP's internals say so, naming the node, the model, its module and why.
TEST_F(ModelsAnalysis, NodesThatNeedAnMlpsInternalsRefuseATorchScriptModelClearly) {
  const std::vector<std::pair<std::string, std::string>> nodes{
      {"merge.regmean", "Gram matrix"}, {"analysis.weight_patterns", "first-layer weights"}, {"ensemble.features", "head = \"refit\""}};
  for (const auto& [type, why] : nodes) {
    SCOPED_TRACE(type);
    const std::string data = type == "analysis.weight_patterns" ? "" : ", data = \"task\"";
    auto r = run(task(fmt::format(R"([[node]]
id = "hub"
type = "checkpoint.load"
params = {{ manifest = "{0}/finetunes.toml" }}
[[node]]
id = "node"
type = "{1}"
inputs = {{ checkpoints = "hub"{2} }}
)",
                                  zoo().string(), type, data)));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(type + " cannot take model 'base', a TorchScript model"));
    EXPECT_THAT(r.err, HasSubstr("digits.pt"));
    EXPECT_THAT(r.err, HasSubstr(why));
  }
}

}  // namespace
