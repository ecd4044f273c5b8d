// Tuning TorchScript models against PyTorch's autograd on the same batch (make_torch_models.py):
// gradients of full, partial and LoRA tuning, LoRA folded against unfolded, the diagonal Fisher
// (exact, sampled, values) against a per-sample, per-class autograd loop, and a tuned model saved
// by caulk loaded back in PyTorch (check_tuned_in_pytorch.py) and in caulk.
#include <gtest/gtest.h>

#include <cstdlib>

#include "caulk/error.hpp"
#include "caulk/io/npy.hpp"
#include "temp_dir.hpp"
#include "torch_test_support.hpp"

namespace caulk::models {
namespace {

using testing::npy_floats;
using testing::npy_matrix;
using testing::npy_values;
using testing::NpyBatch;
using testing::read;
using testing::relative_error;

class TorchScriptTuning : public testing::TorchModels {
 protected:
  // The CNN with a new 5-class head holding the reference's head weights.
  std::unique_ptr<Model> cnn_with_head(const NpyBatch& x) {
    auto model = open("cnn");
    model->run(x.batch.slice(0, 1), true, false);  // learns the feature size
    model->replace_head(5, OutputKind::Logits, 11);
    model->write_parameter("head.weight", npy_floats(file("ref/head_weight.npy")));
    model->write_parameter("head.bias", npy_floats(file("ref/head_bias.npy")));
    return model;
  }

