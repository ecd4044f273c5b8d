// The MLP runtime checked against independent computations: gradients of every layer, loss and
// tuning mode against central finite differences of the loss; the Fisher diagonal against finite
// differences of log p(y|x) per sample and class; the L-BFGS head against the evaluators' own
// logistic regression; checkpoints by round trip and by malformed files.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "caulk/error.hpp"
#include "caulk/io/safetensors.hpp"
#include "caulk/mlp/backprop.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/parallel.hpp"
#include "caulk/probe/linear_probe.hpp"
#include "temp_dir.hpp"
#include "caulk/mlp/training.hpp"

namespace caulk::mlp {
namespace {

Mat<double> random_matrix(Eigen::Index r, Eigen::Index c, std::mt19937_64& rng, double scale = 1.0) {
  std::normal_distribution<double> nd(0.0, scale);
  Mat<double> m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = nd(rng);
  return m;
}

Model<double> random_model(const std::vector<int>& widths, Activation act, Output out, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Model<double> m;
  m.activation = act;
  m.output = out;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    Dense<double> d;
    d.W = random_matrix(widths[l + 1], widths[l], rng, 1.0 / std::sqrt(double(widths[l])));
    d.b = random_matrix(widths[l + 1], 1, rng, 0.3);
    m.layers.push_back(d);
  }
  m.feature_layer = m.num_layers() - 2;
  return m;
}

void add_adapter_and_lora(Model<double>& m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Adapter<double> a;
  a.after = 0;
  const int h = m.layers[0].out();
  a.down = {random_matrix(2, h, rng, 0.5), random_matrix(2, 1, rng, 0.3)};
  a.up = {random_matrix(h, 2, rng, 0.5), random_matrix(h, 1, rng, 0.3)};  // non-zero: every path carries gradient
  m.adapters.push_back(a);
  for (int l : {0, m.num_layers() - 1}) {
    Lora<double> lo;
    lo.layer = l;
    lo.A = random_matrix(2, m.layers[l].in(), rng, 0.5);
    lo.B = random_matrix(m.layers[l].out(), 2, rng, 0.5);
    lo.scale = 1.5;
    m.loras.push_back(lo);
  }
  validate(m);
}

Targets<double> random_targets(const Model<double>& m, Eigen::Index n, std::mt19937_64& rng) {
  Targets<double> y;
  if (m.output == Output::Softmax) {
    for (Eigen::Index i = 0; i < n; ++i) y.classes.push_back(static_cast<int>(rng() % m.output_dim()));
  } else {
    y.values = random_matrix(m.output_dim(), n, rng);
  }
  return y;
}

double batch_loss(const Model<double>& m, const Mat<double>& X, const Targets<double>& y) {
  Trace<double> t;
  forward(m, X, &t);
  return loss_and_output_gradient<double>(m, t, y, double(X.cols()), nullptr);
}

// Every parameter's gradient against (L(theta + h) - L(theta - h)) / 2h, tensor by tensor, in
// relative norm. Only parameters marked in `trainable` are compared; the others must stay zero.
void expect_gradient_matches(const Model<double>& model, const std::vector<bool>& trainable, const std::string& what) {
  std::mt19937_64 rng(11);
  const Mat<double> X = random_matrix(model.input_dim(), 7, rng);
  const Targets<double> y = random_targets(model, 7, rng);
  Model<double> grad = zeros_like(model);
  accumulate_gradient(model, X, y, 7.0, trainable, grad);
  Model<double> probe = model;
  auto p = parameters(probe);
  auto g = parameters(grad);
  const double h = 1e-5;
  for (std::size_t k = 0; k < p.size(); ++k) {
    Vec<double> fd(p[k].size());
    for (std::size_t i = 0; i < p[k].size(); ++i) {
      const double keep = p[k].data[i];
      p[k].data[i] = keep + h;
      const double up = batch_loss(probe, X, y);
      p[k].data[i] = keep - h;
      const double down = batch_loss(probe, X, y);
      p[k].data[i] = keep;
      fd(i) = (up - down) / (2 * h);
    }
    Eigen::Map<const Vec<double>> analytic(g[k].data, g[k].size());
    if (!trainable.empty() && !trainable[k]) {
      EXPECT_EQ(analytic.norm(), 0.0) << what << ": untrained " << p[k].name << " got a gradient";
      continue;
    }
    ASSERT_GT(fd.norm(), 1e-8) << what << ": " << p[k].name << " has no gradient to check";
    EXPECT_LT((analytic - fd).norm() / fd.norm(), 1e-6) << what << ": " << p[k].name;
  }
}

TEST(MlpGradient, EveryLayerActivationAndLossMatchesFiniteDifferences) {
  for (Activation act : {Activation::Tanh, Activation::Gelu, Activation::Relu})
    for (Output out : {Output::Softmax, Output::Identity}) {
      Model<double> m = random_model({5, 6, 4, 3}, act, out, 3);
      add_adapter_and_lora(m, 4);
      expect_gradient_matches(m, {}, activation_name(act) + (out == Output::Softmax ? "/cross-entropy" : "/squared"));
    }
}

TEST(MlpGradient, EveryTuningModeTrainsExactlyItsParameters) {
  Model<double> base = random_model({5, 6, 4, 3}, Activation::Tanh, Output::Softmax, 5);
  for (const char* mode : {"linear_probe", "partial", "adapter", "lora", "full"}) {
    PeftOptions o;
    o.mode = parse_peft_mode(mode);
    o.outputs = 3;
    o.partial_layers = 2;
    o.rank = 2;
    o.seed = 9;
    TuningSetup s = prepare_tuning(base.cast<float>(), o);
    Model<double> m = s.model.cast<double>();
    // Zero-initialised factors (adapter up, LoRA B) pass no gradient to their partner at the start;
    // give them values so the check covers every path.
    std::mt19937_64 rng(6);
    for (auto& a : m.adapters) a.up.W = random_matrix(a.up.W.rows(), a.up.W.cols(), rng, 0.5);
    for (auto& lo : m.loras) lo.B = random_matrix(lo.B.rows(), lo.B.cols(), rng, 0.5);
    expect_gradient_matches(m, s.trainable, mode);
  }
}

TEST(MlpTuning, AdapterAndLoraLeaveTheFeaturesUnchangedAtStart) {
  Model<double> base = random_model({5, 6, 4, 3}, Activation::Relu, Output::Softmax, 8);
  std::mt19937_64 rng(1);
  const Mat<float> X = random_matrix(5, 9, rng).cast<float>();
  const Mat<float> before = forward<float>(base.cast<float>(), X, nullptr, base.feature_layer);
  for (const char* mode : {"adapter", "lora"}) {
    PeftOptions o;
    o.mode = parse_peft_mode(mode);
    o.outputs = 2;
    o.rank = 3;
    TuningSetup s = prepare_tuning(base.cast<float>(), o);
    EXPECT_EQ(forward<float>(s.model, X, nullptr, s.model.feature_layer), before) << mode;
    EXPECT_EQ(s.model.output_dim(), 2);
  }
  PeftOptions bad;
  bad.mode = PeftMode::Partial;
  bad.partial_layers = 9;
  EXPECT_THROW(prepare_tuning(base.cast<float>(), bad), Error);
}

TEST(MlpTuning, FoldingLoraKeepsTheOutputs) {
  Model<double> m = random_model({4, 5, 3}, Activation::Gelu, Output::Softmax, 2);
  add_adapter_and_lora(m, 3);
  std::mt19937_64 rng(4);
  const Mat<double> X = random_matrix(4, 6, rng);
  const Model<float> f = m.cast<float>();
  const Model<float> folded = fold_lora(f);
  EXPECT_TRUE(folded.loras.empty());
  EXPECT_LT((forward<float>(folded, X.cast<float>()) - forward<float>(f, X.cast<float>())).cwiseAbs().maxCoeff(), 1e-5);
}

// F = (1/N) sum_i sum_c p(c|x_i) (d log p(c|x_i) / d theta)^2 with the derivative by central
// differences of the log-probability of each sample and class: nothing shared with backward().
TEST(MlpFisher, MatchesPerSamplePerClassFiniteDifferences) {
  for (Output out : {Output::Softmax, Output::Identity}) {
    Model<double> m = random_model({3, 4, 3}, Activation::Tanh, out, 21);
    add_adapter_and_lora(m, 22);
    std::mt19937_64 rng(23);
    const Mat<double> X = random_matrix(3, 5, rng);
    const Model<double> F = fisher_diagonal(m, X, 2);  // blocks of 2: exercises the lanes
    Model<double> probe = m;
    auto p = parameters(probe);
    auto f = parameters(F);
    const double h = 1e-6;
    for (std::size_t k = 0; k < p.size(); ++k)
      for (std::size_t e = 0; e < p[k].size(); ++e) {
        double expected = 0;
        for (Eigen::Index i = 0; i < X.cols(); ++i) {
          const Mat<double> x = X.col(i);
          const Vec<double> o0 = forward(m, x);
          for (Eigen::Index c = 0; c < o0.size(); ++c) {
            const double keep = p[k].data[e];
            p[k].data[e] = keep + h;
            const double up = forward(probe, x)(c, 0);
            p[k].data[e] = keep - h;
            const double down = forward(probe, x)(c, 0);
            p[k].data[e] = keep;
            if (out == Output::Softmax) {
              const double dlogp = (std::log(up) - std::log(down)) / (2 * h);
              expected += o0(c) * dlogp * dlogp;
            } else {
              const double df = (up - down) / (2 * h);  // Gaussian: E[(eps . df)^2] = sum_t df_t^2
              expected += df * df;
            }
          }
        }
        expected /= double(X.cols());
        EXPECT_NEAR(f[k].data[e], expected, 1e-6 * std::max(1.0, std::abs(expected))) << p[k].name << "[" << e << "]";
      }
  }
}

TEST(MlpTraining, LbfgsHeadMatchesAnIndependentLogisticRegression) {
  Model<double> m = random_model({6, 8, 3}, Activation::Tanh, Output::Softmax, 31);
  std::mt19937_64 rng(32);
  Samples data;
  data.X = random_matrix(6, 60, rng).cast<float>();
  for (int i = 0; i < 60; ++i) data.y.classes.push_back(i % 3);
  Model<float> model = m.cast<float>();
  TrainOptions o;
  o.optimizer = "lbfgs";
  o.weight_decay = 0.01;
  o.lbfgs_tolerance = 1e-10;
  fit_head_lbfgs(model, data, nullptr, o);

  // The evaluators' linear probe (its own objective code) on the same float features.
  const Mat<float> feats = forward<float>(model, data.X, nullptr, model.feature_layer);
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows = feats.transpose();
  probe::LinearProbeOptions lp;
  lp.l2 = 0.01;
  lp.gradient_tolerance = 1e-10;
  lp.max_iterations = 2000;
  const probe::LinearProbe ref = probe::fit_linear_probe(MatrixView::borrow(rows), data.y.classes, 3, lp);
  const Mat<double> W = model.layers.back().W.cast<double>();
  EXPECT_LT((W - ref.weights).norm() / ref.weights.norm(), 1e-4);
  // The biases are unpenalised and softmax ignores a common shift: compare them centred.
  const Vec<double> b = model.layers.back().b.cast<double>();
  const Vec<double> centred = b.array() - b.mean(), ref_centred = ref.bias.array() - ref.bias.mean();
  EXPECT_LT((centred - ref_centred).norm(), 1e-4 * std::max(1.0, ref_centred.norm()));
}

Samples toy_problem(std::uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  Samples s;
  s.X = random_matrix(4, n, rng).cast<float>();
  for (int i = 0; i < n; ++i) s.y.classes.push_back(s.X(0, i) + 0.5f * s.X(1, i) > 0 ? 1 : 0);
  return s;
}

TEST(MlpTraining, AdamAndSgdLearnAndAreDeterministicAcrossThreadCounts) {
  const Samples train_set = toy_problem(41, 600), val = toy_problem(42, 200);
  for (const char* opt : {"adam", "sgd"}) {
    TrainOptions o;
    o.optimizer = opt;
    o.learning_rate = std::string(opt) == "adam" ? 0.01 : 0.05;
    o.epochs = 15;
    o.batch_size = 300;  // two chunks per minibatch
    o.schedule = "cosine";
    o.weight_decay = 1e-4;
    o.seed = 5;
    Model<float> a = random_model({4, 16, 2}, Activation::Relu, Output::Softmax, 43).cast<float>();
    Model<float> b = a;
    const double start = mean_loss(a, val);
    const std::vector<bool> all(parameters(a).size(), true);
    const TrainReport ra = train(a, all, train_set, &val, o);
    {
      ThreadPool pool(2);
      ScopedPool scope(&pool);
      train(b, all, train_set, &val, o);
    }
    EXPECT_LT(ra.validation_loss, 0.5 * start) << opt;
    auto pa = parameters(a), pb = parameters(b);
    for (std::size_t k = 0; k < pa.size(); ++k)
      EXPECT_TRUE(std::equal(pa[k].data, pa[k].data + pa[k].size(), pb[k].data)) << opt << " " << pa[k].name;
  }
}

TEST(MlpTraining, EarlyStoppingKeepsTheBestEpoch) {
  // A tiny training set and a large rate: validation loss rises after a while.
  const Samples train_set = toy_problem(51, 12), val = toy_problem(52, 300);
  TrainOptions o;
  o.learning_rate = 0.05;
  o.epochs = 300;
  o.batch_size = 4;
  o.patience = 5;
  Model<float> m = random_model({4, 32, 2}, Activation::Relu, Output::Softmax, 53).cast<float>();
  const TrainReport r = train(m, std::vector<bool>(parameters(m).size(), true), train_set, &val, o);
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.epochs, r.best_epoch + o.patience);
  EXPECT_DOUBLE_EQ(r.validation_loss, *std::min_element(r.validation_curve.begin(), r.validation_curve.end()));
  EXPECT_NEAR(mean_loss(m, val), r.validation_loss, 1e-12);
}

