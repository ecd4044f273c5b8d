// Output and feature ensembles against hand-written forward passes; the refitted head against the
// evaluators' own logistic regression (fit_linear_probe, a separate implementation of the same
// objective) and against its optimality condition; the head objective's gradient against finite
// differences.
#include <gtest/gtest.h>

#include <Eigen/Cholesky>

#include "caulk/error.hpp"
#include "caulk/probe/linear_probe.hpp"
#include "mlp_merges/algorithms/ensembles.hpp"
#include "merge_test_support.hpp"
#include "mlp_merges/algorithms/model_ops.hpp"

namespace caulk::mlp_merges {
namespace {

using testing::hand_forward;
using testing::random_matrix;

struct Fixture {
  std::vector<mlp::Model<float>> models{testing::random_model({4, 6, 3}, 1), testing::random_model({4, 6, 3}, 2),
                                        testing::random_model({4, 6, 3}, 3)};
  Mat<double> X;  // N x P, float-representable
  Fixture() {
    std::mt19937_64 rng(9);
    X = random_matrix(40, 4, rng).cast<float>().cast<double>();
  }
  Mat<float> columns() const { return X.transpose().cast<float>(); }
};

TEST(Ensembles, OutputEnsembleIsTheMeanOfEachModelsProbabilities) {
  Fixture f;
  Mat<double> expected = Mat<double>::Zero(40, 3);
  for (const auto& m : f.models) expected += hand_forward(m, f.X).output / 3.0;
  EXPECT_LT((output_ensemble(f.models, f.columns()) - expected).cwiseAbs().maxCoeff(), 1e-6);
  // Different hidden widths are fine for an output ensemble.
  std::vector<mlp::Model<float>> mixed{f.models[0], testing::random_model({4, 9, 5, 3}, 4)};
  EXPECT_EQ(output_ensemble(mixed, f.columns()).rows(), 40);
  // Different numbers of outputs are not.
  std::vector<mlp::Model<float>> bad{f.models[0], testing::random_model({4, 6, 2}, 5)};
  EXPECT_THROW(output_ensemble(bad, f.columns()), Error);
}

TEST(Ensembles, PerModelMatricesAveragedLaterGiveTheEnsemblesBitForBit) {
  // As a distributed node computes them: each model's matrix on its own (another process), the
  // mean on rank 0, exactly what the one-call ensembles give.
  Fixture f;
  std::vector<Mat<double>> outputs, features;
  for (const auto& m : f.models) {
    outputs.push_back(model_outputs(m, f.columns()));
    features.push_back(model_features(m, f.columns()));
  }
  EXPECT_TRUE(mean_of_outputs(outputs) == output_ensemble(f.models, f.columns()));
  EXPECT_TRUE(mean_of_features(features) == mean_features(f.models, f.columns()));
  // A model that does not take the data's inputs, and features of another width, are errors.
  EXPECT_THROW(model_outputs(testing::random_model({5, 6, 3}, 7), f.columns()), Error);
  features.push_back(model_features(testing::random_model({4, 8, 3}, 8), f.columns()));
  try {
    mean_of_features(features);
    ADD_FAILURE() << "features of widths 6 and 8 were averaged";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "model 3 has 8 features but model 0 has 6: features can only be averaged at one width");
  }
  EXPECT_THROW(mean_of_outputs({}), Error);
}

TEST(Ensembles, FeatureEnsembleWithTheAveragedHeadIsTheHandComputation) {
  Fixture f;
  Mat<double> H = Mat<double>::Zero(40, 6), W = Mat<double>::Zero(3, 6);
  mlp::Vec<double> b = mlp::Vec<double>::Zero(3);
  for (const auto& m : f.models) {
    H += hand_forward(m, f.X).hidden[0] / 3.0;
    W += m.layers[1].W.cast<double>() / 3.0;
    b += m.layers[1].b.cast<double>() / 3.0;
  }
  Mat<double> Z = H * W.transpose();
  Z.rowwise() += b.transpose();
  const Mat<double> expected = testing::softmax_rows(Z);
  const Mat<double> got = apply_head(averaged_head(f.models), mean_features(f.models, f.columns()));
  EXPECT_LT((got - expected).cwiseAbs().maxCoeff(), 1e-6);
  // A model's own head on its own features gives its outputs back (deeper head, too).
  const mlp::Model<float> deep = testing::random_model({4, 7, 5, 3}, 6);
  mlp::Model<float> shallow_features = deep;
  shallow_features.feature_layer = 0;  // head = layers 1 and 2
  const std::vector<mlp::Model<float>> one{shallow_features};
  EXPECT_LT((apply_head(head_of(shallow_features), mean_features(one, f.columns())) - hand_forward(deep, f.X).output).cwiseAbs().maxCoeff(),
            1e-6);
}

TEST(Ensembles, RefittedHeadMatchesAnIndependentLogisticRegression) {
  Fixture f;
  const Mat<double> F = mean_features(f.models, f.columns());
  mlp::Targets<float> y;
  for (int i = 0; i < 40; ++i) y.classes.push_back((i * 7) % 3);
  RefitOptions o;
  o.weight_decay = 1e-2;
  const mlp::Model<float> head = refit_linear_head(F, y, 3, mlp::Output::Softmax, o);
  probe::LinearProbeOptions po;
  po.l2 = 1e-2;
  const probe::LinearProbe probe = probe::fit_linear_probe(MatrixView::borrow(F), y.classes, 3, po);
  EXPECT_LT((head.layers[0].W.cast<double>() - probe.weights).cwiseAbs().maxCoeff(), 1e-4);
  EXPECT_LT((apply_head(head, F) - probe.predict_proba(MatrixView::borrow(F))).cwiseAbs().maxCoeff(), 1e-5);
  // Optimality: the gradient at the fitted (float) parameters is ~0.
  Eigen::VectorXd p(3 * 6 + 3), g;
  Eigen::Map<Mat<double>>(p.data(), 3, 6) = head.layers[0].W.cast<double>();
  p.tail(3) = head.layers[0].b.cast<double>();
  mlp::linear_head_objective(F.transpose(), y, 3, mlp::Output::Softmax, 1e-2, p, g);
  EXPECT_LT(g.norm(), 1e-5);
}

TEST(Ensembles, HeadObjectiveGradientMatchesFiniteDifferences) {
  std::mt19937_64 rng(11);
  const Mat<double> F = random_matrix(15, 4, rng);
  for (mlp::Output out : {mlp::Output::Softmax, mlp::Output::Identity}) {
    mlp::Targets<float> y;
    for (int i = 0; i < 15; ++i) y.classes.push_back(i % 3);
    y.values = random_matrix(3, 15, rng).cast<float>();
    const Eigen::VectorXd p = random_matrix(3 * 4 + 3, 1, rng).col(0);
    Eigen::VectorXd g, scratch;
    mlp::linear_head_objective(F.transpose(), y, 3, out, 0.1, p, g);
    for (Eigen::Index k = 0; k < p.size(); ++k) {
      Eigen::VectorXd a = p, b = p;
      a(k) += 1e-6;
      b(k) -= 1e-6;
      const double fd = (mlp::linear_head_objective(F.transpose(), y, 3, out, 0.1, a, scratch) -
                         mlp::linear_head_objective(F.transpose(), y, 3, out, 0.1, b, scratch)) /
                        2e-6;
      EXPECT_NEAR(g(k), fd, 1e-6) << k;
    }
  }
}

TEST(Ensembles, RefittedRegressionHeadIsTheRidgeSolution) {
  // Identity outputs: minimise ||Z - Y||^2 / (N C) + (wd/2)||W||^2: the normal equations, solved here directly.
  std::mt19937_64 rng(12);
  const Mat<double> F = random_matrix(30, 3, rng);
  mlp::Targets<float> y;
  y.values = random_matrix(2, 30, rng).cast<float>();
  RefitOptions o;
  o.weight_decay = 0.05;
  const mlp::Model<float> head = refit_linear_head(F, y, 2, mlp::Output::Identity, o);
  // Augment with a bias column (unpenalised): [F 1] theta = Y^T, penalty (N C wd / 2) on W only.
  Mat<double> A(30, 4);
  A << F, Mat<double>::Ones(30, 1);
  Mat<double> R = Mat<double>::Zero(4, 4);
  R.topLeftCorner(3, 3) = Mat<double>::Identity(3, 3) * (30.0 * 2.0 * 0.05 / 2.0);
  const Mat<double> theta = (A.transpose() * A + R).ldlt().solve(A.transpose() * y.values.cast<double>().transpose());  // 4 x 2
  EXPECT_LT((head.layers[0].W.cast<double>() - theta.topRows(3).transpose()).cwiseAbs().maxCoeff(), 1e-5);
  EXPECT_LT((head.layers[0].b.cast<double>() - theta.row(3).transpose()).cwiseAbs().maxCoeff(), 1e-5);
}

}  // namespace
}  // namespace caulk::mlp_merges
