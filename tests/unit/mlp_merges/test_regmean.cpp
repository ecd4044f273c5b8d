// RegMean against independent computations: the merged weight of one linear map as the stacked
// least-squares solution (QR, no Gram matrix formed) for alpha = 1 and as explicitly written
// normal equations solved by full-pivoting LU for alpha < 1; identical Gram matrices give the
// plain average; in a two-layer net the second layer's Gram matrices come from each model's own
// hidden activations, computed here by hand.
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <Eigen/QR>

#include "caulk/error.hpp"
#include "merge_test_support.hpp"
#include "mlp_merges/algorithms/model_ops.hpp"
#include "mlp_merges/algorithms/regmean.hpp"

namespace caulk::mlp_merges {
namespace {

using testing::random_matrix;

TEST(RegMean, OneLinearMapWithoutShrinkageIsTheStackedLeastSquaresSolution) {
  std::mt19937_64 rng(1);
  const Mat<double> X1 = random_matrix(7, 3, rng), X2 = random_matrix(5, 3, rng);  // N_i x in
  const Mat<double> W1 = random_matrix(2, 3, rng), W2 = random_matrix(2, 3, rng);  // out x in
  RegMeanOptions o;
  o.alpha = 1.0;
  const Mat<double> merged = regmean_weight({W1, W2}, {X1.transpose() * X1, X2.transpose() * X2}, o, "w");
  // argmin_W sum_i ||X_i W^T - X_i W_i^T||^2: one least-squares problem over the stacked rows.
  Mat<double> X(12, 3), Y(12, 2);
  X << X1, X2;
  Y << X1 * W1.transpose(), X2 * W2.transpose();
  const Mat<double> expected = X.colPivHouseholderQr().solve(Y).transpose();
  EXPECT_LT((merged - expected).cwiseAbs().maxCoeff(), 1e-12);
  // Not the plain average (the test would be empty otherwise).
  EXPECT_GT((merged - (W1 + W2) / 2).cwiseAbs().maxCoeff(), 1e-3);
}

TEST(RegMean, ShrinkageFollowsTheHandWrittenNormalEquations) {
  std::mt19937_64 rng(2);
  const Mat<double> X1 = random_matrix(6, 3, rng), X2 = random_matrix(9, 3, rng);
  const Mat<double> W1 = random_matrix(4, 3, rng), W2 = random_matrix(4, 3, rng);
  const double alpha = 0.6;
  // G_i shrunk entry by entry.
  auto shrunk = [&](const Mat<double>& X) {
    Mat<double> G(3, 3);
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) {
        double s = 0;
        for (Eigen::Index n = 0; n < X.rows(); ++n) s += X(n, a) * X(n, b);
        G(a, b) = a == b ? s : alpha * s;
      }
    return G;
  };
  const Mat<double> G1 = shrunk(X1), G2 = shrunk(X2);
  const Mat<double> expected = (G1 + G2).fullPivLu().solve(G1 * W1.transpose() + G2 * W2.transpose()).transpose();
  RegMeanOptions o;
  o.alpha = alpha;
  const Mat<double> merged =
      regmean_weight({W1, W2}, {shrink_off_diagonal(X1.transpose() * X1, alpha), shrink_off_diagonal(X2.transpose() * X2, alpha)}, o, "w");
  EXPECT_LT((merged - expected).cwiseAbs().maxCoeff(), 1e-12);
  // alpha = 0 keeps only the diagonals: column j of W is the G_jj-weighted mean of the models' columns.
  const Mat<double> D1 = (X1.transpose() * X1).diagonal(), D2 = (X2.transpose() * X2).diagonal();
  const Mat<double> diag_only =
      regmean_weight({W1, W2}, {shrink_off_diagonal(X1.transpose() * X1, 0.0), shrink_off_diagonal(X2.transpose() * X2, 0.0)}, o, "w");
  for (int j = 0; j < 3; ++j)
    for (int r = 0; r < 4; ++r) EXPECT_NEAR(diag_only(r, j), (D1(j) * W1(r, j) + D2(j) * W2(r, j)) / (D1(j) + D2(j)), 1e-12);
}

TEST(RegMean, IdenticalGramMatricesGiveThePlainAverage) {
  std::mt19937_64 rng(3);
  const Mat<double> X = random_matrix(10, 4, rng);
  const Mat<double> W1 = random_matrix(3, 4, rng), W2 = random_matrix(3, 4, rng), W3 = random_matrix(3, 4, rng);
  for (double alpha : {1.0, 0.9, 0.3}) {
    RegMeanOptions o;
    o.alpha = alpha;
    const Mat<double> G = shrink_off_diagonal(X.transpose() * X, alpha);
    const Mat<double> merged = regmean_weight({W1, W2, W3}, {G, G, G}, o, "w");
    EXPECT_LT((merged - (W1 + W2 + W3) / 3).cwiseAbs().maxCoeff(), 1e-12) << alpha;
  }
}

TEST(RegMean, TheSecondLayerUsesEachModelsOwnHiddenActivations) {
  // Two 3-5-2 ReLU nets with different first layers, each with its own data.
  const mlp::Model<float> a = testing::random_model({3, 5, 2}, 10), b = testing::random_model({3, 5, 2}, 11);
  std::mt19937_64 rng(4);
  const Mat<double> Xa = random_matrix(40, 3, rng).cast<float>().cast<double>(),
                    Xb = random_matrix(30, 3, rng).cast<float>().cast<double>();
  const InputGrams ga = input_grams(a, Xa.transpose().cast<float>(), 16), gb = input_grams(b, Xb.transpose().cast<float>(), 7);
  EXPECT_EQ(ga.samples, 40);
  const Mat<double> Ha = testing::hand_forward(a, Xa).hidden[0], Hb = testing::hand_forward(b, Xb).hidden[0];  // N x 5
  EXPECT_LT((ga.gram.at("layers.0.weight") - Xa.transpose() * Xa).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_LT((ga.gram.at("layers.1.weight") - Ha.transpose() * Ha).cwiseAbs().maxCoeff(), 1e-5);
  EXPECT_LT((gb.gram.at("layers.1.weight") - Hb.transpose() * Hb).cwiseAbs().maxCoeff(), 1e-5);

  RegMeanOptions o;  // alpha 0.9
  const RegMeanResult r = regmean_merge({a, b}, {ga, gb}, o);
  // Layer 1 as the stacked least-squares problem over the two models' own activations, with the
  // shrinkage written as extra rows: alpha G + (1 - alpha) diag(G) = alpha X^T X + (1-alpha) diag(X^T X).
  auto shrunk = [&](const Mat<double>& H) {
    Mat<double> G = 0.9 * H.transpose() * H;
    G.diagonal() = (H.transpose() * H).diagonal();
    return G;
  };
  const Mat<double> Wa = a.layers[1].W.cast<double>(), Wb = b.layers[1].W.cast<double>();
  const Mat<double> expected1 =
      (shrunk(Ha) + shrunk(Hb)).fullPivLu().solve(shrunk(Ha) * Wa.transpose() + shrunk(Hb) * Wb.transpose()).transpose();
  EXPECT_LT((r.model.layers[1].W.cast<double>() - expected1).cwiseAbs().maxCoeff(), 1e-4);
  // Had model b's Gram matrix been computed with model a's activations, the weight would differ.
  const Mat<double> Hb_wrong = testing::hand_forward(a, Xb).hidden[0];
  const Mat<double> wrong =
      (shrunk(Ha) + shrunk(Hb_wrong)).fullPivLu().solve(shrunk(Ha) * Wa.transpose() + shrunk(Hb_wrong) * Wb.transpose()).transpose();
  EXPECT_GT((wrong - expected1).cwiseAbs().maxCoeff(), 1e-2);
  // Biases are averaged.
  for (int l = 0; l < 2; ++l) EXPECT_LT((r.model.layers[l].b - (a.layers[l].b + b.layers[l].b) / 2).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_EQ(r.merged, (std::vector<std::string>{"layers.0.weight", "layers.1.weight"}));
}

TEST(RegMean, MeanGramWeighsEachModelsSamplesByOneOverItsCount) {
  // gram = "mean": G_i = X_i^T X_i / N_i, i.e. the stacked least squares with model i's rows scaled
  // by 1 / sqrt(N_i) (alpha = 1), checked on the first layer of two nets with 10 and 40 samples.
  const mlp::Model<float> a = testing::random_model({3, 4, 2}, 30), b = testing::random_model({3, 4, 2}, 31);
  std::mt19937_64 rng(7);
  const Mat<double> Xa = random_matrix(10, 3, rng).cast<float>().cast<double>(),
                    Xb = random_matrix(40, 3, rng).cast<float>().cast<double>();
  RegMeanOptions o;
  o.alpha = 1.0;
  o.mean_gram = true;
  const RegMeanResult r =
      regmean_merge({a, b}, {input_grams(a, Xa.transpose().cast<float>()), input_grams(b, Xb.transpose().cast<float>())}, o);
  Mat<double> X(50, 3), Y(50, 4);
  X << Xa / std::sqrt(10.0), Xb / std::sqrt(40.0);
  Y << Xa * a.layers[0].W.cast<double>().transpose() / std::sqrt(10.0), Xb * b.layers[0].W.cast<double>().transpose() / std::sqrt(40.0);
  EXPECT_LT((r.model.layers[0].W.cast<double>() - X.colPivHouseholderQr().solve(Y).transpose()).cwiseAbs().maxCoeff(), 1e-5);
  // The default (sum) gives the unweighted stack, which differs.
  o.mean_gram = false;
  const RegMeanResult s =
      regmean_merge({a, b}, {input_grams(a, Xa.transpose().cast<float>()), input_grams(b, Xb.transpose().cast<float>())}, o);
  EXPECT_GT((s.model.layers[0].W - r.model.layers[0].W).cwiseAbs().maxCoeff(), 1e-3);
}

TEST(RegMean, AdapterProjectionsUseTheirOwnInputs) {
  mlp::Model<float> m = testing::random_model({3, 4, 2}, 20);
  std::mt19937_64 rng(5);
  mlp::Adapter<float> ad;
  ad.after = 0;
  ad.down = {random_matrix(2, 4, rng).cast<float>(), Mat<double>(random_matrix(2, 1, rng)).col(0).cast<float>()};
  ad.up = {random_matrix(4, 2, rng).cast<float>(), Mat<double>(random_matrix(4, 1, rng)).col(0).cast<float>()};
  m.adapters.push_back(ad);
  const Mat<double> X = random_matrix(25, 3, rng).cast<float>().cast<double>();
  const InputGrams g = input_grams(m, X.transpose().cast<float>());
  // By hand: h = relu(W0 x + b0); down input h; up input relu(Wd h + bd); layer 1 input h + Wu u + bu.
  Mat<double> Z = X * m.layers[0].W.cast<double>().transpose();
  Z.rowwise() += m.layers[0].b.cast<double>().transpose();
  const Mat<double> H = testing::relu(Z);
  Mat<double> U = H * ad.down.W.cast<double>().transpose();
  U.rowwise() += ad.down.b.cast<double>().transpose();
  const Mat<double> A = testing::relu(U);
  Mat<double> H2 = H + A * ad.up.W.cast<double>().transpose();
  H2.rowwise() += ad.up.b.cast<double>().transpose();
  EXPECT_LT((g.gram.at("adapters.0.down.weight") - H.transpose() * H).cwiseAbs().maxCoeff(), 1e-4);
  EXPECT_LT((g.gram.at("adapters.0.up.weight") - A.transpose() * A).cwiseAbs().maxCoeff(), 1e-4);
  EXPECT_LT((g.gram.at("layers.1.weight") - H2.transpose() * H2).cwiseAbs().maxCoeff(), 1e-4);
}

TEST(RegMean, ADeadInputIsRegularisedTowardsTheAverageOrRefused) {
  std::mt19937_64 rng(6);
  Mat<double> X1 = random_matrix(8, 3, rng), X2 = random_matrix(8, 3, rng);
  X1.col(2).setZero();  // input 2 is zero on every model's data
  X2.col(2).setZero();
  const Mat<double> W1 = random_matrix(2, 3, rng), W2 = random_matrix(2, 3, rng);
  RegMeanOptions o;
  o.alpha = 1.0;
  bool regularised = false;
  const Mat<double> merged = regmean_weight({W1, W2}, {X1.transpose() * X1, X2.transpose() * X2}, o, "layers.1.weight", &regularised);
  EXPECT_TRUE(regularised);
  // The dead input's column falls back to the average; the live ones solve the problem restricted to them.
  EXPECT_LT((merged.col(2) - (W1.col(2) + W2.col(2)) / 2).cwiseAbs().maxCoeff(), 1e-9);
  Mat<double> X(16, 2), Y(16, 2);
  X << X1.leftCols(2), X2.leftCols(2);
  Y << X1 * W1.transpose(), X2 * W2.transpose();
  EXPECT_LT((merged.leftCols(2) - X.colPivHouseholderQr().solve(Y).transpose()).cwiseAbs().maxCoeff(), 1e-6);

  o.jitter = 0;
  try {
    regmean_weight({W1, W2}, {X1.transpose() * X1, X2.transpose() * X2}, o, "layers.1.weight");
    FAIL() << "a singular Gram matrix with jitter 0 must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'layers.1.weight'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("singular"), std::string::npos) << e.what();
  }
}

TEST(RegMean, DifferentArchitecturesAreNamed) {
  const mlp::Model<float> a = testing::random_model({3, 5, 2}, 1), b = testing::random_model({3, 6, 2}, 2);
  try {
    check_same_architecture({a, b}, {"alpha", "beta"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "checkpoints of different architectures: tensor 'layers.0.weight' has shape [6, 3] in model 'beta' but [5, 3] in 'alpha'");
  }
}

}  // namespace
}  // namespace caulk::mlp_merges
