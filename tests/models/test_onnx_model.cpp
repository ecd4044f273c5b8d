// The ONNX family (libs/models_onnx, docs/models.md "ONNX models") through open_model, which loads
// libcaulk_models_onnx.so as any caulk process would, and through `caulk run`: features and logits
// against PyTorch's own outputs of the exported modules (make_onnx_models.py, run by the fixture
// models.make_onnx_models with Debian's /usr/bin/python3), batch sizes the export did not fix,
// concurrent runs, --jobs 1 = --jobs 2, a mixed hub, and every error a user meets.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "caulk/error.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/models/hub.hpp"
#include "cli.hpp"
#include "ranking_nodes.hpp"
#include "model_test_support.hpp"
#include "run_json.hpp"

using namespace caulk;
using namespace caulk::models;
using namespace caulk::models::testing;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

fs::path onnx_models() { return CAULK_ONNX_MODELS_DIR; }
fs::path file(const std::string& name) { return onnx_models() / name; }

class OnnxModels : public ::testing::Test {
 protected:
  void SetUp() override {
    if (fs::exists(file("SKIP"))) {
      std::ifstream in(file("SKIP"));
      GTEST_SKIP() << std::string((std::istreambuf_iterator<char>(in)), {});
    }
    if (!fs::exists(file("cnn.onnx"))) GTEST_SKIP() << "no models in " << onnx_models() << ": run models.make_onnx_models first";
  }

  static ModelSource source(const std::string& onnx, const std::string& feature_output = "features") {
    ModelSource s;
    s.name = "m";
    s.onnx = file(onnx);
    s.feature_output = feature_output;
    return s;
  }
  static std::unique_ptr<Model> open(const std::string& onnx, const std::string& feature_output = "features") {
    return open_model(source(onnx, feature_output));
  }
  template <class F>
  static std::string error_of(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no error";
  }
  // Features and logits of `model` on x within 1e-5 relative of PyTorch's `ref` outputs.
  static void expect_like_pytorch(const Model& model, const InputBatch& x, const std::string& ref) {
    const Outputs out = model.run(x, true, true);
    EXPECT_LT(relative_error(out.features, npy_matrix(file("ref/" + ref + "_features.npy"))), 1e-5);
    EXPECT_LT(relative_error(out.outputs, npy_matrix(file("ref/" + ref + "_logits.npy"))), 1e-5);
  }
};

