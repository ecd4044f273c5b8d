// The tuners' terms on model outputs (tuners/algorithms/output_terms.hpp), which TorchScript
// targets train with, against the MLP's own terms (BTuningLoss, DistillationLoss: tested against
// finite differences in test_btuning.cpp and test_distillation_aggregate.cpp): on an MLP behind
// the model interface, the generic trainer with the output term takes the MLP trainer's steps with
// its term, so the gradient through the features (B-Tuning) and the logits (distillation) is right.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "caulk/mlp/peft.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/models/mlp_model.hpp"
#include "caulk/models/training.hpp"
#include "tuners/algorithms/btuning.hpp"
#include "tuners/algorithms/distillation.hpp"
#include "tuners/algorithms/output_terms.hpp"

namespace caulk::tuners {
namespace {

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

struct Problem {
  mlp::Samples columns;
  models::TrainingSamples rows;
  Matrix teacher;  // N x 3: teacher targets (B-Tuning) or soft targets (distillation)
};

Problem problem(int n, std::uint64_t seed, bool soft) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  Problem p;
  RowMatrixF x(n, 6);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = nd(rng);
  p.teacher.resize(n, 3);
  for (int i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % 3);
    x(i, c) += 1.5f;
    p.columns.y.classes.push_back(c);
    for (int k = 0; k < 3; ++k) p.teacher(i, k) = soft ? std::exp(0.5 * nd(rng)) : 0.5 * nd(rng) + (k == c);
    if (soft) p.teacher.row(i) /= p.teacher.row(i).sum();
  }
  p.columns.X = x.transpose();
  p.rows.shape = {n, 6};
  p.rows.data.resize(static_cast<std::size_t>(x.size()) * sizeof(float));
  std::memcpy(p.rows.data.data(), x.data(), p.rows.data.size());
  p.rows.classes = p.columns.y.classes;
  return p;
}

mlp::TrainOptions options() {
  mlp::TrainOptions o;
  o.optimizer = "adam";
  o.learning_rate = 0.02;
  o.weight_decay = 0.01;
  o.epochs = 6;
  o.batch_size = 8;
  o.patience = 0;
  o.seed = 4;
  return o;
}

// Both trainers from the same prepared model (full tuning, a new 3-class head, seed 21).
template <class MlpTerm>
void expect_same(const Problem& p, MlpTerm& mlp_term, models::OutputTerm& term) {
  const auto pretrained = small_mlp(3);
  mlp::PeftOptions peft;
  peft.mode = mlp::PeftMode::Full;
  peft.outputs = 3;
  peft.seed = 21;
  mlp::TuningSetup setup = mlp::prepare_tuning(pretrained, peft);
  const mlp::TrainReport want = mlp::train(setup.model, setup.trainable, p.columns, nullptr, options(), &mlp_term);

  models::MlpModel model("m", "m.safetensors", pretrained);
  model.replace_head(3, models::OutputKind::Logits, 21);
  model.set_trainable(setup.trainable_names);
  const mlp::TrainReport got = models::train(model, p.rows, nullptr, options(), &term);

  EXPECT_NEAR(got.train_loss, want.train_loss, 1e-5 * want.train_loss);
  const models::MlpModel reference("r", "r", setup.model);
  for (const auto& info : model.parameters()) {
    std::vector<float> a(static_cast<std::size_t>(info.size())), b(a.size());
    model.read_parameter(info.name, a);
    reference.read_parameter(info.name, b);
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, double(std::abs(a[i] - b[i])));
      scale = std::max(scale, double(std::abs(b[i])));
    }
    EXPECT_LT(worst / scale, 1e-5) << info.name;
  }
}

TEST(OutputTerms, BTuningThroughTheFeaturesIsTheMlpTerm) {
  for (const char* student : {"fixed", "refit"}) {
    SCOPED_TRACE(student);
    const Problem p = problem(30, 7, false);
    tune::BTuningLoss mlp_term(p.columns, p.teacher, 0.5, tune::parse_student_weights(student));
    Params params("t", {{"lambda", Value(0.5)}, {"tau", Value(0.1)}, {"student_weights", Value(std::string(student))}});
    const Json term{{"target", matrix_to_json(p.teacher)}, {"teachers", Json::array()}};
    auto generic = btuning_output_term(term, params, p.rows);
    expect_same(p, mlp_term, *generic);
  }
}

TEST(OutputTerms, DistillationOnTheLogitsIsTheMlpTerm) {
  const Problem p = problem(30, 8, true);
  tune::DistillationLoss mlp_term(p.teacher, p.columns.y.classes, 2.0, 0.7);
  Params params("t", {{"temperature", Value(2.0)}, {"alpha", Value(0.7)}});
  const Json term{{"soft", matrix_to_json(p.teacher)}, {"teachers", Json::array()}};
  auto generic = distill_output_term(term, params, p.rows);
  expect_same(p, mlp_term, *generic);
}

}  // namespace
}  // namespace caulk::tuners
