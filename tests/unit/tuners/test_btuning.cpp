// B-Tuning checked against independent computations: the teacher target against the formula
// written out by hand, pi against the softmax computed directly, the gradient of the B-Tuning term
// against central finite differences, one optimizer step against the plain gradient plus the
// finite-difference gradient of the term, and lambda = 0 against plain tuning, bit for bit.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "caulk/error.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/mlp/training.hpp"
#include "caulk/transferability/logme.hpp"
#include "tuners/algorithms/btuning.hpp"

namespace caulk::tune {
namespace {

using mlp::Mat;
using mlp::Model;

Mat<double> random_matrix(Eigen::Index r, Eigen::Index c, std::mt19937_64& rng, double scale = 1.0) {
  std::normal_distribution<double> nd(0.0, scale);
  Mat<double> m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = nd(rng);
  return m;
}

// A small "pre-trained" model: input -> hidden -> features -> source head.
Model<float> pretrained_model(const std::vector<int>& widths, mlp::Activation act, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Model<float> m;
  m.activation = act;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l)
    m.layers.push_back({random_matrix(widths[l + 1], widths[l], rng, 1.0 / std::sqrt(double(widths[l]))).cast<float>(),
                        random_matrix(widths[l + 1], 1, rng, 0.3).cast<float>()});
  m.feature_layer = m.num_layers() - 2;
  return m;
}

// Samples whose class depends on the inputs, so training has something to learn.
mlp::Samples make_samples(int inputs, int n, int classes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  mlp::Samples s;
  s.X = random_matrix(inputs, n, rng).cast<float>();
  const Mat<double> V = random_matrix(classes, inputs, rng);
  for (int i = 0; i < n; ++i) {
    Eigen::Index c;
    (V * s.X.col(i).cast<double>()).maxCoeff(&c);
    s.y.classes.push_back(static_cast<int>(c));
  }
  return s;
}

bool same_bits(const Model<float>& a, const Model<float>& b) {
  auto pa = mlp::parameters(a), pb = mlp::parameters(b);
  if (pa.size() != pb.size()) return false;
  for (std::size_t k = 0; k < pa.size(); ++k)
    if (pa[k].size() != pb[k].size() || std::memcmp(pa[k].data, pb[k].data, pa[k].size() * sizeof(float)) != 0) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------

TEST(BTuningTeachers, TargetOfTwoTeachersEqualsTheFormula) {
  // Teacher a: 2 features; teacher b: 3 features; 2 classes; 3 samples.
  Teacher a{"a", Matrix(3, 2), Matrix(2, 2)}, b{"b", Matrix(3, 3), Matrix(2, 3)};
  a.features << 1, 2,  //
      0, 1,            //
      -1, 3;
  a.weights << 0.5, -1,  //
      2, 0.25;
  b.features << 1, 0, 2,  //
      3, -1, 0,           //
      0.5, 0.5, 0.5;
  b.weights << 1, 1, 0,  //
      0, -2, 1;
  const std::vector<double> pi{0.25, 0.75};
  const Matrix t = teacher_target({a, b}, pi);
  ASSERT_EQ(t.rows(), 3);
  ASSERT_EQ(t.cols(), 2);
  // Sample 0, class 0 by hand: a: 1*0.5 + 2*(-1) = -1.5; b: 1*1 + 0*1 + 2*0 = 1;
  // 0.25 * -1.5 + 0.75 * 1 = 0.375.
  EXPECT_DOUBLE_EQ(t(0, 0), 0.375);
  // Every entry: sum_k pi_k sum_d F_k[i][d] M_k[c][d], written out.
  for (int i = 0; i < 3; ++i)
    for (int c = 0; c < 2; ++c) {
      double expect = 0;
      for (int d = 0; d < 2; ++d) expect += pi[0] * a.features(i, d) * a.weights(c, d);
      for (int d = 0; d < 3; ++d) expect += pi[1] * b.features(i, d) * b.weights(c, d);
      EXPECT_NEAR(t(i, c), expect, 1e-14) << i << "," << c;
    }
}

TEST(BTuningTeachers, MismatchedTeachersAreNamed) {
  Teacher a{"alpha", Matrix::Ones(3, 2), Matrix::Ones(2, 2)};
  Teacher rows{"beta", Matrix::Ones(4, 2), Matrix::Ones(2, 2)};
  Teacher width{"gamma", Matrix::Ones(3, 5), Matrix::Ones(2, 4)};
  Teacher classes{"delta", Matrix::Ones(3, 2), Matrix::Ones(3, 2)};
  auto message = [](const std::vector<Teacher>& ts) {
    try {
      teacher_target(ts, std::vector<double>(ts.size(), 1.0 / double(ts.size())));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({a, rows}).find("'beta' has 4 rows"), std::string::npos) << message({a, rows});
  EXPECT_NE(message({a, width}).find("'gamma' has 5 feature columns but LogME weights for 4"), std::string::npos);
  EXPECT_NE(message({a, classes}).find("'delta'"), std::string::npos);
  EXPECT_THROW(teacher_target({a}, {0.5, 0.5}), Error);
  EXPECT_THROW(teacher_target({}, {}), Error);
}

TEST(BTuningTeachers, PiIsTheSoftmaxOfLogMEOverTau) {
  const std::vector<double> logme{0.31, 0.12, 0.25};
  const double tau = 0.1;
  const std::vector<double> pi = teacher_weights(logme, tau);
  double z = 0;
  for (double l : logme) z += std::exp(l / tau);
  double sum = 0;
  for (std::size_t k = 0; k < logme.size(); ++k) {
    EXPECT_NEAR(pi[k], std::exp(logme[k] / tau) / z, 1e-15);
    sum += pi[k];
  }
  EXPECT_NEAR(sum, 1.0, 1e-15);
  // Scores far beyond exp's range (LogME / tau = 5000) still give the exact ratios.
  const std::vector<double> big = teacher_weights({500.0, 499.9, 400.0}, 0.1);
  EXPECT_NEAR(big[0] + big[1] + big[2], 1.0, 1e-15);
  EXPECT_NEAR(big[1] / big[0], std::exp(-1.0), 1e-12);
  EXPECT_EQ(big[2], 0.0);  // exp(-1000) underflows: that teacher has no say
  // A large tau tends to equal weights.
  for (double p : teacher_weights(logme, 1e9)) EXPECT_NEAR(p, 1.0 / 3, 1e-9);
  EXPECT_THROW(teacher_weights(logme, 0), Error);
  EXPECT_THROW(teacher_weights({1.0, std::nan("")}, 0.1), Error);
}

TEST(BTuningTeachers, TopKIsBestFirstWithStableTies) {
  EXPECT_EQ(top_k({0.1, 0.5, 0.3, 0.5}, 3), (std::vector<std::size_t>{1, 3, 2}));
  EXPECT_EQ(top_k({0.1, 0.5}, 5), (std::vector<std::size_t>{1, 0}));
  EXPECT_THROW(top_k({0.1}, 0), Error);
}

TEST(BTuningStudent, LogMEWeightsAreTheRankersPosteriorMeans) {
  std::mt19937_64 rng(3);
  const Mat<double> F = random_matrix(5, 40, rng);  // D x N
  mlp::Targets<float> y;
  for (int i = 0; i < 40; ++i) y.classes.push_back(i % 3);
  const Matrix w = logme_weights(F.cast<float>(), y, 3, true);
  const Matrix rows = F.cast<float>().cast<double>().transpose();
  const rank::LogMEResult r = rank::logme_classification(rank::FeatureStats(MatrixView::borrow(rows)), y.classes, 3);
  ASSERT_EQ(w.rows(), 3);
  ASSERT_EQ(w.cols(), 5);
  EXPECT_LT((w - r.weights).cwiseAbs().maxCoeff(), 1e-12);
  // The posterior mean is the ridge solution (F^T F + (alpha/beta) I)^-1 F^T y_c of each column.
  for (int c = 0; c < 3; ++c) {
    Vector yc(40);
    for (int i = 0; i < 40; ++i) yc[i] = y.classes[i] == c ? 1 : 0;
    // A ridge solution satisfies F^T F m - F^T y = -t m for one t > 0.
    const Vector m = w.row(c).transpose();
    const Vector residual = rows.transpose() * rows * m - rows.transpose() * yc;
    const double t_fit = -residual.dot(m) / m.squaredNorm();
    EXPECT_GT(t_fit, 0);
    EXPECT_LT((residual + t_fit * m).norm(), 1e-8 * (1 + residual.norm()));
    // That t is the last iterate's alpha / beta, within the fixed point's stopping rule (1e-3).
    if (r.iterations[c] < 11) {
      EXPECT_NEAR(t_fit / (r.alpha[c] / r.beta[c]), 1.0, 1.1e-3);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The B-Tuning term's gradient against central finite differences, in double.

struct TermProblem {
  Model<double> model;
  Mat<double> X, M, T;
  double lambda = 3.0, divisor = 7.0;
};

TermProblem term_problem(bool with_modules) {
  std::mt19937_64 rng(11);
  TermProblem p;
  Model<float> base = pretrained_model({4, 6, 5, 3}, mlp::Activation::Tanh, 5);
  mlp::PeftOptions o;
  o.mode = with_modules ? mlp::PeftMode::Lora : mlp::PeftMode::Full;
  o.outputs = 3;
  o.seed = 2;
  Model<float> tuned = mlp::prepare_tuning(base, o).model;
  p.model = tuned.cast<double>();
  if (with_modules) {
    // Non-zero LoRA B and an adapter with a non-zero up-projection, so every path carries gradient.
    for (auto& lo : p.model.loras) lo.B = random_matrix(lo.B.rows(), lo.B.cols(), rng, 0.5);
    mlp::Adapter<double> a;
    a.after = 1;
    a.down = {random_matrix(2, 5, rng, 0.5), random_matrix(2, 1, rng, 0.3)};
    a.up = {random_matrix(5, 2, rng, 0.5), random_matrix(5, 1, rng, 0.3)};
    p.model.adapters.push_back(a);
    mlp::validate(p.model);
  }
  p.X = random_matrix(4, 6, rng);
  p.M = random_matrix(3, 5, rng);
  p.T = random_matrix(3, 6, rng);
  return p;
}

double term_value(const TermProblem& p, const Model<double>& m) {
  mlp::Trace<double> t;
  mlp::forward(m, p.X, &t);
  return btuning_term<double>(m, t, p.M, p.T, p.lambda, p.divisor, {}, nullptr);
}

void check_term_gradient(const TermProblem& p) {
  mlp::Trace<double> t;
  mlp::forward(p.model, p.X, &t);
  Model<double> grad = mlp::zeros_like(p.model);
  const double value = btuning_term<double>(p.model, t, p.M, p.T, p.lambda, p.divisor, {}, &grad);
  // The value is the formula written out: lambda / divisor * sum_i ||M f_i - t_i||^2.
  const Mat<double> f = mlp::forward<double>(p.model, p.X, nullptr, p.model.feature_layer);
  double direct = 0;
  for (Eigen::Index i = 0; i < p.X.cols(); ++i)
    for (Eigen::Index c = 0; c < 3; ++c) {
      double s = -p.T(c, i);
      for (Eigen::Index d = 0; d < 5; ++d) s += p.M(c, d) * f(d, i);
      direct += s * s;
    }
  EXPECT_NEAR(value, p.lambda / p.divisor * direct, 1e-12 * (1 + value));

  Model<double> probe = p.model;
  auto params = mlp::parameters(probe);
  auto g = mlp::parameters(grad);
  const int head = p.model.num_layers() - 1;
  std::size_t checked = 0;
  for (std::size_t k = 0; k < params.size(); ++k) {
    for (std::size_t e = 0; e < params[k].size(); ++e) {
      const double keep = params[k].data[e], h = 1e-6;
      params[k].data[e] = keep + h;
      const double up = term_value(p, probe);
      params[k].data[e] = keep - h;
      const double down = term_value(p, probe);
      params[k].data[e] = keep;
      const double fd = (up - down) / (2 * h);
      EXPECT_NEAR(g[k].data[e], fd, 1e-6 * (1 + std::abs(fd))) << params[k].name << "[" << e << "]";
      ++checked;
    }
    if (params[k].name == fmt::format("layers.{}.weight", head) || params[k].name == fmt::format("layers.{}.bias", head)) {
      for (std::size_t e = 0; e < g[k].size(); ++e) EXPECT_EQ(g[k].data[e], 0.0) << "the head does not touch the features";
    }
  }
  EXPECT_GT(checked, 50u);
}

TEST(BTuningGradient, TermMatchesFiniteDifferencesFullModel) { check_term_gradient(term_problem(false)); }

TEST(BTuningGradient, TermMatchesFiniteDifferencesThroughLoraAndAdapter) { check_term_gradient(term_problem(true)); }

TEST(BTuningGradient, OnlyTrainableParametersReceiveGradient) {
  TermProblem p = term_problem(false);
  mlp::Trace<double> t;
  mlp::forward(p.model, p.X, &t);
  const auto count = mlp::parameters(p.model).size();
  std::vector<bool> mask(count, false);
  mask[2] = mask[3] = true;  // layers.1 only
  Model<double> grad = mlp::zeros_like(p.model), all = mlp::zeros_like(p.model);
  btuning_term<double>(p.model, t, p.M, p.T, p.lambda, p.divisor, mask, &grad);
  btuning_term<double>(p.model, t, p.M, p.T, p.lambda, p.divisor, {}, &all);
  auto g = mlp::parameters(grad), a = mlp::parameters(all);
  for (std::size_t k = 0; k < count; ++k)
    for (std::size_t e = 0; e < g[k].size(); ++e) EXPECT_EQ(g[k].data[e], mask[k] ? a[k].data[e] : 0.0) << g[k].name;
}

TEST(BTuningGradient, HeadThatIsNotOneLayerIsRefused) {
  TermProblem p = term_problem(false);
  p.model.feature_layer = 0;
  mlp::Trace<double> t;
  mlp::forward(p.model, p.X, &t);
  EXPECT_THROW(btuning_term<double>(p.model, t, p.M, p.T, 1, 1, {}, nullptr), Error);
}

// ---------------------------------------------------------------------------------------------
// Training

struct TrainProblem {
  mlp::TuningSetup setup;
  mlp::Samples train, validation;
  Matrix targets;  // N x C teacher targets
};

TrainProblem train_problem(mlp::PeftMode mode, int n) {
  TrainProblem p;
  const Model<float> base = pretrained_model({6, 12, 8, 5}, mlp::Activation::Relu, 21);
  mlp::PeftOptions o;
  o.mode = mode;
  o.outputs = 3;
  o.partial_layers = 2;
  o.seed = 4;
  p.setup = mlp::prepare_tuning(base, o);
  p.train = make_samples(6, n, 3, 8);
  p.validation = make_samples(6, 60, 3, 9);
  // Teacher targets: a fixed linear map of the inputs (any N x C matrix serves).
  std::mt19937_64 rng(5);
  p.targets = p.train.X.cast<double>().transpose() * random_matrix(6, 3, rng, 0.3);
  return p;
}

mlp::TrainOptions options(const std::string& optimizer, int batch) {
  mlp::TrainOptions o;
  o.optimizer = optimizer;
  o.learning_rate = 5e-3;
  o.weight_decay = 1e-3;
  o.epochs = 6;
  o.batch_size = batch;
  o.patience = 2;
  o.seed = 17;
  return o;
}

TEST(BTuningTraining, LambdaZeroIsPlainTuningBitForBit) {
  // Partial and LoRA tuning, Adam and SGD, one chunk per minibatch and several (batch 300 splits
  // into 2 chunks), with early stopping on a validation set.
  // The student's weights fixed or refitted every epoch.
  for (auto mode : {mlp::PeftMode::Partial, mlp::PeftMode::Lora, mlp::PeftMode::Full})
    for (const char* optimizer : {"adam", "sgd"})
      for (int batch : {32, 300})
        for (auto student : {StudentWeights::Fixed, StudentWeights::Refit}) {
          TrainProblem p = train_problem(mode, 400);
          Model<float> plain = p.setup.model, zero = p.setup.model;
          const auto o = options(optimizer, batch);
          const mlp::TrainReport a = mlp::train(plain, p.setup.trainable, p.train, &p.validation, o);
          BTuningLoss term(p.train, p.targets, 0.0, student);
          const mlp::TrainReport b = mlp::train(zero, p.setup.trainable, p.train, &p.validation, o, &term);
          EXPECT_TRUE(same_bits(plain, zero)) << mlp::peft_mode_name(mode) << " " << optimizer << " batch " << batch;
          EXPECT_EQ(a.epochs, b.epochs);
          EXPECT_EQ(a.validation_curve, b.validation_curve);
          // And a positive lambda does change the weights (the term is wired in).
          Model<float> tuned = p.setup.model;
          BTuningLoss on(p.train, p.targets, 10.0, student);
          mlp::train(tuned, p.setup.trainable, p.train, &p.validation, o, &on);
          EXPECT_FALSE(same_bits(plain, tuned));
        }
}

TEST(BTuningTraining, OneStepIsPlainGradientPlusTheTermsFiniteDifferenceGradient) {
  TrainProblem p = train_problem(mlp::PeftMode::Full, 50);
  const double lambda = 2.0, lr = 0.05;
  BTuningLoss term(p.train, p.targets, lambda);
  term.start_epoch(p.setup.model, 0);
  const Matrix M = term.student_weights();
  // A shuffled minibatch: positions 7, 3, 41, 0, 19 of the training samples.
  const std::vector<std::size_t> index{7, 3, 41, 0, 19};
  const mlp::Samples batch = p.train.subset(index);
  mlp::TrainOptions o = options("sgd", 5);
  o.momentum = 0;
  o.weight_decay = 0;
  Model<float> stepped = p.setup.model;
  mlp::Optimizer opt(stepped, o);
  opt.step(stepped, p.setup.trainable, batch, lr, index, &term);

  // Independently: the cross-entropy gradient, and central differences (in double) of the term
  // with M_s held at the epoch's value and the targets of the minibatch's own samples.
  Model<float> ce = mlp::zeros_like(p.setup.model);
  mlp::accumulate_gradient<float>(p.setup.model, batch.X, batch.y, 5.0, p.setup.trainable, ce);
  const Model<double> start = p.setup.model.cast<double>();
  Mat<double> T(3, 5);
  for (int j = 0; j < 5; ++j) T.col(j) = p.targets.row(static_cast<Eigen::Index>(index[j])).transpose();
  const Mat<double> X = batch.X.cast<double>();
  auto value = [&](const Model<double>& m) {
    const Mat<double> f = mlp::forward<double>(m, X, nullptr, m.feature_layer);
    return lambda / 5.0 * (M * f - T).squaredNorm();
  };
  Model<double> probe = start;
  auto pp = mlp::parameters(probe);
  auto ps = mlp::parameters(stepped);
  auto pc = mlp::parameters(ce);
  auto p0 = mlp::parameters(start);
  for (std::size_t k = 0; k < pp.size(); ++k)
    for (std::size_t e = 0; e < pp[k].size(); ++e) {
      const double keep = pp[k].data[e], h = 1e-5;
      pp[k].data[e] = keep + h;
      const double up = value(probe);
      pp[k].data[e] = keep - h;
      const double down = value(probe);
      pp[k].data[e] = keep;
      const double g = double(pc[k].data[e]) + (up - down) / (2 * h);
      const double expect = p0[k].data[e] - lr * g;
      EXPECT_NEAR(ps[k].data[e], expect, 2e-5 * (1 + std::abs(lr * g))) << pp[k].name << "[" << e << "]";
    }
}

TEST(BTuningTraining, ThePullTowardsTheTeachersShrinksTheDistance) {
  for (auto student : {StudentWeights::Fixed, StudentWeights::Refit}) {
    TrainProblem p = train_problem(mlp::PeftMode::Full, 200);
    auto o = options("adam", 32);
    o.epochs = 15;
    o.patience = 0;
    Model<float> plain = p.setup.model, pulled = p.setup.model;
    BTuningLoss zero(p.train, p.targets, 0.0, student), strong(p.train, p.targets, 100.0, student);
    mlp::train(plain, p.setup.trainable, p.train, nullptr, o, &zero);
    mlp::train(pulled, p.setup.trainable, p.train, nullptr, o, &strong);
    EXPECT_LT(strong.mean_distance(pulled), 0.5 * zero.mean_distance(plain));
    if (student == StudentWeights::Fixed) {
      // Fixed: M_s stays what LogME gave on the features before tuning.
      BTuningLoss before(p.train, p.targets, 1.0, student);
      before.start_epoch(p.setup.model, 0);
      EXPECT_EQ(strong.student_weights(), before.student_weights());
    } else {
      // Refit: M_s is LogME's on the features of the last epoch's start, not the initial one.
      BTuningLoss before(p.train, p.targets, 1.0, student);
      before.start_epoch(p.setup.model, 0);
      EXPECT_GT((strong.student_weights() - before.student_weights()).norm(), 1e-3);
    }
  }
}

TEST(BTuningTraining, LbfgsWithAnExtraTermIsRefused) {
  TrainProblem p = train_problem(mlp::PeftMode::LinearProbe, 20);
  BTuningLoss term(p.train, p.targets, 1.0);
  EXPECT_THROW(mlp::train(p.setup.model, p.setup.trainable, p.train, nullptr, options("lbfgs", 8), &term), Error);
  EXPECT_THROW(BTuningLoss(p.train, p.targets.topRows(5), 1.0), Error);
}

}  // namespace
}  // namespace caulk::tune
