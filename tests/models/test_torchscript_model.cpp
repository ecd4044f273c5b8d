// TorchScript models run by caulk against PyTorch's own outputs of the same files (computed in
// Python by make_torch_models.py): a scripted and a traced CNN, a traced ResNet-18 and an int64
// token model; weights overriding parameters by name; and bad input of every kind, each a clear
// error naming the model and the file.
#include <gtest/gtest.h>

#include <thread>

#include "caulk/error.hpp"
#include "torch_test_support.hpp"

namespace caulk::models {
namespace {

using testing::npy_matrix;
using testing::NpyBatch;
using testing::relative_error;

class TorchScriptRun : public testing::TorchModels {};

TEST_F(TorchScriptRun, FeaturesAndLogitsArePyTorchs) {
  for (const auto& [name, input] :
       {std::pair{"cnn", "x_cnn.npy"}, {"cnn_traced", "x_cnn.npy"}, {"resnet18", "x_res.npy"}, {"tokens", "x_tok.npy"}}) {
    SCOPED_TRACE(name);
    auto model = open(name);
    EXPECT_EQ(model->family(), "torchscript");
    EXPECT_EQ(model->feature_dim(), -1);  // unknown until it runs
    const NpyBatch x(file(input));
    const Outputs out = model->run(x.batch, true, true);
    EXPECT_LT(relative_error(out.features, npy_matrix(file(std::string("ref/") + name + "_features.npy"))), 1e-5);
    EXPECT_LT(relative_error(out.outputs, npy_matrix(file(std::string("ref/") + name + "_logits.npy"))), 1e-5);
    EXPECT_EQ(model->feature_dim(), out.features.cols());
    EXPECT_EQ(model->output_dim(), out.outputs.cols());
  }
}

TEST_F(TorchScriptRun, ParametersAreNamedParameters) {
  auto model = open("resnet18");
  const auto names = testing::names_of(model->parameters());
  ASSERT_EQ(names.size(), 62u);  // torchvision's resnet18 has 62 parameter tensors
  EXPECT_EQ(names.front(), "conv1.weight");
  EXPECT_EQ(names[names.size() - 2], "fc.weight");
  EXPECT_NE(std::find(names.begin(), names.end(), "layer4.1.conv2.weight"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "layer2.0.downsample.0.weight"), names.end());
  EXPECT_EQ(model->parameters().back().shape, (std::vector<std::int64_t>{1000}));
}

TEST_F(TorchScriptRun, WithoutAFeatureMethodFeaturesAreForwardsOutput) {
  auto model = open("cnn", "");
  const NpyBatch x(file("x_cnn.npy"));
  const Outputs out = model->run(x.batch, true, true);
  const RowMatrixF logits = npy_matrix(file("ref/cnn_logits.npy"));
  EXPECT_LT(relative_error(out.features, logits), 1e-5);
  EXPECT_LT(relative_error(out.outputs, logits), 1e-5);
}

TEST_F(TorchScriptRun, ConcurrentRunsGiveTheSameBits) {
  auto model = open("cnn");
  const NpyBatch x(file("x_cnn.npy"));
  const Outputs alone = model->run(x.batch, true, true);
  std::vector<Outputs> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results) threads.emplace_back([&] { r = model->run(x.batch, true, true); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    EXPECT_EQ(r.features, alone.features);
    EXPECT_EQ(r.outputs, alone.outputs);
  }
  // One sample at a time gives the same numbers as the batch, up to rounding.
  const Outputs first = model->run(x.batch.slice(2, 1), true, true);
  EXPECT_LT(relative_error(RowMatrixF(first.outputs), RowMatrixF(alone.outputs.middleRows(2, 1))), 1e-6);
}

TEST_F(TorchScriptRun, WeightsOverrideParametersByName) {
  auto model = open("cnn", "embed", "weights_ok.safetensors");
  const NpyBatch x(file("x_cnn.npy"));
  EXPECT_LT(relative_error(model->run(x.batch, false, true).outputs, npy_matrix(file("ref/weights_logits.npy"))), 1e-5);

  std::string text = error_of([&] { open("cnn", "embed", "weights_unknown.safetensors"); });
  EXPECT_NE(text.find("weights_unknown.safetensors: weights for model 'cnn'"), std::string::npos) << text;
  EXPECT_NE(text.find("'conv9.weight'"), std::string::npos) << text;
  EXPECT_NE(text.find("named like 'bn1.bias'"), std::string::npos) << text;
  text = error_of([&] { open("cnn", "embed", "weights_shape.safetensors"); });
  EXPECT_NE(text.find("'fc.bias' is [11] in the file but [10] in the model"), std::string::npos) << text;
}

TEST_F(TorchScriptRun, BadFilesAreClearErrors) {
  std::string text = error_of([&] { open("not_torchscript"); });
  EXPECT_NE(text.find("not_torchscript.pt: model 'not_torchscript': not a TorchScript file"), std::string::npos) << text;
  EXPECT_NE(text.find("torch.jit.save"), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;  // one line, no libtorch backtrace

  text = error_of([&] { open("missing"); });
  EXPECT_NE(text.find("missing.pt: model 'missing': the file does not exist"), std::string::npos) << text;

  text = error_of([&] { open("cnn", "features"); });
  EXPECT_NE(text.find("feature_method 'features' is not a method of the module (its methods: "), std::string::npos) << text;
  EXPECT_NE(text.find("embed"), std::string::npos) << text;
}

TEST_F(TorchScriptRun, InputsTheModelCannotTakeAreClearErrors) {
  for (const char* name : {"cnn", "cnn_traced"}) {
    SCOPED_TRACE(name);
    auto model = open(name);
    std::vector<float> flat(5 * 64, 0.f);
    std::string text = error_of([&] { model->run({io::DType::F32, {5, 64}, flat.data()}, true, true); });
    EXPECT_NE(text.find(std::string(name) + ".pt: model '" + name + "': it failed on an input of shape [5, 64] (float32): "),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("input"), std::string::npos) << text;  // libtorch's own line, e.g. "Expected 4-dimensional input ..."
    EXPECT_EQ(text.find("Traceback"), std::string::npos) << text;
    EXPECT_EQ(text.find('\n'), std::string::npos) << text;

    std::vector<std::int64_t> ids(5 * 64, 1);
    text = error_of([&] { model->run({io::DType::I64, {5, 1, 8, 8}, ids.data()}, true, true); });
    EXPECT_NE(text.find("it failed on an input of shape [5, 1, 8, 8] (int64): "), std::string::npos) << text;
    EXPECT_EQ(text.find('\n'), std::string::npos) << text;

    std::vector<double> doubles(5 * 64);
    text = error_of([&] { model->run({io::DType::F64, {5, 1, 8, 8}, doubles.data()}, true, true); });
    EXPECT_NE(text.find("inputs must be float32 or int64, not F64"), std::string::npos) << text;

    // The same errors from a forward pass with autograd.
    EXPECT_THROW(model->forward({io::DType::F32, {5, 64}, flat.data()}), DataError);
  }
}

}  // namespace
}  // namespace caulk::models
