// Learning curves risk(n) = a n^-b + c (learning_curve.hpp): exact recovery, noisy fits against an
// independent dense grid search, the constraints a >= 0 and c >= 0, samples_to_reach worked out by
// hand. Then eval.sample_complexity through `caulk run` on a small zoo (a related and an unrelated
// pre-trained model): the same output with --jobs 1 and 2, the related model needing fewer samples,
// the default target, the tables, run.json (infinity as null) and the errors users meet.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "caulk/error.hpp"
#include "cli.hpp"
#include "models/algorithms/learning_curve.hpp"

using namespace caulk;
using ::testing::HasSubstr;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

std::vector<double> curve_values(const std::vector<double>& n, double a, double b, double c) {
  std::vector<double> r;
  for (double v : n) r.push_back(a * std::pow(v, -b) + c);
  return r;
}

void expect_relative(double got, double want, double tol, const char* what) {
  EXPECT_LE(std::abs(got - want), tol * std::abs(want)) << what << ": got " << got << ", want " << want;
}

// A small deterministic generator for the noise (the same numbers on every platform).
struct Lcg {
  std::uint64_t s;
  double uniform() {  // [-1, 1)
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return double(s >> 11) * 0x1.0p-53 * 2 - 1;
  }
};

// The reference: the exponent on a dense uniform grid of 100001 values in [0.01, 5] and, for each,
// the constrained (a, c) by enumerating the candidates of the quadrant a, c >= 0 with the raw
// (uncentred) normal equations solved by Cramer's rule.
struct Reference {
  double a = 0, b = 0, c = 0, rss = kInf;
};
Reference dense_grid_search(const std::vector<double>& n, const std::vector<double>& r) {
  Reference best;
  const int steps = 100000;
  for (int k = 0; k <= steps; ++k) {
    const double b = 0.01 + (5.0 - 0.01) * k / steps;
    double sx = 0, sxx = 0, sr = 0, sxr = 0;
    const double m = double(n.size());
    std::vector<double> x(n.size());
    for (std::size_t i = 0; i < n.size(); ++i) {
      x[i] = std::pow(n[i], -b);
      sx += x[i];
      sxx += x[i] * x[i];
      sr += r[i];
      sxr += x[i] * r[i];
    }
    std::vector<std::pair<double, double>> candidates;
    const double det = sxx * m - sx * sx;
    if (det != 0) candidates.push_back({(sxr * m - sx * sr) / det, (sxx * sr - sx * sxr) / det});
    candidates.push_back({0.0, std::max(0.0, sr / m)});
    candidates.push_back({std::max(0.0, sxr / sxx), 0.0});
    for (const auto& [a, c] : candidates) {
      if (a < 0 || c < 0) continue;
      double rss = 0;
      for (std::size_t i = 0; i < n.size(); ++i) rss += (r[i] - a * x[i] - c) * (r[i] - a * x[i] - c);
      if (rss < best.rss) best = {a, b, c, rss};
    }
  }
  return best;
}

}  // namespace

TEST(LearningCurve, RecoversExactCurve) {
  const std::vector<double> n = {10, 20, 50, 100, 200, 500, 1000};
  const curve::PowerLawFit f = curve::fit_power_law(n, curve_values(n, 3, 0.7, 0.1));
  expect_relative(f.a, 3, 1e-6, "a");
  expect_relative(f.b, 0.7, 1e-6, "b");
  expect_relative(f.c, 0.1, 1e-6, "c");
  EXPECT_LT(f.rss, 1e-20);
  EXPECT_TRUE(f.well_determined);
}

TEST(LearningCurve, RecoversExactCurvesAcrossTheExponentRange) {
  const std::vector<double> n = {5, 10, 20, 50, 100, 200, 500, 1000, 5000};
  for (const auto& [a, b, c] : std::vector<std::tuple<double, double, double>>{
           {0.5, 0.05, 0.2}, {1.5, 0.3, 0.02}, {40, 1.8, 0.3}, {2, 0.5, 0.0}, {1000, 3.0, 0.05}}) {
    SCOPED_TRACE(::testing::Message() << "a=" << a << " b=" << b << " c=" << c);
    const curve::PowerLawFit f = curve::fit_power_law(n, curve_values(n, a, b, c));
    expect_relative(f.a, a, 1e-6, "a");
    expect_relative(f.b, b, 1e-6, "b");
    if (c == 0)
      EXPECT_NEAR(f.c, 0.0, 1e-12);  // on the boundary (rounding may land just inside)
    else
      expect_relative(f.c, c, 1e-6, "c");
  }
}