  // Gradients of sum(features * gf) + sum(outputs * go) against the reference folder's files.
  void expect_gradients(Model& model, const NpyBatch& x, const std::string& gf, const std::string& go, const std::string& folder) {
    auto pass = model.forward(x.batch);
    const RowMatrixF d_features = npy_matrix(file(gf)), d_outputs = npy_matrix(file(go));
    Gradients g;
    model.backward(*pass, &d_features, &d_outputs, g);
    EXPECT_EQ(g.names, model.trainable());
    for (std::size_t k = 0; k < g.names.size(); ++k)
      EXPECT_LT(relative_error(g.values[k], npy_values(file(folder + "/" + g.names[k] + ".npy"))), 1e-5) << g.names[k];
  }
};

TEST_F(TorchScriptTuning, NewHeadIsSeededLikeNnLinear) {
  const NpyBatch x(file("x_cnn.npy"));
  auto model = open("cnn");
  EXPECT_THROW(model->replace_head(5, OutputKind::Logits, 11), Error);  // feature size unknown yet
  model->run(x.batch, true, false);
  model->replace_head(5, OutputKind::Logits, 11);
  EXPECT_EQ(model->head_parameters(), (std::vector<std::string>{"head.weight", "head.bias"}));
  // caulk's documented generator, reimplemented in Python, predicts every value.
  EXPECT_EQ(read(*model, "head.weight"), npy_floats(file("ref/head_init_weight.npy")));
  EXPECT_EQ(read(*model, "head.bias"), npy_floats(file("ref/head_init_bias.npy")));
  EXPECT_EQ(model->output_dim(), 5);
  const auto names = testing::names_of(model->parameters());
  EXPECT_EQ(names.back(), "head.bias");
}

TEST_F(TorchScriptTuning, FullAndPartialGradientsArePyTorchAutograd) {
  const NpyBatch x(file("x_cnn.npy"));
  auto model = cnn_with_head(x);
  EXPECT_EQ(model->trainable().size(), 12u);  // every parameter, as PyTorch's
  expect_gradients(*model, x, "ref/gf.npy", "ref/go.npy", "grad_cnn");
  model->set_trainable({"conv2.weight", "conv2.bias", "proj.weight", "proj.bias", "head.weight", "head.bias"});
  expect_gradients(*model, x, "ref/gf.npy", "ref/go.npy", "grad_cnn");
  EXPECT_THROW(model->set_trainable({"layer9.weight"}), Error);
}

TEST_F(TorchScriptTuning, PartialResNetGradientsArePyTorchAutograd) {
  const NpyBatch x(file("x_res.npy"));
  auto model = open("resnet18");
  model->run(x.batch.slice(0, 1), true, false);
  model->replace_head(3, OutputKind::Logits, 5);
  model->write_parameter("head.weight", npy_floats(file("ref/resnet_head_weight.npy")));
  model->write_parameter("head.bias", npy_floats(file("ref/resnet_head_bias.npy")));
  std::vector<std::string> train;
  for (const auto& p : model->parameters())
    if (p.name.rfind("layer4.", 0) == 0 || p.name.rfind("head.", 0) == 0) train.push_back(p.name);
  model->set_trainable(train);
  EXPECT_EQ(train.size(), 17u);
  expect_gradients(*model, x, "ref/resnet_gf.npy", "ref/resnet_go.npy", "grad_resnet");
}

TEST_F(TorchScriptTuning, LoraGradientsArePyTorchAutogradAndFoldingKeepsPredictions) {
  const NpyBatch x(file("x_cnn.npy"));
  auto model = cnn_with_head(x);
  const Outputs before = model->run(x.batch, true, true);
  const auto factors = model->add_lora({"proj.weight", "conv2.weight"}, 2, 3.0, 4);
  EXPECT_EQ(factors, (std::vector<std::string>{"conv2.weight.lora_A", "conv2.weight.lora_B", "proj.weight.lora_A", "proj.weight.lora_B"}));
  EXPECT_EQ(model->trainable(), (std::vector<std::string>{"conv2.weight.lora_A", "conv2.weight.lora_B", "proj.weight.lora_A",
                                                          "proj.weight.lora_B", "head.weight", "head.bias"}));
  // B = 0: the model is unchanged at start; A is drawn like nn.Linear (bound 1/sqrt(in)).
  const Outputs start = model->run(x.batch, true, true);
  EXPECT_EQ(start.outputs, before.outputs);
  for (float a : read(*model, "conv2.weight.lora_A")) EXPECT_LE(std::abs(a), 1 / std::sqrt(72.f));
  for (float b : read(*model, "proj.weight.lora_B")) EXPECT_EQ(b, 0.f);

  for (const auto& f : factors) model->write_parameter(f, npy_floats(file("lora/" + f + ".npy")));
  const Outputs lora = model->run(x.batch, true, true);
  EXPECT_LT(relative_error(lora.features, npy_matrix(file("ref/lora_features.npy"))), 1e-5);
  EXPECT_LT(relative_error(lora.outputs, npy_matrix(file("ref/lora_outputs.npy"))), 1e-5);
  expect_gradients(*model, x, "ref/gf.npy", "ref/go.npy", "grad_lora");

  // A copy is independent of the original.
  auto copy = model->clone();
  EXPECT_EQ(copy->run(x.batch, true, true).outputs, lora.outputs);
  copy->write_parameter("proj.weight.lora_B", std::vector<float>(64, 0.f));
  EXPECT_NE(copy->run(x.batch, true, true).outputs, lora.outputs);
  EXPECT_EQ(model->run(x.batch, true, true).outputs, lora.outputs);

  model->fold_lora();
  const Outputs folded = model->run(x.batch, true, true);
  EXPECT_LT(relative_error(folded.outputs, lora.outputs), 1e-5);
  EXPECT_LT(relative_error(folded.features, lora.features), 1e-5);
  EXPECT_EQ(model->parameters().size(), 12u);
  EXPECT_EQ(model->trainable(), (std::vector<std::string>{"head.weight", "head.bias"}));
}

TEST_F(TorchScriptTuning, TunedModelLoadsInPyTorchAndBackInCaulk) {
  caulk::testing::TempDir work;
  const NpyBatch x(file("x_cnn.npy"));
  auto model = cnn_with_head(x);
  model->add_lora({"proj.weight", "conv2.weight"}, 2, 3.0, 4);
  for (const auto& f : model->trainable())
    if (f.find(".lora_") != std::string::npos) model->write_parameter(f, npy_floats(file("lora/" + f + ".npy")));
  model->save(work / "tuned.pt");  // LoRA folded on the way
  model->fold_lora();
  save_weights(*model, work / "tuned.safetensors");
  const Outputs out = model->run(x.batch, true, true);
  io::write_npy(work / "caulk_features.npy", out.features);
  io::write_npy(work / "caulk_outputs.npy", out.outputs);

  const std::string command = std::string("/usr/bin/python3 ") + CAULK_MODELS_TEST_SOURCE "/check_tuned_in_pytorch.py " +
                              testing::torch_models().string() + " " + work.path().string();
  EXPECT_EQ(std::system(command.c_str()), 0) << command;

  // Back in caulk: the original file with the tuned weights (the head comes with them), and the
  // tuned TorchScript file itself.
  auto back = open("cnn", "embed", work / "tuned.safetensors");
  EXPECT_EQ(back->head_parameters(), (std::vector<std::string>{"head.weight", "head.bias"}));
  EXPECT_LT(relative_error(back->run(x.batch, false, true).outputs, out.outputs), 1e-6);
  ModelSource source;
  source.name = "saved";
  source.torchscript = work / "tuned.pt";
  source.feature_method = "embed";
  auto saved = open_model(source);
  EXPECT_LT(relative_error(saved->run(x.batch, false, true).outputs, out.outputs), 1e-6);
}

// Without a feature method the features are forward's output; a head on them is saved as a
// wrapper module (forward = head(backbone(x)), features = backbone(x)).
TEST_F(TorchScriptTuning, HeadOnForwardsOutputIsSavedAsAWrapper) {
  caulk::testing::TempDir work;
  const NpyBatch x(file("x_cnn.npy"));
  auto model = open("cnn", "");
  model->run(x.batch, true, false);
  model->replace_head(3, OutputKind::Logits, 2);
  const Outputs out = model->run(x.batch, true, true);
  EXPECT_LT(relative_error(out.features, npy_matrix(file("ref/cnn_logits.npy"))), 1e-5);
  model->save(work / "wrapped.pt");
  ModelSource source;
  source.name = "wrapped";
  source.torchscript = work / "wrapped.pt";
  source.feature_method = "features";
  auto saved = open_model(source);
  const Outputs back = saved->run(x.batch, true, true);
  EXPECT_LT(relative_error(back.outputs, out.outputs), 1e-6);
  EXPECT_LT(relative_error(back.features, out.features), 1e-6);
  EXPECT_EQ(saved->parameters().front().name, "backbone.conv1.weight");
}

TEST_F(TorchScriptTuning, FisherIsAPerSamplePerClassAutogradLoop) {
  const NpyBatch x(file("x_cnn.npy"));
  auto model = open("cnn");
  model->set_trainable({"fc.weight"});
  // The classes of a sample in one vectorised backward pass (vmap), and one pass per class.
  for (const auto& [sampled, passes] : {std::pair{false, "batched"}, {false, "loop"}, {true, "batched"}, {true, "loop"}}) {
    SCOPED_TRACE(std::string(sampled ? "sampled, " : "exact, ") + passes);
    setenv("CAULK_TORCH_FISHER", passes, 1);
    const FisherDiagonal f = model->fisher_diagonal(x.batch, sampled, 7);
    unsetenv("CAULK_TORCH_FISHER");
    EXPECT_EQ(f.names, testing::names_of(model->parameters()));
    for (std::size_t k = 0; k < f.names.size(); ++k)
      EXPECT_LT(
          relative_error(f.values[k], npy_values(file(std::string(sampled ? "fisher_sampled/" : "fisher_cnn/") + f.names[k] + ".npy"))),
          1e-5)
          << f.names[k];
  }
  EXPECT_EQ(model->trainable(), (std::vector<std::string>{"fc.weight"}));  // restored
  // The interface's generic loop over forward/backward agrees.
  const FisherDiagonal generic = model->Model::fisher_diagonal(x.batch, false, 0);
  for (std::size_t k = 0; k < generic.names.size(); ++k)
    EXPECT_LT(relative_error(generic.values[k], npy_values(file("fisher_cnn/" + generic.names[k] + ".npy"))), 1e-5) << generic.names[k];
}

TEST_F(TorchScriptTuning, FisherOfAValuesHeadSumsOverOutputs) {
  const NpyBatch x(file("x_cnn.npy"));
  auto model = open("cnn");
  model->run(x.batch.slice(0, 1), true, false);
  model->replace_head(3, OutputKind::Values, 1);
  model->write_parameter("head.weight", npy_floats(file("ref/values_head_weight.npy")));
  model->write_parameter("head.bias", npy_floats(file("ref/values_head_bias.npy")));
  const FisherDiagonal f = model->fisher_diagonal(x.batch, false, 0);
  for (std::size_t k = 0; k < f.names.size(); ++k)
    EXPECT_LT(relative_error(f.values[k], npy_values(file("fisher_values/" + f.names[k] + ".npy"))), 1e-5) << f.names[k];
  EXPECT_THROW(model->fisher_diagonal(x.batch, true, 0), Error);
}

}  // namespace
}  // namespace caulk::models