TEST_F(OnnxModels, ACnnGivesPyTorchsFeaturesAndLogits) {
  const auto m = open("cnn.onnx");  // exported on 5 samples, run on 7
  EXPECT_EQ(m->family(), "onnx");
  EXPECT_EQ(m->input_shape(), (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_EQ(m->input_dtype(), io::DType::F32);
  NpyBatch x(file("x7.npy"));
  expect_like_pytorch(*m, x.batch, "cnn");
  EXPECT_EQ(m->feature_dim(), 32);
  EXPECT_EQ(m->output_dim(), 10);
  // Asking for one of the two gives the same numbers.
  const Outputs both = m->run(x.batch, true, true);
  EXPECT_EQ(m->run(x.batch, true, false).features, both.features);
  EXPECT_EQ(m->run(x.batch, false, true).outputs, both.outputs);
}

TEST_F(OnnxModels, ADynamicBatchRunsOnAnyNumberOfSamples) {
  const auto m = open("cnn_dynamic.onnx");
  NpyBatch x(file("x7.npy"));
  expect_like_pytorch(*m, x.batch, "cnn");
  const RowMatrixF whole = m->run(x.batch, true, false).features;
  for (std::int64_t count : {1, 3})
    EXPECT_LT(relative_error(m->run(x.batch.slice(2, count), true, false).features, RowMatrixF(whole.middleRows(2, count))), 1e-6);
}

// x.view(x.size(0), -1) bakes the export's batch size into a Reshape: OpenCV 4.6 then fails on
// any other size, and caulk runs the batch in chunks of the exported size (or one by one).
TEST_F(OnnxModels, ABatchSizeBakedIntoTheGraphRunsInChunks) {
  NpyBatch x(file("x7.npy"));
  expect_like_pytorch(*open("cnn_view.onnx"), x.batch, "cnn");          // exported on 4: 4 + 3 padded
  expect_like_pytorch(*open("cnn_view_dynamic.onnx"), x.batch, "cnn");  // runs only on 1 sample
  const auto m = open("cnn_view.onnx");
  expect_like_pytorch(*m, x.batch, "cnn");  // again, now that 7 is known to fail as a whole
}

TEST_F(OnnxModels, FeaturesMayBeAnyNodesOutput) {
  const auto m = open("cnn_logits_only.onnx", "/Tanh_output_0");
  NpyBatch x(file("x7.npy"));
  expect_like_pytorch(*m, x.batch, "cnn");
}

TEST_F(OnnxModels, AResNet18GivesPyTorchsNumbers) {
  NpyBatch x(file("x_res.npy"));
  expect_like_pytorch(*open("resnet18.onnx"), x.batch, "resnet18");
}

TEST_F(OnnxModels, Int64InputsRunAsTheirValues) {
  const auto m = open("ids.onnx");
  EXPECT_EQ(m->input_dtype(), io::DType::I64);
  NpyBatch x(file("x_ids.npy"));
  expect_like_pytorch(*m, x.batch, "ids");
}

TEST_F(OnnxModels, ConcurrentRunsGiveTheSameNumbers) {
  for (const char* name : {"cnn_dynamic.onnx", "cnn_view.onnx"}) {
    const auto m = open(name);
    NpyBatch x(file("x7.npy"));
    const Outputs alone = m->run(x.batch, true, true);
    std::vector<Outputs> results(4);
    std::vector<std::thread> threads;
    for (auto& r : results)
      threads.emplace_back([&] {
        for (int k = 0; k < 5; ++k) r = m->run(x.batch, true, true);
      });
    for (auto& t : threads) t.join();
    for (const auto& r : results) {
      EXPECT_EQ(r.features, alone.features) << name;
      EXPECT_EQ(r.outputs, alone.outputs) << name;
    }
    const auto copy = m->clone();
    EXPECT_EQ(copy->run(x.batch, true, true).features, alone.features);
  }
}

TEST_F(OnnxModels, BadFilesAndNamesAreClearErrors) {
  EXPECT_THAT(error_of([] { open("not_onnx.onnx"); }),
              AllOf(HasSubstr("not_onnx.onnx"), HasSubstr("model 'm': not an ONNX model"), HasSubstr("torch.onnx.export")));
  EXPECT_THAT(error_of([] { open("absent.onnx"); }), HasSubstr("the file does not exist"));
  // Embedding's Gather by input ids is beyond OpenCV 4.6's importer: its own first useful line.
  const std::string gather = error_of([] { open("embedding.onnx", ""); });
  EXPECT_THAT(gather, AllOf(HasSubstr("embedding.onnx"), HasSubstr("cannot import it (opset 13)"), HasSubstr("Gather"),
                            HasSubstr("docs/models.md")));
  EXPECT_THAT(gather, Not(HasSubstr("modules/dnn/src"))) << "OpenCV's source paths are not for users";
  EXPECT_THAT(error_of([] { open("cnn.onnx", "featurs"); }),
              AllOf(HasSubstr("feature_output 'featurs' is not an output of the graph (did you mean 'features'?)"),
                    HasSubstr("its outputs: logits, features")));
  // Operators OpenCV 4.6 computes wrongly are refused by name instead of giving wrong numbers.
  EXPECT_THAT(error_of([] { open("cumsum.onnx"); }),
              AllOf(HasSubstr("its node '/CumSum' (CumSum) cannot run"), HasSubstr("export the model without it")));
  EXPECT_THAT(error_of([] { open("avg_pool_excluding_padding.onnx"); }),
              AllOf(HasSubstr("(AveragePool) cannot run"), HasSubstr("count_include_pad=False")));
  ModelSource s = source("cnn.onnx");
  s.feature_method = "embed";
  EXPECT_THAT(error_of([&] { open_model(s); }), HasSubstr("feature_method applies to TorchScript models"));
  s = source("cnn.onnx");
  s.weights = file("tuned.safetensors");
  EXPECT_THAT(error_of([&] { open_model(s); }), HasSubstr("ONNX models run for inference only"));
  s = ModelSource{};
  s.name = "ts";
  s.torchscript = file("cnn.pt");
  s.feature_output = "features";
  EXPECT_THAT(error_of([&] { open_model(s); }), HasSubstr("feature_output applies to ONNX models"));
}

TEST_F(OnnxModels, InputsOfAnotherShapeOrDtypeAreClearErrors) {
  const auto m = open("cnn.onnx");
  std::vector<float> small(2 * 7 * 7, 0.5f);
  InputBatch x{io::DType::F32, {2, 1, 7, 7}, small.data()};
  EXPECT_THAT(error_of([&] { m->run(x, true, true); }),
              AllOf(HasSubstr("cnn.onnx"), HasSubstr("model 'm'"),
                    HasSubstr("takes inputs of shape [5, 1, 8, 8] (as exported), not [2, 1, 7, 7]")));
  // The same with a dynamic batch axis: only the batch may differ.
  const auto dynamic = open("cnn_dynamic.onnx");
  EXPECT_THAT(error_of([&] { dynamic->run(x, true, true); }),
              AllOf(HasSubstr("cnn_dynamic.onnx"), HasSubstr("takes inputs of shape [?, 1, 8, 8] (as exported), not [2, 1, 7, 7]")));
  std::vector<std::int64_t> ids(2 * 64, 1);
  InputBatch as_ids{io::DType::I64, {2, 1, 8, 8}, ids.data()};
  EXPECT_THAT(error_of([&] { m->run(as_ids, true, true); }), HasSubstr("its input 'x' is FLOAT, but it was given int64 inputs"));
}

TEST_F(OnnxModels, TuningAndParametersAreRefused) {
  const auto m = open("cnn.onnx");
  const std::string expected =
      fmt::format("model 'm' is an ONNX model ({}): ONNX models run for inference only", file("cnn.onnx").string());
  EXPECT_TRUE(m->parameters().empty());
  EXPECT_THAT(error_of([&] {
                std::vector<float> v(10);
                m->read_parameter("fc.bias", v);
              }),
              HasSubstr(expected));
  EXPECT_THAT(error_of([&] { m->set_trainable({}); }), HasSubstr(expected));
  EXPECT_THAT(error_of([&] { m->replace_head(3, OutputKind::Logits, 1); }), HasSubstr(expected));
  EXPECT_THAT(error_of([&] { m->add_lora({"fc.weight"}, 2, 0, 1); }), HasSubstr(expected));
  NpyBatch x(file("x7.npy"));
  EXPECT_THAT(error_of([&] { m->forward(x.batch); }), HasSubstr(expected));
  EXPECT_THAT(error_of([&] { m->fisher_diagonal(x.batch, false, 1); }), HasSubstr(expected));
  EXPECT_THAT(error_of([&] { m->save(file("never.onnx")); }), HasSubstr(expected));
  EXPECT_FALSE(fs::exists(file("never.onnx")));
  // checkpoint_of (every node that tunes, merges or analyses) says the same.
  EXPECT_THAT(error_of([&] { checkpoint_of(source("cnn.onnx")); }), HasSubstr(expected));
}

// The library is loaded on the first ONNX entry (ctest runs each test in its own process).
TEST(OnnxLibrary, AMissingLibraryIsAClearError) {
  caulk::testing::TempDir dir;
  setenv("CAULK_MODELS_ONNX", (dir / "libcaulk_models_onnx.so").c_str(), 1);
  ModelSource s;
  s.name = "cnn";
  s.onnx = dir / "cnn.onnx";
  s.where = "hub.toml:7:1";
  const std::string text = [&]() -> std::string {
    try {
      open_model(s);
    } catch (const DataError& e) {
      return e.what();
    }
    return "no error";
  }();
  unsetenv("CAULK_MODELS_ONNX");
  EXPECT_THAT(text, AllOf(HasSubstr("cnn.onnx: hub.toml:7:1: model 'cnn': ONNX models need libcaulk_models_onnx.so"),
                          HasSubstr("install libopencv-dnn-dev")));
}

// --- through `caulk run`

class OnnxPipeline : public OnnxModels {
 protected:
  std::string embed(const std::string& hub, const std::string& nodes = "", const std::string& inputs = "task_{}_inputs.npy") const {
    const auto path = [&](const char* split) {
      const std::string f = fmt::format(fmt::runtime(inputs), split);
      return fs::path(f).is_absolute() ? f : file(f).string();
    };
    const std::string train = path("train"), test = path("test");
    return fmt::format(R"([pipeline]
name = "onnx"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = {{ train = "{0}/task_train_labels.npy", test = "{0}/task_test_labels.npy" }}, inputs = {{ train = "{1}", test = "{2}" }} }}
[[node]]
id = "embed"
type = "adapter.models"
inputs = {{ data = "task" }}
params = {{ manifest = "{3}", batch_size = 5 }}
{4})",
                       onnx_models().string(), train, test, fs::path(hub).is_absolute() ? hub : file(hub).string(), nodes);
  }
  caulk::testing::CliResult run(const std::string& pipeline, const std::vector<std::string>& extra = {}, const std::string& out = "out") {
    dir_.write("p.toml", pipeline);
    std::vector<std::string> args{"run", (dir_ / "p.toml").string(), "--out", (dir_ / out).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return caulk::testing::run_caulk(args);
  }
  fs::path out(const std::string& rel, const std::string& folder = "out") const { return dir_ / folder / rel; }
  caulk::testing::TempDir dir_;
};