TEST(LearningCurve, NoisyFitMatchesDenseGridSearch) {
  const std::vector<double> sizes = {10, 20, 50, 100, 200, 500, 1000, 2000};
  struct Case {
    double a, b, c, noise;
    std::uint64_t seed;
  };
  // Two have a floor of 0, where noise may push the unconstrained c below zero; the last one's
  // floor is negative (its risks clamped at 0), so the constraint c >= 0 binds.
  for (const Case& k : std::vector<Case>{{2, 0.6, 0.15, 0.02, 1},
                                         {2, 0.6, 0.15, 0.02, 2},
                                         {0.8, 0.35, 0.05, 0.01, 3},
                                         {5, 1.2, 0.3, 0.03, 4},
                                         {1, 0.5, 0.0, 0.005, 5},
                                         {1, 0.5, 0.0, 0.005, 6},
                                         {1, 0.5, -0.03, 0.005, 7}}) {
    SCOPED_TRACE(::testing::Message() << "case seed " << k.seed);
    Lcg rng{k.seed};
    std::vector<double> n, r;
    for (double s : sizes)
      for (int rep = 0; rep < 3; ++rep) {
        n.push_back(s);
        r.push_back(std::max(0.0, k.a * std::pow(s, -k.b) + k.c + k.noise * rng.uniform()));
      }
    const curve::PowerLawFit f = curve::fit_power_law(n, r);
    const Reference ref = dense_grid_search(n, r);
    EXPECT_GE(f.a, 0);
    EXPECT_GE(f.c, 0);
    EXPECT_GE(f.b, curve::kMinExponent);
    EXPECT_LE(f.b, curve::kMaxExponent);
    // The continuous minimum is at least as good as the grid's, and the grid's is within its
    // spacing (5e-5 in b) of it.
    EXPECT_LE(f.rss, ref.rss * (1 + 1e-12));
    EXPECT_GE(f.rss, ref.rss * (1 - 1e-6));
    EXPECT_NEAR(f.b, ref.b, 1e-3);
    EXPECT_NEAR(f.a, ref.a, 1e-2 * ref.a + 1e-9);
    EXPECT_NEAR(f.c, ref.c, 1e-3);
    if (k.c < 0) {
      EXPECT_EQ(f.c, 0.0);
    }
    // The reported residual is the residual of the reported parameters.
    double rss = 0;
    for (std::size_t i = 0; i < n.size(); ++i) rss += std::pow(r[i] - curve::predict(f, n[i]), 2);
    EXPECT_NEAR(f.rss, rss, 1e-9 * rss + 1e-15);
  }
}

TEST(LearningCurve, RepeatedPointsFitLikeTheirMeans) {
  const std::vector<double> sizes = {10, 30, 100, 300, 1000};
  Lcg rng{11};
  std::vector<double> n, r, means;
  for (double s : sizes) {
    double sum = 0;
    for (int rep = 0; rep < 4; ++rep) {
      const double v = 1.5 * std::pow(s, -0.8) + 0.1 + 0.02 * rng.uniform();
      n.push_back(s);
      r.push_back(v);
      sum += v;
    }
    means.push_back(sum / 4);
  }
  const curve::PowerLawFit all = curve::fit_power_law(n, r), mean = curve::fit_power_law(sizes, means);
  EXPECT_NEAR(all.a, mean.a, 1e-6 * mean.a);
  EXPECT_NEAR(all.b, mean.b, 1e-6 * mean.b);
  EXPECT_NEAR(all.c, mean.c, 1e-6);
}

TEST(LearningCurve, RisingRiskGivesNoNegativeAmplitude) {
  // Risk that grows with n: the unconstrained fit would want a < 0; the constrained one is the
  // flat line at the mean risk.
  const std::vector<double> n = {10, 20, 50, 100, 200};
  const std::vector<double> r = {0.10, 0.12, 0.15, 0.18, 0.20};
  const curve::PowerLawFit f = curve::fit_power_law(n, r);
  EXPECT_EQ(f.a, 0.0);
  EXPECT_NEAR(f.c, 0.15, 1e-15);
  EXPECT_GE(f.b, curve::kMinExponent);
  EXPECT_LE(f.b, curve::kMaxExponent);
  EXPECT_NEAR(f.rss, 0.05 * 0.05 + 0.03 * 0.03 + 0 + 0.03 * 0.03 + 0.05 * 0.05, 1e-15);
  // A flat curve under the target is reached with any n; above it, never.
  EXPECT_EQ(curve::samples_to_reach(f, 0.2), 0.0);
  EXPECT_EQ(curve::samples_to_reach(f, 0.1), kInf);
}

