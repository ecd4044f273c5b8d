// Predictions and targets far from 1 (docs/averaging.md, "Magnitudes"): the fits that do not depend
// on the values' scale give, on values multiplied by 2^996 (about 1e300) or 2^-400, exactly the
// weights of the original problem and its risks in the given units; the others are refused, and
// so are values that span more than the arithmetic holds, naming the model and its file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "caulk/error.hpp"
#include "caulk/io/npy.hpp"
#include "cli.hpp"
#include "averagers/algorithms/combination.hpp"
#include "averagers/algorithms/simplex.hpp"
#include "test_support.hpp"

namespace caulk::avg {
namespace {

using ::testing::HasSubstr;

// The stack with every prediction and target multiplied by 2^e (exact).
Stack scaled(Stack s, int e) {
  s.F *= std::ldexp(1.0, e);
  s.Y *= std::ldexp(1.0, e);
  return s;
}

Loss loss_of(LossKind kind) {
  Loss l;
  l.kind = kind;
  l.delta = 0.7;
  l.tau = 0.3;
  return l;
}

// The loss of the scaled problem: huber's delta in the scaled values' units.
Loss scaled_loss(Loss l, int e) {
  l.delta = std::ldexp(l.delta, e);
  return l;
}

TEST(Magnitudes, ProbabilitiesAndValuesNearOneFit) {
  EXPECT_EQ(magnitudes(testing::random_classification(50, 3, 4, 1)).range, Magnitudes::Range::Fits);
  const Stack s = testing::random_regression(50, 3, 2, 1);
  EXPECT_EQ(magnitudes(s).range, Magnitudes::Range::Fits);
  EXPECT_EQ(magnitudes(scaled(s, 300)).range, Magnitudes::Range::Fits);  // about 1e90
  EXPECT_EQ(magnitudes(scaled(s, 996)).range, Magnitudes::Range::Rescalable);
  EXPECT_EQ(magnitudes(scaled(s, -400)).range, Magnitudes::Range::Rescalable);
}

TEST(Magnitudes, RescalingDividesByOnePowerOfTwoExactly) {
  const Stack big = scaled(testing::random_regression(40, 3, 1, 2), 996);
  Stack s = big;
  const Magnitudes m = magnitudes(s);
  rescale(s, m);
  EXPECT_GE(s.F.cwiseAbs().maxCoeff(), 0.5);
  EXPECT_LT(std::max(s.F.cwiseAbs().maxCoeff(), s.Y.cwiseAbs().maxCoeff()), 1.0);
  EXPECT_EQ(s.scale, std::ldexp(1.0, std::ilogb(s.scale)));
  EXPECT_TRUE(((s.F * s.scale).array() == big.F.array()).all());
  EXPECT_TRUE(((s.Y * s.scale).array() == big.Y.array()).all());
  EXPECT_EQ(magnitudes(s).range, Magnitudes::Range::Fits);
}

TEST(Magnitudes, OneModelFarFromTheTargetsIsTooSpread) {
  Stack s = testing::random_regression(40, 3, 1, 3);
  s.F.col(1) *= std::ldexp(1.0, 996);  // model 1 at 1e300, the targets and the others near 1
  const Magnitudes m = magnitudes(s);
  EXPECT_EQ(m.range, Magnitudes::Range::TooSpread);
  EXPECT_EQ(m.largest_source, 1);
  EXPECT_GT(m.largest, 1e299);
  EXPECT_LT(m.smallest, 10.0);
}

// The scale-free fits: on the rescaled stack (with the loss for its scale) the weights are those
// of the original problem, and the risk in the given units is the original risk times the scale.
TEST(Magnitudes, ConstantWeightsMallowsAndJackknifeDoNotDependOnTheScale) {
  const Stack original = testing::random_regression(60, 3, 2, 4);
  for (int e : {996, -400})
    for (LossKind kind : {LossKind::Squared, LossKind::Absolute, LossKind::Huber, LossKind::Pinball}) {
      const std::string what = loss_name(kind) + " at 2^" + std::to_string(e);
      const ConstantFit want = fit_constant_weights(original, loss_of(kind));
      Stack s = scaled(original, e);
      const Loss given = scaled_loss(loss_of(kind), e);
      rescale(s, magnitudes(s));
      const ConstantFit got = fit_constant_weights(s, given.for_scale(s.scale));
      EXPECT_LT((got.w - want.w).cwiseAbs().maxCoeff(), 1e-9) << what << ": " << got.w.transpose() << " vs " << want.w.transpose();
      const double risk = given.in_given_units(got.risk, s.scale);
      const double expected =
          kind == LossKind::Squared || kind == LossKind::Huber ? std::ldexp(want.risk, 2 * e) : std::ldexp(want.risk, e);
      // In the given units, the squared risks at 2^996 overflow (as the true ones do).
      if (e < 0 || kind == LossKind::Absolute || kind == LossKind::Pinball) {
        EXPECT_NEAR(risk / expected, 1.0, 1e-9) << what;
      }
    }
  const std::vector<double> counts{2, 3, 5};
  const MallowsFit mallows = mallows_weights(original, counts);
  const Vector jackknife = jackknife_weights(original);
  for (int e : {996, -400}) {
    Stack s = scaled(original, e);
    rescale(s, magnitudes(s));
    const MallowsFit got = mallows_weights(s, counts);
    EXPECT_LT((got.w - mallows.w).cwiseAbs().maxCoeff(), 1e-9) << e;
    if (e < 0) {
      EXPECT_NEAR(got.sigma2 * s.scale * s.scale / std::ldexp(mallows.sigma2, 2 * e), 1.0, 1e-9);
    }
    EXPECT_LT((jackknife_weights(s) - jackknife).cwiseAbs().maxCoeff(), 1e-9) << e;
  }
}

TEST(Magnitudes, WithoutRescalingTheFitsFailOrGoWrong) {
  // What the nodes did before: the squared-loss QP sees infinite Gram entries.
  const Stack big = scaled(testing::random_regression(60, 3, 1, 5), 996);
  EXPECT_THROW(fit_constant_weights(big, loss_of(LossKind::Squared)), Error);
}

// ----------------------------------------------------------------------------- through nodes

struct MagnitudeNodes : ::testing::Test {
  caulk::testing::TempDir dir;
  // Three models' predictions and the targets on split 'val', each multiplied by 2^e, as files.
  void write(int e, int spoiled_model = -1) {
    testing::Draw d(7);
    const int n = 80;
    Matrix y(n, 1);
    std::vector<Matrix> p(3, Matrix(n, 1));
    for (int i = 0; i < n; ++i) {
      y(i, 0) = d.normal();
      for (int k = 0; k < 3; ++k) p[static_cast<std::size_t>(k)](i, 0) = y(i, 0) + (0.2 + 0.4 * k) * d.normal() + 0.1 * k;
    }
    const double f = std::ldexp(1.0, e);
    io::write_npy(dir / "y.npy", Matrix(y * f));
    for (int k = 0; k < 3; ++k)
      io::write_npy(dir / (std::string("m") + std::to_string(k) + ".npy"),
                    Matrix(p[static_cast<std::size_t>(k)] * (k == spoiled_model ? std::ldexp(1.0, 996) : f)));
    Matrix z(n, 1);
    for (int i = 0; i < n; ++i) z(i, 0) = d.uniform(-1, 1);
    io::write_npy(dir / "z.npy", z);
    dir.write("m.toml",
              "[hub]\nname = \"h\"\nkind = \"regression\"\n"
              "[[model]]\nname = \"m0\"\npredictions = { val = \"m0.npy\" }\nparameters = 2\n"
              "[[model]]\nname = \"m1\"\npredictions = { val = \"m1.npy\" }\nparameters = 3\n"
              "[[model]]\nname = \"m2\"\npredictions = { val = \"m2.npy\" }\nparameters = 5\n");
  }
  caulk::testing::CliResult run(const std::string& nodes, const std::string& out) {
    dir.write("p.toml", R"([pipeline]
name = "p"
[[node]]
id = "load"
type = "predictions.load"
params = { manifest = "m.toml" }
[[node]]
id = "data"
type = "dataset.load"
params = { kind = "regression", labels = { val = "y.npy" }, covariates = { val = "z.npy" } }
)" + nodes);
    return caulk::testing::run_caulk({"run", (dir / "p.toml").string(), "--out", (dir / out).string()});
  }
  static std::string node(const std::string& id, const std::string& type, const std::string& params = "") {
    return "[[node]]\nid = \"" + id + "\"\ntype = \"" + type + "\"\ninputs = { predictions = [\"load\"], data = \"data\" }\nparams = { " +
           params + " }\n";
  }
};

TEST_F(MagnitudeNodes, ScaleFreeFitsGiveTheWeightsOfTheUnscaledProblem) {
  // (Huber's delta is in the values' units and the node's range for it stops at 1e12: the
  // algorithm's test above checks it.)
  const std::string nodes = node("global", "average.global") + node("absolute", "average.global", "loss = \"absolute\"") +
                            node("mallows", "average.mallows", "manifest = \"m.toml\"") + node("best", "select.best") +
                            node("local", "average.local", "weight_function = \"kernel\", bandwidth = 0.5");
  write(0);
  auto r = run(nodes, "plain");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto plain = nlohmann::json::parse(caulk::testing::read_file(dir / "plain" / "run.json"));
  write(996);
  r = run(nodes, "big");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("fitted on the predictions and targets divided by 2^"));
  const auto big = nlohmann::json::parse(caulk::testing::read_file(dir / "big" / "run.json"));
  for (const char* id : {"global", "absolute", "mallows", "best"})
    for (const char* m : {"m0", "m1", "m2"})
      EXPECT_NEAR(big["nodes"][id]["summary"]["weights"][m].get<double>(), plain["nodes"][id]["summary"]["weights"][m].get<double>(), 1e-9)
          << id << " " << m;
  EXPECT_EQ(big["nodes"]["best"]["summary"]["selected"], plain["nodes"]["best"]["summary"]["selected"]);
  const Matrix local_plain = io::NpyArray::open(dir / "plain" / "local" / "weights.val.npy").matrix().to_double();
  const Matrix local_big = io::NpyArray::open(dir / "big" / "local" / "weights.val.npy").matrix().to_double();
  EXPECT_LT((local_big - local_plain).cwiseAbs().maxCoeff(), 1e-9);
}

TEST_F(MagnitudeNodes, AScaleDependentFitIsRefusedNamingTheModelAndFile) {
  write(996);
  const auto r = run(node("local", "average.local", "penalty = 0.01"), "out");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(" (split 'val' of " + (dir / "m").string()));
  EXPECT_THAT(r.err, HasSubstr("e+300 (row "));
  EXPECT_THAT(r.err, HasSubstr("beyond 1e+100"));
  EXPECT_THAT(r.err, HasSubstr("average.local's fit of the softmax_linear weight function depends on that scale"));
  EXPECT_THAT(r.err, HasSubstr("divide the predictions and the targets by a common factor"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("simplex_qp")));
}

TEST_F(MagnitudeNodes, OneModelFarFromTheTargetsIsRefusedNamingItsFile) {
  write(0, 1);
  const auto r = run(node("global", "average.global"), "out");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("model 'm1' (split 'val' of " + (dir / "m1.npy").string() + ") reaches "));
  EXPECT_THAT(r.err, HasSubstr("e+300 (row "));
  EXPECT_THAT(r.err, HasSubstr("but the targets (split 'val' of " + (dir / "y.npy").string() + ") reach only "));
  EXPECT_THAT(r.err, HasSubstr("cannot be combined in double precision"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("simplex_qp")));
}

}  // namespace
}  // namespace caulk::avg
