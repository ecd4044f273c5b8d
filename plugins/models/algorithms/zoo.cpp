#include "models/algorithms/zoo.hpp"

#include <fmt/format.h>

#include <cmath>

#include "caulk/error.hpp"
#include "caulk/metrics/prediction_metrics.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::mlp {

namespace {

using seeding::Normal;
using seeding::SeededUniform;

// Each random stream of the zoo, named by its purpose (and below by the split or model index), so
// the user's one seed gives independent streams (derive_seed, docs/architecture.md "Determinism").
enum Purpose : std::uint64_t {
  kTargetConcept = 1,
  kTargetSamples = 2,
  kSourceConcept = 3,
  kSourceSamples = 4,
  kHeldOutSamples = 5,
  kInitialWeights = 6,
  kPretraining = 7,
};

std::uint64_t stream(std::uint64_t seed, Purpose purpose, std::uint64_t index = 0) { return seeding::derive_seed(seed, purpose, index); }

struct Concept {
  Mat<double> G;  // K x P, the target's latent directions
  Mat<double> V;  // C x K, the target's class scores
};

Concept target_concept(const ZooOptions& o) {
  Normal n(stream(o.seed, kTargetConcept));
  // Scale 2/sqrt(P): the latent's pre-activation has standard deviation 2, well into tanh's bend.
  return {n.matrix(o.latent, o.inputs, 2.0 / std::sqrt(double(o.inputs))), n.matrix(o.classes, o.latent, 1.0)};
}

Samples sample_task(const Mat<double>& G_left, const Mat<double>& G_right, const Mat<double>& V, int count, double noise,
                    std::uint64_t seed, int inputs) {
  Normal n(seed);
  Samples s;
  const Mat<double> X = n.matrix(inputs, count, 1.0);
  s.X = X.cast<float>();
  for (int i = 0; i < count; ++i) {
    const Mat<double>& G = X(0, i) < 0 ? G_left : G_right;
    const Vec<double> u = (G * X.col(i)).array().tanh();
    Vec<double> score = V * u;
    for (Eigen::Index c = 0; c < score.size(); ++c) score(c) += noise * n.next();
    Eigen::Index best = 0;
    score.maxCoeff(&best);
    s.y.classes.push_back(static_cast<int>(best));
  }
  return s;
}

double accuracy(const Model<float>& m, const Samples& s) {
  const Mat<float> p = forward<float>(m, s.X);  // C x N
  return metrics::fraction_correct(metrics::predicted_classes(p.transpose().cast<double>()), s.y.classes);
}

}  // namespace

std::vector<ZooModelSpec> default_zoo_models() {
  using A = Activation;
  return {{"related_wide", 0.95, {64, 64}, "", A::Relu},    {"related_small", 0.95, {16}, "", A::Relu},
          {"partly_related", 0.7, {64, 32}, "", A::Gelu},   {"weakly_related", 0.4, {64, 32}, "", A::Relu},
          {"unrelated", 0.0, {64, 64}, "", A::Tanh},        {"left_expert", 1.0, {64, 32}, "left", A::Relu},
          {"right_expert", 1.0, {64, 32}, "right", A::Relu}};
}

ZooTask make_target_task(const ZooOptions& o) {
  const Concept c = target_concept(o);
  return {sample_task(c.G, c.G, c.V, o.train, o.label_noise, stream(o.seed, kTargetSamples, 0), o.inputs),
          sample_task(c.G, c.G, c.V, o.validation, o.label_noise, stream(o.seed, kTargetSamples, 1), o.inputs),
          sample_task(c.G, c.G, c.V, o.test, o.label_noise, stream(o.seed, kTargetSamples, 2), o.inputs)};
}

PretrainedModel pretrain_zoo_model(const ZooOptions& o, std::size_t index) {
  const ZooModelSpec& spec = o.models.at(index);
  if (spec.hidden.empty()) throw Error(fmt::format("zoo model '{}' needs at least one hidden layer", spec.name));
  if (spec.relatedness < 0 || spec.relatedness > 1)
    throw Error(fmt::format("zoo model '{}': relatedness {} is outside [0, 1]", spec.name, spec.relatedness));
  const Concept c = target_concept(o);
  Normal n(stream(o.seed, kSourceConcept, index));
  const Mat<double> R = n.matrix(o.latent, o.inputs, 2.0 / std::sqrt(double(o.inputs)));
  const Mat<double> V = n.matrix(o.source_classes, o.latent, 1.0);
  const double rho = spec.relatedness;
  const Mat<double> mixed = rho * c.G + std::sqrt(1 - rho * rho) * R;
  const Mat<double>& left = spec.region == "right" ? R : mixed;
  const Mat<double>& right = spec.region == "left" ? R : mixed;
  const Samples source = sample_task(left, right, V, o.source_samples, o.label_noise, stream(o.seed, kSourceSamples, index), o.inputs);
  const Samples held_out = sample_task(left, right, V, 1000, o.label_noise, stream(o.seed, kHeldOutSamples, index), o.inputs);

  // nn.Linear's initialisation, seeded per model.
  SeededUniform init(stream(o.seed, kInitialWeights, index));
  Model<float> m;
  m.activation = spec.activation;
  m.output = Output::Softmax;
  int in = o.inputs;
  std::vector<int> widths = spec.hidden;
  widths.push_back(o.source_classes);
  for (int w : widths) {
    Dense<float> d;
    d.W.resize(w, in);
    d.b.resize(w);
    const double bound = 1 / std::sqrt(double(in));
    for (Eigen::Index j = 0; j < d.W.cols(); ++j)
      for (Eigen::Index i = 0; i < d.W.rows(); ++i) d.W(i, j) = float(init.next(bound));
    for (Eigen::Index i = 0; i < d.b.size(); ++i) d.b(i) = float(init.next(bound));
    m.layers.push_back(std::move(d));
    in = w;
  }
  m.feature_layer = m.num_layers() - 2;
  validate(m);
  TrainOptions t;
  t.optimizer = "adam";
  t.learning_rate = 1e-3;
  t.epochs = o.epochs;
  t.batch_size = 64;
  t.patience = 0;
  t.seed = stream(o.seed, kPretraining, index);
  train(m, std::vector<bool>(parameters(m).size(), true), source, nullptr, t);
  const double acc = accuracy(m, held_out);
  return {std::move(m), acc};
}

}  // namespace caulk::mlp