TEST(MlpCheckpoint, RoundTripGivesIdenticalOutputs) {
  caulk::testing::TempDir dir;
  Model<double> m = random_model({5, 6, 4, 3}, Activation::Gelu, Output::Softmax, 61);
  add_adapter_and_lora(m, 62);
  const Model<float> f = m.cast<float>();
  save_model(dir.path() / "m.safetensors", f);
  const Model<float> back = load_model(dir.path() / "m.safetensors");
  std::mt19937_64 rng(63);
  const Mat<float> X = random_matrix(5, 10, rng).cast<float>();
  EXPECT_EQ(forward<float>(back, X), forward<float>(f, X));
  EXPECT_EQ(back.feature_layer, f.feature_layer);
  EXPECT_EQ(back.loras.size(), 2u);
  EXPECT_EQ(back.loras[0].scale, 1.5);

  // A delta over the pre-trained model: only the tuned tensors are written.
  PeftOptions o;
  o.mode = PeftMode::Lora;
  o.outputs = 2;
  o.rank = 2;
  const Model<float> base = random_model({5, 6, 4, 3}, Activation::Gelu, Output::Softmax, 64).cast<float>();
  save_model(dir.path() / "base.safetensors", base);
  TuningSetup s = prepare_tuning(base, o);
  for (auto& lo : s.model.loras) lo.B.setConstant(0.25f);
  save_delta(dir.path() / "tuned" / "delta.safetensors", s.model, s.trainable_names, dir.path() / "base.safetensors");
  const Model<float> loaded = load_model(dir.path() / "tuned" / "delta.safetensors");
  EXPECT_EQ(forward<float>(loaded, X), forward<float>(s.model, X));
  EXPECT_EQ(io::Checkpoint::open(dir.path() / "tuned" / "delta.safetensors").names().size(), s.trainable_names.size());
}