TEST(LearningCurve, NegativeFloorIsClampedToZero) {
  // n^-1/2 - 0.05 is a power law with a negative floor (all risks positive up to n = 64): the
  // unconstrained fit is exact with c = -0.05; the constrained one keeps c = 0 and a > 0.
  const std::vector<double> n = {2, 4, 8, 16, 32, 64};
  const std::vector<double> r = curve_values(n, 1, 0.5, -0.05);
  const curve::PowerLawFit f = curve::fit_power_law(n, r);
  EXPECT_EQ(f.c, 0.0);
  EXPECT_GT(f.a, 0.0);
  const Reference ref = dense_grid_search(n, r);
  EXPECT_LE(f.rss, ref.rss * (1 + 1e-12));
}

TEST(LearningCurve, FewerThanThreeSizesIsNotWellDetermined) {
  EXPECT_FALSE(curve::fit_power_law({10, 10, 100, 100}, {0.5, 0.6, 0.2, 0.3}).well_determined);
  EXPECT_FALSE(curve::fit_power_law({10}, {0.5}).well_determined);
  EXPECT_TRUE(curve::fit_power_law({10, 100, 1000}, {0.5, 0.3, 0.2}).well_determined);
  // Still a feasible least-squares answer: one distinct n is fitted by its mean.
  const curve::PowerLawFit one = curve::fit_power_law({10, 10}, {0.4, 0.6});
  EXPECT_NEAR(curve::predict(one, 10), 0.5, 1e-12);
  EXPECT_GE(one.a, 0);
  EXPECT_GE(one.c, 0);
}

TEST(LearningCurve, RejectsBadPoints) {
  EXPECT_THROW(curve::fit_power_law({}, {}), Error);
  EXPECT_THROW(curve::fit_power_law({10, 20, 30}, {0.1, 0.2}), Error);
  EXPECT_THROW(curve::fit_power_law({10, 0, 30}, {0.1, 0.2, 0.3}), Error);
  EXPECT_THROW(curve::fit_power_law({10, -5, 30}, {0.1, 0.2, 0.3}), Error);
  EXPECT_THROW(curve::fit_power_law({10, 20, 30}, {0.1, std::nan(""), 0.3}), Error);
  EXPECT_THROW(curve::fit_power_law({10, 20, kInf}, {0.1, 0.2, 0.3}), Error);
}

TEST(LearningCurve, SamplesToReachByHand) {
  // 1/n + 0.1 = 0.2  <=>  n = 10.
  EXPECT_NEAR(curve::samples_to_reach({1, 1, 0.1, 0, true}, 0.2), 10, 1e-12);
  // 4 n^-1/2 = 0.1  <=>  sqrt(n) = 40  <=>  n = 1600.
  EXPECT_NEAR(curve::samples_to_reach({4, 0.5, 0, 0, true}, 0.1), 1600, 1e-9);
  // 3 n^-0.7 + 0.1 = 0.4  <=>  n = 10^(1/0.7) = 26.8269579527972...
  EXPECT_NEAR(curve::samples_to_reach({3, 0.7, 0.1, 0, true}, 0.4), std::pow(10.0, 1 / 0.7), 1e-10);
  EXPECT_NEAR(std::pow(10.0, 1 / 0.7), 26.826957952797258, 1e-12);
  // A target above the curve at n = 1 is reached below one sample (reported as is).
  EXPECT_NEAR(curve::samples_to_reach({1, 1, 0.1, 0, true}, 2.1), 0.5, 1e-15);
}

TEST(LearningCurve, UnreachableTargetIsInfinite) {
  const curve::PowerLawFit f{1, 1, 0.1, 0, true};
  EXPECT_EQ(curve::samples_to_reach(f, 0.05), kInf);  // under the floor
  EXPECT_EQ(curve::samples_to_reach(f, 0.1), kInf);   // at the floor: only as n -> infinity
  EXPECT_EQ(curve::samples_to_reach({0, 1, 0.3, 0, true}, 0.2), kInf);
  EXPECT_TRUE(std::isnan(curve::samples_to_reach(f, std::nan(""))));
}

TEST(LearningCurve, FlatCurveAtOrUnderTargetNeedsNoSamples) {
  EXPECT_EQ(curve::samples_to_reach({0, 1, 0.1, 0, true}, 0.2), 0.0);
  EXPECT_EQ(curve::samples_to_reach({0, 1, 0.2, 0, true}, 0.2), 0.0);
}

