// Data checks before running (issue 21 item 1; caulk/data_check.hpp): `caulk check` and `caulk run`
// report every problem with the data files at once, each at the FILE:LINE:COL of the pipeline
// parameter that names the file, with what is wrong and how to fix it; exit 2 and nothing run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "npy_bytes.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

namespace {

std::string npy_f64_vector(const std::vector<double>& v) {
  std::string shape = "(";
  shape.append(std::to_string(v.size())).append(",)");
  return npy_image("<f8", shape, v.data(), v.size() * 8);
}

std::vector<float> values(std::size_t n, std::size_t seed) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(((i + 1) * (seed * 7919 + 13)) % 17) / 17.0f;
  return v;
}

std::vector<std::int64_t> classes(std::size_t n) {
  std::vector<std::int64_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int64_t>(i % 2);
  return v;
}

std::string probs(std::size_t rows) {
  std::vector<float> p(rows * 2);
  for (std::size_t i = 0; i < rows; ++i) {
    p[2 * i] = 0.25f;
    p[2 * i + 1] = 0.75f;
  }
  return npy_f32(rows, 2, p);
}

// A little task with two splits (train 6 rows, test 4) and a hub of two models, "alpha" and "beta".
class DataChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("labels_train.npy", npy_i64(classes(6)));
    dir_.write("labels_test.npy", npy_i64(classes(4)));
    for (const char* m : {"alpha", "beta"}) {
      dir_.write(std::string(m) + "_train.npy", npy_f32(6, 3, values(18, m[0])));
      dir_.write(std::string(m) + "_test.npy", npy_f32(4, 3, values(12, m[0])));
    }
    write_hub("");
    dir_.write("truth.csv", "model,accuracy\nalpha,0.9\nbeta,0.7\n");
  }

  void write_hub(const std::string& extra_alpha) {
    dir_.write("hub.toml",
               "[hub]\nname = \"tiny\"\n\n[[model]]\nname = \"alpha\"\n"
               "features = { train = \"alpha_train.npy\", test = \"alpha_test.npy\" }\n" +
                   extra_alpha + "\n[[model]]\nname = \"beta\"\nfeatures = { train = \"beta_train.npy\", test = \"beta_test.npy\" }\n");
  }

  // The pipeline: dataset, hub, a ranker with `ranker_params`, and a judge against truth.csv.
  std::string pipeline(const std::string& labels = R"({ train = "labels_train.npy", test = "labels_test.npy" })",
                       const std::string& ranker = "rank.logme", const std::string& ranker_params = "{}",
                       const std::string& dataset_extra = "") {
    return "[pipeline]\nname = \"checks\"\n"
           "[[node]]\nid = \"task\"\ntype = \"dataset.load\"\nparams = { labels = " +
           labels + dataset_extra +
           " }\n"
           "[[node]]\nid = \"hub\"\ntype = \"adapter.precomputed\"\nparams = { manifest = \"hub.toml\" }\n"
           "[[node]]\nid = \"rank\"\ntype = \"" +
           ranker + "\"\ninputs = { features = \"hub\", data = \"task\" }\nparams = " + ranker_params +
           "\n"
           "[[node]]\nid = \"judge\"\ntype = \"eval.rank_correlation\"\ninputs = { scores = [\"rank\"] }\n"
           "params = { ground_truth = \"truth.csv\", column = \"accuracy\" }\n";
  }

  // "p.toml:LINE:COL" (with the folder) of the first occurrence of `needle` in the pipeline text.
  std::string at(const std::string& needle) const {
    const std::string text = read_file(dir_ / "p.toml");
    const std::size_t pos = text.find(needle);
    EXPECT_NE(pos, std::string::npos) << needle;
    int line = 1, col = 1;
    for (std::size_t i = 0; i < pos; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return (dir_ / "p.toml").string() + ":" + std::to_string(line) + ":" + std::to_string(col);
  }

  CliResult run(const std::string& text, const std::vector<std::string>& extra = {}) {
    dir_.write("p.toml", text);
    std::vector<std::string> args{"run", (dir_ / "p.toml").string(), "--out", (dir_ / "out").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    // `timeout`: a check that opened a FIFO would hang here rather than pass.
    std::string cmd = "timeout 60 env -u CAULK_PLUGIN_PATH " + shell_quote(caulk_binary().string());
    for (const auto& a : args) cmd += " " + shell_quote(a);
    return run_captured(cmd);
  }

  // Exit 2, nothing run (no run.json at all), and `message` at `where` among the problems.
  void expect_problem(const CliResult& r, const std::string& where, const std::string& message) {
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr(where + ": error: " + message));
    EXPECT_THAT(r.err, HasSubstr("found; nothing was run"));
    EXPECT_FALSE(fs::exists(dir_ / "out" / "run.json")) << "a node ran";
  }

  std::string path(const std::string& rel) const { return (dir_ / rel).string(); }

  TempDir dir_;
};

