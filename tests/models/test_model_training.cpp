// The generic trainer over the model interface (caulk/models/training.hpp) against the MLP's own
// trainer (caulk/mlp/training.hpp, tested against hand-worked steps and finite differences): on
// an MLP behind the interface, the same seed and options take the same steps (minibatch order,
// SGD with momentum and decay on weights only, AdamW, early stopping, the L-BFGS probe), so the
// arithmetic the TorchScript family trains with is the MLP trainer's.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "caulk/glob.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/models/mlp_model.hpp"
#include "caulk/models/training.hpp"
#include "model_test_support.hpp"

namespace caulk::models {
namespace {

using testing::read;
using testing::relative_error;

mlp::Model<float> small_mlp(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  const auto random = [&](int r, int c, float scale) {
    mlp::Mat<float> m(r, c);
    for (int j = 0; j < c; ++j)
      for (int i = 0; i < r; ++i) m(i, j) = scale * nd(rng);
    return m;
  };
  mlp::Model<float> m;
  m.activation = mlp::Activation::Tanh;
  m.output = mlp::Output::Softmax;
  const std::vector<int> widths{6, 5, 4, 7};
  for (std::size_t l = 0; l + 1 < widths.size(); ++l)
    m.layers.push_back({random(widths[l + 1], widths[l], 0.6f), random(widths[l + 1], 1, 0.3f)});
  m.feature_layer = 1;
  return m;
}

// n samples of 6 inputs in 3 classes, as both trainers take them.
struct Data {
  mlp::Samples columns;
  TrainingSamples rows;
};

Data random_data(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  Data d;
  RowMatrixF x(n, 6);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = nd(rng);
  for (int i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % 3);
    x(i, c) += 1.5f;  // learnable
    d.columns.y.classes.push_back(c);
  }
  d.columns.X = x.transpose();
  d.rows.shape = {n, 6};
  d.rows.data.resize(static_cast<std::size_t>(x.size()) * sizeof(float));
  std::memcpy(d.rows.data.data(), x.data(), d.rows.data.size());
  d.rows.classes = d.columns.y.classes;
  return d;
}

// The same tuning run by both trainers: the MLP's (prepare_tuning, mlp::train) and the generic one
// on the MLP behind the interface (replace_head, set_trainable, models::train).
void expect_same_training(mlp::PeftMode mode, const mlp::TrainOptions& o) {
  const auto pretrained = small_mlp(3);
  const Data train = random_data(40, 4), validation = random_data(15, 5);
  mlp::PeftOptions peft;
  peft.mode = mode;
  peft.outputs = 3;
  peft.partial_layers = 2;
  peft.seed = 21;
  mlp::TuningSetup setup = mlp::prepare_tuning(pretrained, peft);
  const mlp::TrainReport want = mlp::train(setup.model, setup.trainable, train.columns, &validation.columns, o);

  MlpModel model("m", "m.safetensors", pretrained);
  model.replace_head(3, OutputKind::Logits, 21);
  model.set_trainable(setup.trainable_names);
  ASSERT_EQ(model.trainable(), setup.trainable_names);
  const mlp::TrainReport got = models::train(model, train.rows, &validation.rows, o);

  EXPECT_EQ(got.epochs, want.epochs);
  EXPECT_EQ(got.best_epoch, want.best_epoch);
  EXPECT_EQ(got.stopped_early, want.stopped_early);
  EXPECT_NEAR(got.train_loss, want.train_loss, 1e-6 * want.train_loss);
  EXPECT_NEAR(got.validation_loss, want.validation_loss, 1e-6 * want.validation_loss);
  const MlpModel reference("r", "r", setup.model);
  for (const auto& p : model.parameters()) EXPECT_LT(relative_error(read(model, p.name), read(reference, p.name)), 1e-5) << p.name;
}

TEST(ModelTraining, AdamWStepsAreTheMlpTrainers) {
  mlp::TrainOptions o;
  o.optimizer = "adam";
  o.learning_rate = 0.02;
  o.weight_decay = 0.01;
  o.epochs = 12;
  o.batch_size = 8;
  o.patience = 3;
  o.schedule = "cosine";
  o.seed = 9;
  expect_same_training(mlp::PeftMode::Full, o);
}

TEST(ModelTraining, SgdStepsWithDecayOnWeightsAreTheMlpTrainers) {
  mlp::TrainOptions o;
  o.optimizer = "sgd";
  o.learning_rate = 0.05;
  o.momentum = 0.9;
  o.weight_decay = 0.05;
  o.epochs = 6;
  o.batch_size = 7;  // a last, smaller minibatch
  o.patience = 0;
  o.seed = 2;
  expect_same_training(mlp::PeftMode::Partial, o);
}

TEST(ModelTraining, LbfgsProbeIsTheMlpProbe) {
  mlp::TrainOptions o;
  o.optimizer = "lbfgs";
  o.weight_decay = 0.01;
  expect_same_training(mlp::PeftMode::LinearProbe, o);
}

TEST(ModelTraining, GlobsMatchNamesWithDots) {
  EXPECT_TRUE(glob_matches("layer4.*", "layer4.1.conv2.weight"));
  EXPECT_TRUE(glob_matches("*.weight", "fc.weight"));
  EXPECT_TRUE(glob_matches("layer?.0.*", "layer3.0.bn1.bias"));
  EXPECT_TRUE(glob_matches("fc.bias", "fc.bias"));
  EXPECT_TRUE(glob_matches("*", ""));
  EXPECT_FALSE(glob_matches("layer4.*", "layer3.1.conv2.weight"));
  EXPECT_FALSE(glob_matches("*.weight", "fc.bias"));
  EXPECT_FALSE(glob_matches("fc", "fc.bias"));
  EXPECT_FALSE(glob_matches("layer?.0.*", "layer10.0.bn1.bias"));
}

}  // namespace
}  // namespace caulk::models