TEST(LearningCurve, SamplesToReachInvertsTheFittedCurve) {
  const std::vector<double> n = {10, 20, 50, 100, 200, 500};
  const curve::PowerLawFit f = curve::fit_power_law(n, curve_values(n, 2.5, 0.45, 0.12));
  for (double m : {7.0, 30.0, 333.0, 4000.0}) EXPECT_NEAR(curve::samples_to_reach(f, curve::predict(f, m)), m, 1e-6 * m);
}

// ---------------------------------------------------------------------------------------------
// eval.sample_complexity

namespace {

// A zoo small enough to pre-train in well under a second: "near" was pre-trained on a source task
// closely related to the target, "far" on an unrelated one.
const char* kZoo = R"([pipeline]
name = "sample-complexity"
[[node]]
id = "zoo"
type = "zoo.pretrain"
params = { seed = 5, inputs = 24, latent = 2, source_samples = 1500, train = 150, validation = 20, test = 300, epochs = 10, models = [
  { name = "near", relatedness = 0.9, hidden = [6] },
  { name = "far", relatedness = 0.0, hidden = [6] } ] }
)";

class SampleComplexityNode : public ::testing::Test {
 protected:
  caulk::testing::CliResult run(const std::string& params, const std::vector<std::string>& extra = {}, const std::string& out = "out") {
    const std::string p = std::string(kZoo) + fmt::format(R"([[node]]
id = "sc"
type = "eval.sample_complexity"
inputs = {{ data = "zoo.data", models = "zoo.models" }}
params = {{ {} }}
)",
                                                          params);
    dir_.write("p.toml", p);
    std::vector<std::string> args{"run", (dir_ / "p.toml").string(), "--out", (dir_ / out).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return caulk::testing::run_caulk(args);
  }
  nlohmann::json summary(const std::string& out = "out") {
    return nlohmann::json::parse(caulk::testing::read_file(dir_ / out / "run.json"))["nodes"]["sc"]["summary"];
  }
  static double or_inf(const nlohmann::json& v) { return v.is_null() ? kInf : v.get<double>(); }
  caulk::testing::TempDir dir_;
};

}  // namespace