TEST_F(DataChecks, AValidPipelineChecksAndRuns) {
  CliResult r = run(pipeline());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  CliResult c = run_caulk({"check", (dir_ / "p.toml").string()});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_THAT(c.out, HasSubstr("ok (4 nodes)"));
}

TEST_F(DataChecks, MissingFileHasDidYouMeanOfItsSibling) {
  CliResult r = run(pipeline(R"({ train = "labels_train.npy", test = "labels_tst.npy" })"));
  expect_problem(r, at("\"labels_tst.npy\""),
                 "node 'task': parameter 'labels': labels file " + path("labels_tst.npy") + ": no such file (did you mean '" +
                     path("labels_test.npy") + "'?)");
}

TEST_F(DataChecks, CheckReportsTheSameWithoutRunning) {
  dir_.write("p.toml", pipeline(R"({ train = "labels_train.npy", test = "labels_tst.npy" })"));
  CliResult r = run_caulk({"check", (dir_ / "p.toml").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(at("\"labels_tst.npy\"") + ": error: node 'task': parameter 'labels': labels file " +
                               path("labels_tst.npy") + ": no such file (did you mean"));
}

TEST_F(DataChecks, FifoIsNotARegularFileAndIsNeverOpened) {
  fs::remove(dir_ / "labels_train.npy");
  ASSERT_EQ(::mkfifo((dir_ / "labels_train.npy").c_str(), 0600), 0);
  CliResult r = run(pipeline());
  expect_problem(r, at("\"labels_train.npy\""),
                 "node 'task': parameter 'labels': labels file " + path("labels_train.npy") + ": not a regular file (a FIFO)");
}

TEST_F(DataChecks, DeviceIsNotARegularFile) {
  CliResult r = run(pipeline(R"({ train = "labels_train.npy", test = "labels_test.npy" })", "rank.logme", "{}",
                             R"(, covariates = { train = "/dev/null", test = "labels_test.npy" })"));
  expect_problem(r, at("\"/dev/null\""),
                 "node 'task': parameter 'covariates': covariates /dev/null: not a regular file (a character device)");
}

TEST_F(DataChecks, FolderWhereAFileIsExpectedInAManifest) {
  fs::remove(dir_ / "beta_test.npy");
  fs::create_directory(dir_ / "beta_test.npy");
  CliResult r = run(pipeline());
  expect_problem(r, at("\"hub.toml\""),
                 "node 'hub': parameter 'manifest': " + path("hub.toml") + ":10:12: model 'beta': features of split 'test', " +
                     path("beta_test.npy") + ": not a regular file (a folder)");
}

TEST_F(DataChecks, CsvWhereNpyIsNeededGetsTheConversionCommand) {
  dir_.write("inputs.csv", "x,y,z\n1,2,3\n4,5,6\n");
  CliResult r = run(pipeline(R"({ train = "labels_train.npy", test = "labels_test.npy" })", "rank.logme", "{}",
                             R"(, inputs = { train = "inputs.csv", test = "labels_test.npy" })"));
  expect_problem(r, at("\"inputs.csv\""),
                 "node 'task': parameter 'inputs': inputs " + path("inputs.csv") +
                     ": it is text (CSV with a header), not a .npy file; convert it with: /usr/bin/python3 -c \"import numpy as np; "
                     "np.save('" +
                     path("inputs.npy") + "', np.loadtxt('" + path("inputs.csv") +
                     "', delimiter=',', skiprows=1))\" and name the .npy file here");
}

TEST_F(DataChecks, LabelRowsThatDisagreeWithEveryModelAreBlamedOnTheLabels) {
  dir_.write("labels_train.npy", npy_i64(classes(5)));
  CliResult r = run(pipeline());
  expect_problem(r, at("\"labels_train.npy\""),
                 "node 'task': parameter 'labels': labels file " + path("labels_train.npy") +
                     " has 5 rows for split 'train' but the features of every model of hub 'tiny' have 6");
}

TEST_F(DataChecks, OneModelWhoseFeatureRowsDisagreeIsNamedAtTheManifest) {
  dir_.write("beta_train.npy", npy_f32(7, 3, values(21, 2)));
  CliResult r = run(pipeline());
  expect_problem(r, at("\"hub.toml\""),
                 "node 'hub': parameter 'manifest': hub 'tiny': features of split 'train' have 7 rows but the labels (" +
                     path("labels_train.npy") + ") have 6: model 'beta'");
}

TEST_F(DataChecks, CovariateRowsDisagreeWithTheLabels) {
  dir_.write("cov.npy", npy_f32(5, 2, values(10, 3)));
  CliResult r = run(pipeline(R"({ train = "labels_train.npy", test = "labels_test.npy" })", "rank.logme", "{}",
                             R"(, covariates = { train = "cov.npy", test = "labels_test.npy" })"));
  expect_problem(r, at("\"cov.npy\""),
                 "node 'task': parameter 'covariates': covariates " + path("cov.npy") +
                     " has 5 rows (its first dimension) but the labels of split 'train' (" + path("labels_train.npy") + ") have 6");
}

TEST_F(DataChecks, SourceProbRowsDisagreeWithTheFeatures) {
  dir_.write("alpha_probs.npy", probs(5));
  write_hub("source_probs = { train = \"alpha_probs.npy\" }\n");
  CliResult r = run(pipeline());
  expect_problem(r, at("\"hub.toml\""),
                 "node 'hub': parameter 'manifest': " + path("hub.toml") + ":7:16: model 'alpha': source_probs of split 'train' (" +
                     path("alpha_probs.npy") + ") has 5 rows but its features (" + path("alpha_train.npy") + ") have 6");
}

TEST_F(DataChecks, PredictionRowsDisagreeWithTheLabels) {
  dir_.write("alpha_pred.npy", probs(3));
  dir_.write("preds.toml",
             "[hub]\nname = \"p\"\nkind = \"classification\"\n[[model]]\nname = \"alpha\"\n"
             "predictions = { test = \"alpha_pred.npy\" }\n");
  CliResult r = run(R"([pipeline]
name = "checks"
[[node]]
id = "task"
type = "dataset.load"
params = { labels = { train = "labels_train.npy", test = "labels_test.npy" } }
[[node]]
id = "preds"
type = "predictions.load"
params = { manifest = "preds.toml" }
[[node]]
id = "judge"
type = "eval.classification"
inputs = { predictions = ["preds"], data = "task" }
)");
  expect_problem(r, at("\"preds.toml\""),
                 "node 'preds': parameter 'manifest': predictions on split 'test' (" + path("alpha_pred.npy") +
                     ") have 3 rows but the labels (" + path("labels_test.npy") + ") have 4, which node 'judge' judges them against");
}

TEST_F(DataChecks, SplitTheDataDoNotHave) {
  CliResult r = run(pipeline(R"({ train = "labels_train.npy", test = "labels_test.npy" })", "rank.logme", R"({ split = "val" })"));
  expect_problem(r, at("\"val\""),
                 "node 'rank': parameter 'split': the data on input 'data' have no split 'val'; their splits are 'test', 'train'");
  // Said once, at the ranker: the hub is not blamed for lacking a split the data lack too.
  EXPECT_THAT(r.err, HasSubstr("1 problem found"));
}

TEST_F(DataChecks, SplitWithACloseName) {
  CliResult r = run(pipeline(R"({ train = "labels_train.npy", test = "labels_test.npy" })", "rank.logme", R"({ split = "tset" })"));
  expect_problem(r, at("\"tset\""), "node 'rank': parameter 'split': the data on input 'data' have no split 'tset' (did you mean 'test'?)");
}

TEST_F(DataChecks, RankerThatNeedsSourceProbsOnAHubWithoutThem) {
  for (const char* ranker : {"rank.leep", "rank.nce"}) {
    CliResult r = run(pipeline(R"({ train = "labels_train.npy", test = "labels_test.npy" })", ranker));
    expect_problem(r, at("[[node]]\nid = \"rank\""),
                   "node 'rank': this ranker reads each model's source_probs (the source head's class probabilities), but hub 'tiny' "
                   "gives none for split 'train' for any model; add source_probs = { train = \"FILE.npy\" }");
  }
}

TEST_F(DataChecks, FloatLabelsForAClassificationTask) {
  dir_.write("labels_train.npy", npy_f64_vector({0.5, 1.25, 0.0, 2.0, 1.0, 0.75}));
  CliResult r = run(pipeline());
  expect_problem(r, at("\"labels_train.npy\""),
                 "node 'task': parameter 'labels': labels file " + path("labels_train.npy") +
                     " holds non-integer values, which are not class labels; for real-valued targets set kind = \"regression\"");
}

TEST_F(DataChecks, UnknownManifestKeyWithSuggestion) {
  write_hub("sorce_probs = \"alpha_train.npy\"\n");
  CliResult r = run(pipeline());
  expect_problem(r, at("\"hub.toml\""),
                 "node 'hub': parameter 'manifest': " + path("hub.toml") +
                     ":7:1: model 'alpha': unknown key 'sorce_probs' (did you mean 'source_probs'?)");
}

TEST_F(DataChecks, UnknownModelInTheGroundTruthWithSuggestion) {
  dir_.write("truth.csv", "model,accuracy\nalpha,0.9\nbetta,0.7\n");
  CliResult r = run(pipeline());
  expect_problem(r, at("\"truth.csv\""),
                 "node 'judge': parameter 'ground_truth': " + path("truth.csv") +
                     ":3: model 'betta' is not a model the rankers score (did you mean 'beta'?)");
  // The misspelling is said once: not again as "no ground truth for model 'beta'".
  EXPECT_THAT(r.err, Not(HasSubstr("no ground truth for")));
}

TEST_F(DataChecks, GroundTruthColumnMissingWithSuggestion) {
  dir_.write("truth.csv", "model,acuracy\nalpha,0.9\nbeta,0.7\n");
  CliResult r = run(pipeline());
  expect_problem(r, at("\"accuracy\""),
                 "node 'judge': parameter 'column': " + path("truth.csv") + " has no column 'accuracy' (did you mean 'acuracy'?)");
}

// A checkpoint hub and a merge of it (the checks look at names and files only, not at tensors).
// A valid one-tensor safetensors file: 8-byte little-endian header size, the JSON header, the data.
std::string safetensors_image() {
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string out(8, '\0');
  for (int b = 0; b < 8; ++b) out[b] = static_cast<char>((header.size() >> (8 * b)) & 0xff);
  return out + header + std::string(4, '\0');
}

std::string merge_pipeline(const std::string& base) {
  return "[pipeline]\nname = \"merge-checks\"\n[[node]]\nid = \"ckpts\"\ntype = \"checkpoint.load\"\n"
         "params = { manifest = \"ckpt.toml\" }\n[[node]]\nid = \"merged\"\ntype = \"merge.task_arithmetic\"\n"
         "inputs = { checkpoints = [\"ckpts\"] }\nparams = { base = \"" +
         base + "\" }\n";
}

TEST_F(DataChecks, MergeBaseThatIsNotAModelOfTheHub) {
  dir_.write("pre.safetensors", safetensors_image());
  dir_.write("tuned.safetensors", safetensors_image());
  dir_.write("ckpt.toml",
             "[hub]\nname = \"c\"\n[[model]]\nname = \"pretrained\"\ncheckpoint = \"pre.safetensors\"\n"
             "[[model]]\nname = \"tuned\"\ncheckpoint = \"tuned.safetensors\"\n");
  CliResult r = run(merge_pipeline("pretrianed"));
  expect_problem(r, at("\"pretrianed\""),
                 "node 'merged': parameter 'base': no model 'pretrianed' among the checkpoints merged (did you mean 'pretrained'?)");
}

TEST_F(DataChecks, MissingCheckpointWithDidYouMean) {
  dir_.write("pre.safetensors", safetensors_image());
  dir_.write("tuned.safetensors", safetensors_image());
  dir_.write("ckpt.toml",
             "[hub]\nname = \"c\"\n[[model]]\nname = \"pretrained\"\ncheckpoint = \"pre.safetensors\"\n"
             "[[model]]\nname = \"tuned\"\ncheckpoint = \"tunned.safetensors\"\n");
  CliResult r = run(merge_pipeline("pretrained"));
  expect_problem(r, at("\"ckpt.toml\""),
                 "node 'ckpts': parameter 'manifest': " + path("ckpt.toml") + ":8:14: model 'tuned': checkpoint " +
                     path("tunned.safetensors") + ": no such file (did you mean '" + path("tuned.safetensors") + "'?)");
}

TEST_F(DataChecks, ACheckpointThatIsNotSafetensorsIsSaidBeforeRunning) {
  dir_.write("pre.safetensors", safetensors_image());
  const std::string truncated = safetensors_image().substr(0, safetensors_image().size() - 2);
  dir_.write("tuned.safetensors", truncated);
  dir_.write("ckpt.toml",
             "[hub]\nname = \"c\"\n[[model]]\nname = \"pretrained\"\ncheckpoint = \"pre.safetensors\"\n"
             "[[model]]\nname = \"tuned\"\ncheckpoint = \"tuned.safetensors\"\n");
  CliResult r = run(merge_pipeline("pretrained"));
  expect_problem(
      r, at("\"ckpt.toml\""),
      "node 'ckpts': parameter 'manifest': " + path("ckpt.toml") + ":8:14: model 'tuned': checkpoint " + path("tuned.safetensors") + ": ");
  EXPECT_THAT(r.err, HasSubstr("1 problem found"));
  // Text where a checkpoint is needed.
  dir_.write("tuned.safetensors", "name,value\nw,0\n");
  r = run(merge_pipeline("pretrained"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(":8:14: model 'tuned': checkpoint " + path("tuned.safetensors") + ": header size"));
}

TEST_F(DataChecks, EveryProblemAtOnce) {
  dir_.write("truth.csv", "model,accuracy\nalpha,0.9\nbetta,0.7\n");
  fs::remove(dir_ / "alpha_test.npy");
  CliResult r = run(pipeline(R"({ train = "labels_train.npy", test = "labels_tst.npy" })", "rank.logme", R"({ split = "val" })"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("labels_tst.npy: no such file"));
  EXPECT_THAT(r.err, HasSubstr("alpha_test.npy: no such file"));
  EXPECT_THAT(r.err, HasSubstr("no split 'val'"));
  EXPECT_THAT(r.err, HasSubstr("model 'betta' is not a model the rankers score"));
  EXPECT_THAT(r.err, HasSubstr("4 problems found; nothing was run"));
  EXPECT_FALSE(fs::exists(dir_ / "out" / "run.json"));
}

TEST_F(DataChecks, NoDataCheckLeavesTheFilesToTheNodes) {
  // The same missing file, met by the node as it runs: exit 1 and run.json, as before the checks.
  CliResult r = run(pipeline(R"({ train = "labels_train.npy", test = "labels_tst.npy" })"), {"--no-data-check"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "out" / "run.json"));
}

// A node with a model hub (adapter.models, tune.peft, analysis.fisher, ...) on `models`.
std::string model_hub_pipeline(const std::string& hub_params) {
  return "[pipeline]\nname = \"model-hub-checks\"\n[[node]]\nid = \"task\"\ntype = \"dataset.load\"\n"
         "params = { labels = { train = \"labels_train.npy\" } }\n[[node]]\nid = \"embed\"\ntype = \"adapter.models\"\n"
         "inputs = { data = \"task\" }\nparams = " +
         hub_params + "\n";
}

TEST_F(DataChecks, AModelHubManifestThatIsMissingHasDidYouMean) {
  dir_.write("models.toml", "[[model]]\nname = \"cnn\"\ntorchscript = \"cnn.pt\"\n");
  dir_.write("cnn.pt", "x");
  CliResult r = run(model_hub_pipeline(R"({ manifest = "model.toml" })"));
  expect_problem(r, at("\"model.toml\""),
                 "node 'embed': parameter 'manifest': model hub manifest " + path("model.toml") + ": no such file (did you mean '" +
                     path("models.toml") + "'?)");
}

TEST_F(DataChecks, AModelHubsFilesAndOnlyAreCheckedBeforeRunning) {
  dir_.write("cnn.pt", "x");
  dir_.write("models.toml",
             "[[model]]\nname = \"cnn\"\ntorchscript = \"cnn.pt\"\nweights = \"tuned.safetensors\"\n\n"
             "[[model]]\nname = \"mlp\"\ncheckpoint = \"mlp.safetensors\"\n\n[[model]]\nname = \"none\"\n");
  CliResult r = run(model_hub_pipeline(R"({ manifest = "models.toml", only = ["cnn", "mpl"] })"));
  const std::string manifest_at = at("\"models.toml\"");
  expect_problem(r, manifest_at,
                 "node 'embed': parameter 'manifest': " + path("models.toml") + ":4:11: model 'cnn': weights " + path("tuned.safetensors") +
                     ": no such file");
  EXPECT_THAT(r.err, HasSubstr(manifest_at + ": error: node 'embed': parameter 'manifest': " + path("models.toml") +
                               ":8:14: model 'mlp': checkpoint " + path("mlp.safetensors") + ": no such file"));
  EXPECT_THAT(r.err, HasSubstr("model 'none' must name exactly one of checkpoint, torchscript or onnx (0 given)"));
  EXPECT_THAT(r.err,
              HasSubstr(at("[\"cnn\"") + ": error: node 'embed': parameter 'only': no model 'mpl' in the hub (did you mean 'mlp'?)"));
  EXPECT_THAT(r.err, HasSubstr("4 problems found"));
}

TEST_F(DataChecks, AModelHubGivenNeitherWayIsAProblemBeforeRunning) {
  CliResult r = run(model_hub_pipeline("{}"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("node 'embed': no models: connect the `models` input or give the `manifest` parameter"));
  EXPECT_FALSE(fs::exists(dir_ / "out" / "run.json"));
}

}  // namespace