const char* const kRankers = caulk::testing::kLogmeAndLeepOfEmbed;

TEST_F(OnnxPipeline, AnOnnxHubIsRankedTheSameWithOneOrTwoJobs) {
  const std::string p = embed("hub.toml", kRankers);
  auto a = run(p, {"--jobs", "1"}, "one");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = run(p, {"--jobs", "2"}, "two");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  for (const char* model : {"cnn", "cnn_view", "cnn_inner"})
    for (const char* split : {"train", "test"}) {
      SCOPED_TRACE(fmt::format("{} {}", model, split));
      const auto features = fmt::format("embed/{}.{}.features.npy", model, split);
      const auto probs = fmt::format("embed/{}.{}.source_probs.npy", model, split);
      EXPECT_LT(relative_error(npy_matrix(out(features, "one")), npy_matrix(file(fmt::format("ref/task_{}_features.npy", split)))), 1e-5);
      EXPECT_LT(relative_error(npy_matrix(out(probs, "one")), npy_matrix(file(fmt::format("ref/task_{}_probs.npy", split)))), 1e-5);
      EXPECT_EQ(caulk::testing::read_file(out(features, "one")), caulk::testing::read_file(out(features, "two")));
      EXPECT_EQ(caulk::testing::read_file(out(probs, "one")), caulk::testing::read_file(out(probs, "two")));
    }
  const auto strip = [&](const std::string& folder) {
    std::string s = caulk::testing::comparable_run_json(nlohmann::json::parse(caulk::testing::read_file(out("run.json", folder)))).dump();
    const std::string prefix = (dir_ / folder).string();
    for (std::size_t at; (at = s.find(prefix)) != std::string::npos;) s.replace(at, prefix.size(), "OUT");
    return s;
  };
  EXPECT_EQ(strip("one"), strip("two"));
  EXPECT_THAT(strip("one"), AllOf(HasSubstr("\"family\":\"onnx\""), HasSubstr("logme"), HasSubstr("leep")));
}

