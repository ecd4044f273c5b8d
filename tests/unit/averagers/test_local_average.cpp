// Localized model averaging: against global averaging when z carries nothing, on the simulation
// whose answer is known, its weight functions' files, and bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "averagers/algorithms/local_average.hpp"
#include "averagers/algorithms/simplex.hpp"
#include "averagers/algorithms/simulation.hpp"
#include "temp_dir.hpp"
#include "test_support.hpp"

using namespace caulk;
using namespace caulk::avg;
using ::testing::HasSubstr;

namespace {

Stack simulated_stack(const SimulatedSplit& s, const std::vector<std::string>& names) {
  std::vector<Matrix> cols;
  for (int k = 0; k < 3; ++k) cols.push_back(s.predictions.col(k));
  return make_stack(TaskKind::Regression, names, {&cols[0], &cols[1], &cols[2]}, &s.y, nullptr, "sim");
}

void expect_on_simplex(const Matrix& W) {
  for (Eigen::Index i = 0; i < W.rows(); ++i) {
    EXPECT_NEAR(W.row(i).sum(), 1, 1e-12) << "row " << i;
    EXPECT_GE(W.row(i).minCoeff(), 0) << "row " << i;
  }
}

// Three classifiers, each sharp on its own third of the rows (of unequal sizes) and vague
// elsewhere: the best constant mixture is interior.
Stack complementary_classifiers(int N) {
  caulk::avg::testing::Draw d(40);
  std::vector<Matrix> preds(3, Matrix(N, 3));
  std::vector<int> classes;
  for (int i = 0; i < N; ++i) {
    const int y = static_cast<int>(d.uniform() * 3) % 3, expert = i % 7 < 3 ? 0 : (i % 7 < 5 ? 1 : 2);
    classes.push_back(y);
    for (int k = 0; k < 3; ++k) {
      const double p = k == expert ? 0.8 : 0.2 + 0.2 * d.uniform();
      for (int c = 0; c < 3; ++c) preds[static_cast<std::size_t>(k)](i, c) = c == y ? p : (1 - p) / 2;
    }
  }
  return make_stack(TaskKind::Classification, {"a", "b", "c"}, {&preds[0], &preds[1], &preds[2]}, nullptr, &classes, "test");
}

TEST(LocalAverage, WithConstantCovariatesReachesTheGlobalWeightsAndRisk) {
  const Stack reg = avg::testing::random_regression(300, 3, 2, 21);
  const Stack cls = complementary_classifiers(300);
  const Matrix z = Matrix::Constant(300, 2, 0.7);
  for (LossKind k : {LossKind::Squared, LossKind::Huber, LossKind::Absolute, LossKind::CrossEntropy}) {
    const Stack& s = k == LossKind::CrossEntropy ? cls : reg;
    LocalOptions o;
    o.loss.kind = k;
    o.basis = BasisKind::Spline;
    o.penalty = 1e-3;  // on the (all-zero) non-intercept columns: no effect
    o.intercept_penalty = 1e-10;
    o.tolerance = 1e-10;
    const LocalFit local = fit_local_average(s, z, o);
    const ConstantFit global = fit_constant_weights(s, o.loss);
    const Matrix W = local.function.weights(z);
    expect_on_simplex(W);
    // The global optimum here is interior, so softmax weights reach it.
    ASSERT_GT(global.w.minCoeff(), 0.02) << loss_name(k);
    EXPECT_LE((W.row(0).transpose() - global.w).cwiseAbs().maxCoeff(), 2e-4) << loss_name(k) << "\n"
                                                                             << W.row(0) << "\n"
                                                                             << global.w.transpose();
    EXPECT_NEAR(local.fit_risk, global.risk, 1e-7 * (1 + global.risk)) << loss_name(k);
  }
}

TEST(LocalAverage, SimulationWeightsPickTheRightModelAndBeatEveryBaseline) {
  LocalExpertsOptions so;
  so.seed = 3;
  const LocalExperts sim = simulate_local_experts(so);
  const Stack val = simulated_stack(sim.validation, sim.models), test = simulated_stack(sim.test, sim.models);
  LocalOptions o;
  o.basis = BasisKind::Raw;
  const LocalFit fit = fit_local_average(val, sim.validation.z, o);
  const Matrix W = fit.function.weights(sim.test.z);
  expect_on_simplex(W);
  const double local = mean_loss(test, combine(test, W), o.loss);
  const Vector singles = model_risks(test, o.loss);
  const ConstantFit global = fit_constant_weights(val, o.loss);
  const double global_risk = mean_loss(test, combine_constant(test, global.w), o.loss);
  EXPECT_LT(local, 0.5 * singles.minCoeff());
  EXPECT_LT(local, 0.5 * global_risk);
  // In each region the region's expert carries most of the weight on average.
  for (int region = 0; region < 3; ++region) {
    Vector mean = Vector::Zero(3);
    int n = 0;
    for (std::size_t i = 0; i < sim.test.region.size(); ++i)
      if (sim.test.region[i] == region) {
        mean += W.row(static_cast<Eigen::Index>(i)).transpose();
        ++n;
      }
    mean /= n;
    EXPECT_GT(mean(region), 0.8) << "region " << region << ": " << mean.transpose();
  }
  // Cross-validation ran over the whole grid and chose its minimum.
  ASSERT_EQ(fit.cv.size(), o.penalty_grid.size());
  for (const auto& p : fit.cv) EXPECT_GT(p.risk, 0);
  double best = fit.cv[0].risk;
  for (const auto& p : fit.cv) best = std::min(best, p.risk);
  for (const auto& p : fit.cv)
    if (p.value == fit.chosen) {
      EXPECT_EQ(p.risk, best);
    }
}

TEST(LocalAverage, OneUniformlyBestModelCostsAtMostAFewPercentAgainstGlobal) {
  LocalExpertsOptions so;
  so.seed = 4;
  so.scenario = "uniform";
  const LocalExperts sim = simulate_local_experts(so);
  const Stack val = simulated_stack(sim.validation, sim.models), test = simulated_stack(sim.test, sim.models);
  for (BasisKind b : {BasisKind::Raw, BasisKind::Spline}) {
    LocalOptions o;
    o.basis = b;
    const LocalFit fit = fit_local_average(val, sim.validation.z, o);
    const double local = mean_loss(test, combine(test, fit.function.weights(sim.test.z)), o.loss);
    const ConstantFit global = fit_constant_weights(val, o.loss);
    const double global_risk = mean_loss(test, combine_constant(test, global.w), o.loss);
    EXPECT_LT(local, 1.03 * global_risk) << basis_name(b);
  }
}

TEST(LocalAverage, MlpAndKernelWeightFunctionsLearnTheRegions) {
  LocalExpertsOptions so;
  so.seed = 5;
  so.validation = 400;
  so.test = 300;
  const LocalExperts sim = simulate_local_experts(so);
  const Stack val = simulated_stack(sim.validation, sim.models), test = simulated_stack(sim.test, sim.models);
  const double best_single = model_risks(test, Loss{}).minCoeff();
  for (WeightFunctionKind f : {WeightFunctionKind::Mlp, WeightFunctionKind::Kernel}) {
    LocalOptions o;
    o.function = f;
    o.penalty_grid = {1e-2, 1e-4};
    o.bandwidth_grid = {0.1, 0.4};
    o.folds = 3;
    const LocalFit fit = fit_local_average(val, sim.validation.z, o);
    const Matrix W = fit.function.weights(sim.test.z);
    expect_on_simplex(W);
    EXPECT_LT(mean_loss(test, combine(test, W), o.loss), 0.5 * best_single) << weight_function_name(f);
  }
}

TEST(LocalAverage, KernelWithAHugeBandwidthIsGlobalAveraging) {
  const Stack s = avg::testing::random_regression(80, 3, 1, 23);
  caulk::avg::testing::Draw d(24);
  Matrix z(80, 1);
  for (Eigen::Index i = 0; i < 80; ++i) z(i, 0) = d.uniform();
  LocalOptions o;
  o.function = WeightFunctionKind::Kernel;
  o.bandwidth = 1e6;
  const Matrix W = fit_local_average(s, z, o).function.weights(z);
  const Vector global = fit_constant_weights(s, o.loss).w;
  for (Eigen::Index i = 0; i < W.rows(); ++i) EXPECT_LE((W.row(i).transpose() - global).cwiseAbs().maxCoeff(), 1e-6);
}

TEST(LocalAverage, ClassificationCombinationsStayProbabilities) {
  const Stack s = avg::testing::random_classification(200, 3, 4, 25);
  caulk::avg::testing::Draw d(26);
  Matrix z(200, 2);
  for (Eigen::Index i = 0; i < 200; ++i) z.row(i) << d.normal(), d.normal();
  for (WeightFunctionKind f : {WeightFunctionKind::SoftmaxLinear, WeightFunctionKind::Mlp, WeightFunctionKind::Kernel}) {
    LocalOptions o;
    o.function = f;
    o.loss.kind = LossKind::CrossEntropy;
    o.penalty = 1e-3;
    o.bandwidth = 0.5;
    const Matrix P = combine(s, fit_local_average(s, z, o).function.weights(z));
    for (Eigen::Index i = 0; i < P.rows(); ++i) {
      EXPECT_NEAR(P.row(i).sum(), 1, 1e-12);
      EXPECT_GE(P.row(i).minCoeff(), 0);
    }
  }
}

TEST(LocalAverage, FittedFunctionsRoundTripThroughTheirFile) {
  const Stack s = avg::testing::random_regression(120, 3, 2, 27);
  caulk::avg::testing::Draw d(28);
  Matrix z(120, 2), fresh(30, 2);
  for (Eigen::Index i = 0; i < 120; ++i) z.row(i) << d.normal(), d.uniform();
  for (Eigen::Index i = 0; i < 30; ++i) fresh.row(i) << d.normal(), d.uniform();
  caulk::testing::TempDir dir;
  for (auto [f, b] : std::vector<std::pair<WeightFunctionKind, BasisKind>>{{WeightFunctionKind::SoftmaxLinear, BasisKind::Raw},
                                                                           {WeightFunctionKind::SoftmaxLinear, BasisKind::Spline},
                                                                           {WeightFunctionKind::SoftmaxLinear, BasisKind::Fourier},
                                                                           {WeightFunctionKind::Mlp, BasisKind::Raw},
                                                                           {WeightFunctionKind::Kernel, BasisKind::Raw}}) {
    LocalOptions o;
    o.function = f;
    o.basis = b;
    o.penalty = 1e-3;
    o.bandwidth = 0.3;
    o.loss.kind = LossKind::Pinball;
    o.loss.tau = 0.3;
    const LocalFit fit = fit_local_average(s, z, o);
    const auto file = dir / "w.json";
    fit.function.save(file);
    const WeightFunction back = WeightFunction::load(file);
    EXPECT_EQ(back.models, s.models);
    EXPECT_LE((back.weights(fresh) - fit.function.weights(fresh)).cwiseAbs().maxCoeff(), 1e-12) << weight_function_name(f);
  }
  dir.write("bad.json", "{\"format\": \"something else\"}");
  try {
    WeightFunction::load(dir / "bad.json");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("bad.json"));
    EXPECT_THAT(e.what(), HasSubstr("not a weight function file"));
  }
}