TEST_F(SampleComplexityNode, SameWithAnyJobsAndConsistentCurves) {
  const std::string params = "sizes = [5, 10, 20, 40, 80, 150], seeds = 2, optimizer = \"lbfgs\", weight_decay = 1e-3";
  auto a = run(params, {"--jobs", "1"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = run(params, {"--jobs", "2"}, "out_b");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(summary().dump(), summary("out_b").dump());
  const std::string points = caulk::testing::read_file(dir_ / "out" / "sc" / "points.csv");
  EXPECT_EQ(points, caulk::testing::read_file(dir_ / "out_b" / "sc" / "points.csv"));
  EXPECT_EQ(caulk::testing::read_file(dir_ / "out" / "sc" / "curves.csv"), caulk::testing::read_file(dir_ / "out_b" / "sc" / "curves.csv"));

  // points.csv: a header and one row per model, size and repetition.
  EXPECT_EQ(std::count(points.begin(), points.end(), '\n'), 1 + 2 * 6 * 2);
  EXPECT_THAT(points, ::testing::StartsWith("model,n,seed,risk\nnear,5,0,"));

  const auto s = summary();
  ASSERT_EQ(s.size(), 2u) << s.dump();
  for (const char* model : {"near", "far"}) {
    const auto& m = s[model];
    SCOPED_TRACE(model);
    EXPECT_GE(m["a"].get<double>(), 0.0);
    EXPECT_GE(m["c"].get<double>(), 0.0);
    EXPECT_GE(m["b"].get<double>(), curve::kMinExponent);
    EXPECT_LE(m["b"].get<double>(), curve::kMaxExponent);
    ASSERT_EQ(m["n_needed_interval"].size(), 2u);
    EXPECT_LE(or_inf(m["n_needed_interval"][0]), or_inf(m["n_needed_interval"][1]));
    // n_needed is the fitted curve inverted at the target.
    const curve::PowerLawFit fit{m["a"].get<double>(), m["b"].get<double>(), m["c"].get<double>(), 0, true};
    const double needed = curve::samples_to_reach(fit, m["target_risk"].get<double>());
    if (std::isfinite(needed)) {
      EXPECT_NEAR(m["n_needed"].get<double>(), needed, 1e-9 * needed);
      EXPECT_EQ(m["extrapolated"].get<bool>(), needed > 150);
    } else {
      EXPECT_TRUE(m["n_needed"].is_null());
      EXPECT_TRUE(m["extrapolated"].get<bool>());
    }
  }
  // (Which model needs fewer samples is checked on the demo pipeline's zoo, below: this zoo is
  // pre-trained for 3 epochs only and its ordering is not meaningful.)

  // The default target: halfway between the best mean risk at the largest n and the worst mean
  // risk at the smallest n (read back from points.csv).
  double worst_first = 0;
  for (const char* model : {"near", "far"}) {
    double sum = 0;
    for (int rep = 0; rep < 2; ++rep) {
      const std::string prefix = fmt::format("\n{},5,{},", model, rep);
      const auto at = points.find(prefix);
      ASSERT_NE(at, std::string::npos) << prefix;
      sum += std::stod(points.substr(at + prefix.size()));
    }
    worst_first = std::max(worst_first, sum / 2);
  }
  const double best_final = std::min(s["near"]["risk_at_max_n"].get<double>(), s["far"]["risk_at_max_n"].get<double>());
  EXPECT_NEAR(s["near"]["target_risk"].get<double>(), (best_final + worst_first) / 2, 1e-12);

  // The curves table on stdout.
  EXPECT_THAT(a.out, HasSubstr("Sample complexity on split 'test': error = a n^-b + c, n needed to reach error = "));
  EXPECT_THAT(a.out, HasSubstr("(default)\nmodel  a"));
  EXPECT_THAT(a.out, HasSubstr("n_needed  n_needed_low  n_needed_high  risk_at_max_n\n"));
}

TEST_F(SampleComplexityNode, AnUnreachableTargetIsNullInRunJsonAndInfInTheTable) {
  // Error 0 on the unrelated model's test split is out of reach: the floor c is at or above it.
  auto r = run("sizes = [5, 10, 20, 40], seeds = 1, optimizer = \"lbfgs\", only = [\"far\"], target_risk = 0, risk = \"log_loss\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = summary();
  EXPECT_TRUE(s["far"]["n_needed"].is_null()) << s.dump();
  EXPECT_TRUE(s["far"]["n_needed_interval"][0].is_null()) << s.dump();
  EXPECT_TRUE(s["far"]["n_needed_interval"][1].is_null()) << s.dump();
  EXPECT_EQ(s["far"]["target_risk"].get<double>(), 0.0);
  EXPECT_THAT(r.out, HasSubstr("log_loss = a n^-b + c, n needed to reach log_loss = 0\n"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("\nfar .* inf +inf +inf "));
}

TEST_F(SampleComplexityNode, ErrorsNameTheProblem) {
  // A size beyond the training split: both numbers.
  auto r = run("sizes = [10, 20, 500]");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("sample size 500 is larger than the training split 'train' (150 samples)"));
  // A regression risk on a classification task.
  r = run("risk = \"mse\"");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("risk = \"mse\" is for regression, but the dataset is a classification task"));
  // Sizes that are not positive, repeated, or too few for three parameters: before anything runs.
  r = run("sizes = [0, 10, 20]");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("sample sizes must be positive, found 0"));
  r = run("sizes = [10, 20, 20, 40]");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("sample size 20 is listed twice"));
  r = run("sizes = [10, 20]");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("give at least 3 sample sizes, found 2"));
  // L-BFGS fits a linear probe only.
  r = run("mode = \"lora\", optimizer = \"lbfgs\"");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("lbfgs fits a convex head only"));
}

// The demo pipeline: the model pre-trained on a closely related task reaches a lower error and
// needs fewer target samples to reach the target error than the weakly related one.
TEST(SampleComplexityDemo, TheRelatedModelNeedsFewerSamples) {
  caulk::testing::TempDir dir;
  auto r = caulk::testing::run_caulk(
      {"run", (caulk::testing::source_dir() / "pipelines" / "sample_complexity.toml").string(), "--out", (dir / "out").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = nlohmann::json::parse(caulk::testing::read_file(dir / "out" / "run.json"))["nodes"]["curves"]["summary"];
  EXPECT_LT(s["strong"]["risk_at_max_n"].get<double>(), s["weak"]["risk_at_max_n"].get<double>());
  const double strong = s["strong"]["n_needed"].get<double>();
  EXPECT_TRUE(s["weak"]["n_needed"].is_null() || strong < s["weak"]["n_needed"].get<double>()) << s.dump();
}