TEST_F(OnnxPipeline, AMixedHubRunsBothFamilies) {
  auto r = run(embed("mixed_hub.toml", kRankers), {"--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The same CNN as ONNX and as TorchScript: both PyTorch's features.
  for (const char* model : {"cnn_onnx", "cnn_torchscript"})
    EXPECT_LT(
        relative_error(npy_matrix(out(fmt::format("embed/{}.test.features.npy", model))), npy_matrix(file("ref/task_test_features.npy"))),
        1e-5)
        << model;
}

TEST_F(OnnxPipeline, BadEntriesAndInputsFailClearly) {
  dir_.write("bad_hub.toml", fmt::format("[hub]\nname = \"bad\"\n[[model]]\nname = \"cnn\"\nonnx = \"{}\"\nfeature_output = \"feature\"\n",
                                         file("cnn.onnx").string()));
  auto r = run(embed((dir_ / "bad_hub.toml").string()));
  EXPECT_THAT(r.exit_code, ::testing::AnyOf(1, 2));
  EXPECT_THAT(r.err, HasSubstr("did you mean 'features'?"));
  dir_.write("junk_hub.toml",
             fmt::format("[hub]\nname = \"bad\"\n[[model]]\nname = \"junk\"\nonnx = \"{}\"\n", file("not_onnx.onnx").string()));
  r = run(embed((dir_ / "junk_hub.toml").string()));
  EXPECT_THAT(r.exit_code, ::testing::AnyOf(1, 2));
  EXPECT_THAT(r.err, AllOf(HasSubstr("not_onnx.onnx"), HasSubstr("not an ONNX model")));
  // Rows of 6 values given to the image CNN: samples of shape [6], not [1, 8, 8].
  io::write_npy(dir_ / "rows_train.npy", RowMatrixF(RowMatrixF::Ones(24, 6)));
  io::write_npy(dir_ / "rows_test.npy", RowMatrixF(RowMatrixF::Ones(17, 6)));
  r = run(embed("hub.toml", "", (dir_ / "rows_{}.npy").string()));
  EXPECT_THAT(r.exit_code, ::testing::AnyOf(1, 2));
  EXPECT_THAT(r.err, AllOf(HasSubstr("cnn_logits_only.onnx"),
                           HasSubstr("takes samples of shape [1, 8, 8], but these inputs have samples of shape [6]")));
}

TEST_F(OnnxPipeline, TuningOrAnalysingAnOnnxHubIsRefused) {
  for (const char* node : {"tune.peft", "analysis.fisher"}) {
    SCOPED_TRACE(node);
    auto r = run(embed("hub.toml", fmt::format(R"([[node]]
id = "refused"
type = "{}"
inputs = {{ data = "task" }}
params = {{ manifest = "{}/hub.toml", only = ["cnn"] }}
)",
                                               node, onnx_models().string())));
    EXPECT_THAT(r.exit_code, ::testing::AnyOf(1, 2));
    EXPECT_THAT(r.err, AllOf(HasSubstr("model 'cnn' is an ONNX model"), HasSubstr("ONNX models run for inference only"),
                             HasSubstr("export it as TorchScript")));
  }
}

}  // namespace