std::string load_error(const std::filesystem::path& p) {
  try {
    load_model(p);
  } catch (const DataError& e) {
    return e.what();
  }
  return "no error";
}

TEST(MlpCheckpoint, MalformedCheckpointsNameTheTensor) {
  caulk::testing::TempDir dir;
  const Model<float> m = random_model({3, 4, 2}, Activation::Relu, Output::Softmax, 71).cast<float>();
  save_model(dir.path() / "good.safetensors", m);
  const io::Checkpoint good = io::Checkpoint::open(dir.path() / "good.safetensors");
  auto rewrite = [&](const std::string& name, auto edit_tensors, std::map<std::string, std::string> meta) {
    std::vector<io::Tensor> tensors;
    for (const auto& n : good.names()) {
      io::Tensor t{n, good.info(n).dtype, good.info(n).shape, {}};
      auto b = good.bytes(n);
      t.data.assign(b.begin(), b.end());
      tensors.push_back(std::move(t));
    }
    edit_tensors(tensors);
    const auto path = dir.path() / name;
    io::write_safetensors(path, tensors, meta);
    return path;
  };
  const auto meta = good.metadata();
  auto keep = [](auto&) {};

  auto missing = rewrite(
      "missing.safetensors", [](auto& t) { t.erase(t.begin() + 1); }, meta);  // layers.0.weight
  EXPECT_NE(load_error(missing).find("tensor 'layers.0.weight' is missing"), std::string::npos) << load_error(missing);

  auto shape = rewrite(
      "shape.safetensors",
      [](auto& t) {
        for (auto& x : t)
          if (x.name == "layers.1.weight") x.shape = {4, 2};  // transposed: 2 x 4 expected
      },
      meta);
  EXPECT_NE(load_error(shape).find("layers.1.weight"), std::string::npos) << load_error(shape);

  auto extra = rewrite(
      "extra.safetensors",
      [](auto& t) {
        t.push_back({"head.weight", io::DType::F32, {1}, std::vector<std::byte>(4)});
      },
      meta);
  EXPECT_NE(load_error(extra).find("tensor 'head.weight' is not part of a caulk MLP"), std::string::npos) << load_error(extra);

  auto act_meta = meta;
  act_meta["activation"] = "swish";
  auto act = rewrite("act.safetensors", keep, act_meta);
  EXPECT_NE(load_error(act).find("unknown activation 'swish'"), std::string::npos) << load_error(act);
  EXPECT_NE(load_error(act).find("act.safetensors"), std::string::npos);

  auto feat_meta = meta;
  feat_meta["feature_layer"] = "1";
  auto feat = rewrite("feat.safetensors", keep, feat_meta);
  EXPECT_NE(load_error(feat).find("feature_layer"), std::string::npos) << load_error(feat);

  auto nan = rewrite(
      "nan.safetensors",
      [](auto& t) {
        const float v = std::nanf("");
        std::memcpy(t[0].data.data(), &v, 4);
      },
      meta);
  EXPECT_NE(load_error(nan).find("NaN"), std::string::npos) << load_error(nan);

  auto no_meta = rewrite("nometa.safetensors", keep, {});
  EXPECT_NE(load_error(no_meta).find("__metadata__ has no 'format'"), std::string::npos) << load_error(no_meta);
}

}  // namespace
}  // namespace caulk::mlp