TEST(LocalAverage, SameNumbersOnEveryRun) {
  const Stack s = avg::testing::random_regression(200, 3, 1, 29);
  caulk::avg::testing::Draw d(30);
  Matrix z(200, 2);
  for (Eigen::Index i = 0; i < 200; ++i) z.row(i) << d.normal(), d.normal();
  LocalOptions o;
  o.basis = BasisKind::Fourier;
  o.features = 8;
  const LocalFit a = fit_local_average(s, z, o), b = fit_local_average(s, z, o);
  EXPECT_EQ((a.function.theta - b.function.theta).cwiseAbs().maxCoeff(), 0.0);
  EXPECT_EQ(a.chosen, b.chosen);
}

// What a rank computes for one fold (cross_validation_fold, from the fit's arguments alone) must
// be what the fit computes for it in one process: the folds' totals give the fit's cross-validated
// risks exactly, and a fit that takes them from a runner is the same fit.
TEST(LocalAverage, EachFoldComputedAloneGivesTheFitsCrossValidation) {
  const Stack s = avg::testing::random_regression(120, 3, 1, 41);
  caulk::avg::testing::Draw d(42);
  Matrix z(120, 2);
  for (Eigen::Index i = 0; i < 120; ++i) z.row(i) << d.normal(), d.uniform();
  struct Case {
    const char* name;
    WeightFunctionKind function;
    BasisKind basis;
  };
  for (const Case c : {Case{"raw", WeightFunctionKind::SoftmaxLinear, BasisKind::Raw},
                       Case{"spline", WeightFunctionKind::SoftmaxLinear, BasisKind::Spline},
                       Case{"mlp", WeightFunctionKind::Mlp, BasisKind::Raw}, Case{"kernel", WeightFunctionKind::Kernel, BasisKind::Raw}}) {
    LocalOptions o;
    o.function = c.function;
    o.basis = c.basis;
    o.folds = 4;
    o.penalty_grid = {1e-3, 1, 1e-1};  // unsorted: the fit goes from the largest down
    o.bandwidth_grid = {0.2, 0.8};
    o.hidden = 4;
    o.max_iterations = 200;
    ASSERT_TRUE(cross_validates(o));
    const LocalFit fit = fit_local_average(s, z, o);
    std::vector<std::vector<double>> totals;
    for (std::size_t f = 0; f < 4; ++f) totals.push_back(cross_validation_fold(s, z, o, f));
    ASSERT_EQ(fit.cv.size(), totals[0].size()) << c.name;
    for (std::size_t g = 0; g < fit.cv.size(); ++g) {
      double sum = 0;
      for (const auto& t : totals) sum += t[g];
      EXPECT_EQ(sum / 120.0, fit.cv[g].risk) << c.name << " grid point " << g;
    }
    std::size_t calls = 0;
    const LocalFit via_runner = fit_local_average(s, z, o, [&](std::size_t folds) {
      ++calls;
      EXPECT_EQ(folds, 4u);
      return totals;
    });
    EXPECT_EQ(calls, 1u);
    EXPECT_EQ(via_runner.chosen, fit.chosen) << c.name;
    EXPECT_EQ(via_runner.fit_risk, fit.fit_risk) << c.name;
    // The runner's numbers are the ones used: make the last grid value best and it is chosen.
    auto rigged = totals;
    for (auto& t : rigged) t.back() = -1;
    const LocalFit chosen_last = fit_local_average(s, z, o, [&](std::size_t) { return rigged; });
    EXPECT_EQ(chosen_last.chosen, fit.cv.back().value) << c.name;
  }
  LocalOptions fixed;
  fixed.penalty = 0.1;
  EXPECT_FALSE(cross_validates(fixed));
  EXPECT_THROW(cross_validation_fold(s, z, fixed, 0), Error);
  LocalOptions o;
  EXPECT_THROW(cross_validation_fold(s, z, o, 5), Error);  // 5 folds: 0..4
}

TEST(BadInput, ShapesLabelsAndNonFiniteValuesNameTheModel) {
  Matrix a = Matrix::Ones(5, 2), b = Matrix::Ones(5, 3), y = Matrix::Zero(5, 2), c = Matrix::Ones(4, 2);
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(message([&] {
                make_stack(TaskKind::Regression, {"alpha", "beta"}, {&a, &b}, &y, nullptr, "split 'val'");
              }),
              HasSubstr("model 'beta' has 3 columns of predictions on split 'val' but model 'alpha' has 2"));
  EXPECT_THAT(message([&] {
                make_stack(TaskKind::Regression, {"alpha", "gamma"}, {&a, &c}, &y, nullptr, "split 'val'");
              }),
              HasSubstr("model 'gamma' has 4 rows of predictions on split 'val' but the labels there have 5 rows"));
  Matrix nan = a;
  nan(3, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(message([&] {
                make_stack(TaskKind::Regression, {"alpha", "delta"}, {&a, &nan}, &y, nullptr, "split 'val'");
              }),
              HasSubstr("model 'delta' has a non-finite prediction (nan) on split 'val' at row 3, column 1"));
  Matrix probs = Matrix::Constant(3, 2, 0.5), off = probs;
  off(1, 0) = 0.7;
  std::vector<int> labels{0, 1, 0}, short_labels{0, 1};
  EXPECT_THAT(message([&] {
                make_stack(TaskKind::Classification, {"p", "q"}, {&probs, &off}, nullptr, &labels, "split 'val'");
              }),
              HasSubstr("model 'q': the probabilities of row 1 on split 'val' sum to 1.2"));
  EXPECT_THAT(message([&] { make_stack(TaskKind::Classification, {"p"}, {&probs}, nullptr, &short_labels, "split 'val'"); }),
              HasSubstr("model 'p' has 3 rows of predictions on split 'val' but the labels there have 2 rows"));
  const Stack s = avg::testing::random_regression(20, 2, 1, 31);
  LocalOptions o;
  EXPECT_THAT(message([&] { fit_local_average(s, Matrix::Zero(19, 2), o); }),
              HasSubstr("the covariates have 19 rows but the predictions have 20"));
  o.loss.kind = LossKind::CrossEntropy;
  EXPECT_THAT(message([&] { fit_local_average(s, Matrix::Zero(20, 2), o); }), HasSubstr("cross_entropy needs class probabilities"));
}

}  // namespace
