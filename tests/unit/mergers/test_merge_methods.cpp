// Every merge method against a direct computation, element by element, in double, from the values
// the files hold; in several input and output dtypes and both precisions.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "caulk/error.hpp"
#include "caulk/parallel.hpp"
#include "mergers/algorithms/merge_methods.hpp"
#include "merge_test_support.hpp"

namespace caulk::merge {
namespace {

using namespace caulk::merge_test;

struct Fixture : ::testing::Test {
  caulk::testing::TempDir dir;
  Values base;
  std::vector<Values> models;  // as stored
  std::vector<fs::path> paths;
  fs::path base_path;
  DType dtype = DType::F32;

  // A base and `k` fine-tuned copies of it, stored as `t`.
  void make(DType t, std::size_t k = 3, std::uint64_t seed = 1) {
    dtype = t;
    models.clear();
    paths.clear();
    const Values raw_base = random_values(seed, 1.0);
    base_path = dir / fmt_name("base", t, seed);
    base = write_checkpoint(base_path, raw_base, t);
    for (std::size_t i = 0; i < k; ++i) {
      paths.push_back(dir / fmt_name(numbered("m", i), t, seed));
      models.push_back(write_checkpoint(paths.back(), random_values(seed * 100 + i, 0.3, &raw_base), t));
    }
  }
  static std::string fmt_name(const std::string& name, DType t, std::uint64_t seed) {
    return name + "-" + std::string(io::dtype_name(t)) + "-" + std::to_string(seed) + ".safetensors";
  }
  MergeInputs inputs(bool with_base = false) const {
    std::vector<MergeModel> m;
    for (std::size_t i = 0; i < paths.size(); ++i) m.push_back({numbered("m", i), paths[i], {}});
    std::optional<MergeModel> b;
    if (with_base) b = MergeModel{"base", base_path, {}};
    return MergeInputs::open(m, b, false);
  }
  Values run(MergeMethod& method, bool with_base, MergeOptions options = {}, const std::string& out_name = "") {
    const fs::path out = dir / (out_name.empty() ? numbered("out-", counter++) + ".safetensors" : out_name);
    run_merge(inputs(with_base), method, out, options);
    return read_checkpoint(out);
  }
  // Applies f(i-th element of each model, base element) per element.
  template <class F>
  Values reference(F f) const {
    Values out;
    for (const auto& [name, b] : base) {
      for (std::size_t j = 0; j < b.size(); ++j) {
        std::vector<double> x;
        for (const auto& m : models) x.push_back(m.at(name)[j]);
        out[name].push_back(f(x, b[j], name));
      }
    }
    return out;
  }
  int counter = 0;
};

std::vector<TensorParameter> constants(std::vector<double> v) {
  std::vector<TensorParameter> out;
  for (double x : v) out.emplace_back(x);
  return out;
}

const std::vector<DType> kDtypes{DType::F32, DType::F16, DType::BF16, DType::F64};

// Float32 arithmetic on values of magnitude ~1: a few units of 2^-24 per operation.
constexpr double kFloatSlack = 2e-6;

TEST_F(Fixture, LinearIsTheWeightedAverageInEveryDtype) {
  const std::vector<double> w{1.0, 2.0, 0.5};
  for (DType in : kDtypes)
    for (std::optional<DType> out :
         {std::optional<DType>{}, std::optional{DType::F32}, std::optional{DType::F16}, std::optional{DType::BF16}}) {
      make(in);
      LinearMerge method(constants(w), true);
      MergeOptions o;
      o.output_dtype = out;
      const Values got = run(method, false, o);
      const Values want = reference(
          [&](const std::vector<double>& x, double, const std::string&) { return (w[0] * x[0] + w[1] * x[1] + w[2] * x[2]) / 3.5; });
      const std::string what = std::string(io::dtype_name(in)) + " -> " + std::string(io::dtype_name(out.value_or(in)));
      expect_close(got, want, out.value_or(in), kFloatSlack, what);
      EXPECT_EQ(dtype_of(dir / (numbered("out-", counter - 1) + ".safetensors"), "layers.0.weight"), out.value_or(in)) << what;
    }
}

TEST_F(Fixture, UniformSoupAndUnnormalisedSumInDouble) {
  make(DType::F64);
  LinearMerge soup(constants({1, 1, 1}), true);
  MergeOptions o;
  o.precision = Precision::F64;
  expect_close(run(soup, false, o),
               reference([](const std::vector<double>& x, double, const std::string&) { return (x[0] + x[1] + x[2]) / 3; }), DType::F64,
               1e-15, "soup");
  LinearMerge sum(constants({0.5, -1, 2}), false);
  expect_close(run(sum, false, o),
               reference([](const std::vector<double>& x, double, const std::string&) { return 0.5 * x[0] - x[1] + 2 * x[2]; }), DType::F64,
               1e-14, "sum");
}

TEST_F(Fixture, PerTensorRulesChooseWeights) {
  make(DType::F32);
  // Model 0 weighs 3 on layer 1 (glob), 0 on the biases (regex), 1 elsewhere.
  std::vector<TensorParameter> w{TensorParameter({{NamePattern::parse("layers.1.*"), 3.0}, {NamePattern::parse("re:.*\\.bias"), 0.0}}, 1.0),
                                 TensorParameter(1.0), TensorParameter(1.0)};
  LinearMerge method(std::move(w), true);
  const Values want = reference([](const std::vector<double>& x, double, const std::string& name) {
    const double w0 = name.starts_with("layers.1.") ? 3 : name.ends_with(".bias") ? 0 : 1;
    return (w0 * x[0] + x[1] + x[2]) / (w0 + 2);
  });
  expect_close(run(method, false), want, DType::F32, kFloatSlack, "rules");
}

TEST_F(Fixture, TaskArithmeticAddsScaledTaskVectors) {
  const std::vector<double> w{1.0, 0.5, 2.0};
  for (DType in : kDtypes)
    for (bool normalize : {false, true}) {
      make(in);
      TaskArithmeticMerge method(constants(w), TensorParameter(0.7), normalize);
      const Values want = reference([&](const std::vector<double>& x, double b, const std::string&) {
        double s = 0;
        for (int i = 0; i < 3; ++i) s += w[i] * (x[i] - b);
        return b + 0.7 * s / (normalize ? 3.5 : 1.0);
      });
      expect_close(run(method, true), want, in, 4 * kFloatSlack, std::string(io::dtype_name(in)));
    }
}

// TIES by its definition: sort each task vector's magnitudes (ties by position), keep the top k,
// elect by the weighted sum (>= 0 is +), average the agreeing kept values with their weights.
Values ties_reference(const Values& base, const std::vector<Values>& models, const std::vector<double>& w, double density, double lambda,
                      const std::vector<double>* keep_probability_draws = nullptr) {
  Values out;
  for (const auto& [name, b] : base) {
    const std::size_t n = b.size(), k = static_cast<std::size_t>(std::llround(density * static_cast<double>(n)));
    std::vector<std::vector<double>> kept(models.size(), std::vector<double>(n, 0.0));
    for (std::size_t i = 0; i < models.size(); ++i) {
      std::vector<std::size_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      const auto& x = models[i].at(name);
      std::stable_sort(order.begin(), order.end(), [&](std::size_t p, std::size_t q) {
        return std::fabs(static_cast<float>(x[p] - b[p])) > std::fabs(static_cast<float>(x[q] - b[q]));
      });
      for (std::size_t r = 0; r < k; ++r) kept[i][order[r]] = x[order[r]] - b[order[r]];
    }
    for (std::size_t j = 0; j < n; ++j) {
      double vote = 0;
      for (std::size_t i = 0; i < models.size(); ++i) vote += w[i] * kept[i][j];
      double sum = 0, weight = 0;
      for (std::size_t i = 0; i < models.size(); ++i)
        if (kept[i][j] != 0 && (kept[i][j] > 0) == (vote >= 0)) sum += w[i] * kept[i][j], weight += w[i];
      out[name].push_back(b[j] + lambda * (weight != 0 ? sum / weight : 0.0));
    }
  }
  return out;
}

TEST_F(Fixture, TiesTrimsElectsAndAveragesInEveryDtypeAndChunking) {
  const std::vector<double> w{1.0, 0.5, 2.0};
  for (DType in : kDtypes)
    for (double density : {0.0, 0.2, 0.5, 1.0})
      for (std::size_t chunk : {std::size_t{3}, std::size_t{1} << 20}) {
        make(in, 3, 7);
        TiesMerge method(constants(w), TensorParameter(density), TensorParameter(0.9));
        MergeOptions o;
        o.chunk_elements = chunk;
        const std::string what =
            std::string(io::dtype_name(in)) + " density " + std::to_string(density) + " chunk " + std::to_string(chunk);
        // The float reference computes d in float as the engine does, so the top-k sets agree.
        expect_close(run(method, true, o), ties_reference(base, models, w, density, 0.9), in, 4 * kFloatSlack, what);
      }
}

TEST_F(Fixture, TiesInDoublePrecision) {
  make(DType::F64, 4, 3);
  TiesMerge method(constants({1, 1, 1, 1}), TensorParameter(0.3), TensorParameter(1.0));
  MergeOptions o;
  o.precision = Precision::F64;
  o.chunk_elements = 5;
  // In double the magnitudes are distinct enough that float ordering in the reference agrees.
  expect_close(run(method, true, o), ties_reference(base, models, {1, 1, 1, 1}, 0.3, 1.0), DType::F64, 1e-14, "f64");
}

// A hand-worked tensor: the base is 0, so the models are their task vectors.
struct TiesByHand : ::testing::Test {
  caulk::testing::TempDir dir;
  std::vector<double> run(const std::vector<std::vector<double>>& task_vectors, std::vector<double> w, double density) {
    const std::vector<Shape> shape{{"t", {task_vectors[0].size()}}};
    write_checkpoint(dir / "base.safetensors", {{"t", std::vector<double>(task_vectors[0].size(), 0.0)}}, DType::F32, shape);
    std::vector<MergeModel> models;
    for (std::size_t i = 0; i < task_vectors.size(); ++i) {
      const fs::path p = dir / (numbered("m", i) + ".safetensors");
      write_checkpoint(p, {{"t", task_vectors[i]}}, DType::F32, shape);
      models.push_back({numbered("m", i), p, {}});
    }
    TiesMerge method(constants(std::move(w)), TensorParameter(density), TensorParameter(1.0));
    const fs::path out = dir / (numbered("out", ++n) + ".safetensors");
    run_merge(MergeInputs::open(models, MergeModel{"base", dir / "base.safetensors", {}}, false), method, out, {});
    return read_checkpoint(out).at("t");
  }
  int n = 0;
};

TEST_F(TiesByHand, SignElectionWithTiedVotes) {
  // Entry 0: +1 and -1 tie: a zero sum elects +, so the result is +1 (the mean of the agreeing +1).
  // Entry 1: -1 and +1: the same, +1. Entry 2: +2 and -3: sum -1 elects -, result -3.
  // Entry 3: both zero: nothing agrees, 0.
  EXPECT_EQ(run({{1, -1, 2, 0}, {-1, 1, -3, 0}}, {1, 1}, 1.0), (std::vector<double>{1, 1, -3, 0}));
  // Weights move the vote: w = (1, 2): entry 0 sum 1 - 2 = -1 elects -, result -1; entry 2:
  // 2 - 6 elects -, -3; and averages weigh too: (1 * 4 + 2 * 1) / 3 = 2 on entry 1.
  EXPECT_EQ(run({{1, 4, 2, 0}, {-1, 1, -3, 0}}, {1, 2}, 1.0), (std::vector<double>{-1, 2, -3, 0}));
}

TEST_F(TiesByHand, MagnitudeTiesKeepTheFirstInStorageOrder) {
  // density 0.5 of 4 entries keeps 2; the three 3's tie for it: the first two are kept.
  EXPECT_EQ(run({{3, 3, 3, 1}}, {1}, 0.5), (std::vector<double>{3, 3, 0, 0}));
  EXPECT_EQ(run({{-1, 3, -3, 3}}, {1}, 0.5), (std::vector<double>{0, 3, -3, 0}));
  // round(0.375 * 4) = round(1.5) = 2 (halves round away from zero).
  EXPECT_EQ(run({{1, 2, 3, 4}}, {1}, 0.375), (std::vector<double>{0, 0, 3, 4}));
}

TEST_F(Fixture, DareDropsRescalesAndCombines) {
  const std::vector<double> w{1.0, 0.5, 2.0};
  for (DType in : {DType::F32, DType::BF16})
    for (auto combine : {DareMerge::Combine::Linear, DareMerge::Combine::Ties})
      for (bool normalize : {false, true}) {
        make(in, 3, 11);
        const double density = 0.4, lambda = 0.8;
        DareMerge method(constants(w), TensorParameter(density), TensorParameter(lambda), combine, normalize, 42);
        MergeOptions o;
        o.chunk_elements = 4;
        // The reference decides each drop with the documented draw, and does the rest itself.
        Values expected;
        for (const auto& [name, b] : base) {
          for (std::size_t j = 0; j < b.size(); ++j) {
            std::vector<double> kept;
            for (std::size_t i = 0; i < 3; ++i) {
              const double d = static_cast<float>(models[i].at(name)[j] - b[j]);
              kept.push_back(DareMerge::draw(42, name, numbered("m", i), j) < density ? d / density : 0.0);
            }
            double merged = 0;
            if (combine == DareMerge::Combine::Linear) {
              for (std::size_t i = 0; i < 3; ++i) merged += w[i] * kept[i];
              if (normalize) merged /= w[0] + w[1] + w[2];
            } else {
              double vote = 0, sum = 0, weight = 0;
              for (std::size_t i = 0; i < 3; ++i) vote += w[i] * kept[i];
              for (std::size_t i = 0; i < 3; ++i)
                if (kept[i] != 0 && (kept[i] > 0) == (vote >= 0)) sum += w[i] * kept[i], weight += w[i];
              merged = !normalize ? sum : weight != 0 ? sum / weight : 0;
            }
            expected[name].push_back(b[j] + lambda * merged);
          }
        }
        expect_close(run(method, true, o), expected, in, 8 * kFloatSlack,
                     std::string(io::dtype_name(in)) + (normalize ? " normalised" : " summed"));
      }
}

TEST_F(Fixture, DareIsReproducibleForASeedAndIndependentOfModelOrder) {
  make(DType::F32, 3, 5);
  auto merge_bytes = [&](std::uint64_t seed, bool reversed, std::size_t chunk) {
    std::vector<MergeModel> m;
    for (std::size_t i = 0; i < paths.size(); ++i) m.push_back({numbered("m", i), paths[i], {}});
    if (reversed) std::reverse(m.begin(), m.end());
    DareMerge method(constants({1, 1, 1}), TensorParameter(0.5), TensorParameter(1.0), DareMerge::Combine::Linear, false, seed);
    MergeOptions o;
    o.chunk_elements = chunk;
    const fs::path out = dir / (numbered("dare-", counter++) + ".safetensors");
    run_merge(MergeInputs::open(m, MergeModel{"base", base_path, {}}, false), method, out, o);
    return caulk::testing::read_file(out);
  };
  const std::string a = merge_bytes(3, false, 1 << 20);
  EXPECT_EQ(a, merge_bytes(3, false, 1 << 20));
  EXPECT_EQ(a, merge_bytes(3, false, 2));
  // Equal weights: the sum does not depend on the order, and each model keeps its own draws.
  EXPECT_EQ(read_checkpoint(dir / "dare-0.safetensors"), read_checkpoint((merge_bytes(3, true, 7), dir / "dare-3.safetensors")));
  EXPECT_NE(a, merge_bytes(4, false, 1 << 20));
}

TEST(Dare, UnbiasedInExpectation) {
  // One model, lambda 1: the merge minus the base is the dropped-and-rescaled task vector, whose
  // expectation is the task vector d and whose variance is d^2 (1 - q) / q. Over S seeds the mean
  // must lie within 5 standard errors of d in every entry, and the standardised errors must look
  // like a sample of N(0, 1): their mean square, a chi-square(n)/n, within 0.6..1.5 for n = 64
  // (both bounds over 3 standard deviations of chi-square(64)/64 away from 1).
  caulk::testing::TempDir dir;
  const std::string tensor = "t";
  const std::size_t n = 64, seeds = 3000;
  const double q = 0.3;
  const std::vector<Shape> shape{{tensor, {n}}};
  std::vector<double> base(n), model(n);
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal;
  for (std::size_t j = 0; j < n; ++j) base[j] = normal(rng), model[j] = base[j] + normal(rng);
  write_checkpoint(dir / "b.safetensors", {{tensor, base}}, DType::F64, shape);
  write_checkpoint(dir / "m.safetensors", {{tensor, model}}, DType::F64, shape);
  const MergeInputs in = MergeInputs::open({{"m", dir / "m.safetensors", {}}}, MergeModel{"b", dir / "b.safetensors", {}}, false);

  std::vector<double> mean(n, 0.0), out(n);
  std::vector<const double*> models{model.data()};
  const Chunk<double> chunk{tensor, n, 0, n, base.data(), models, {}};
  for (std::size_t s = 0; s < seeds; ++s) {
    DareMerge method(constants({1.0}), TensorParameter(q), TensorParameter(1.0), DareMerge::Combine::Linear, false, s);
    method.prepare(in, 1024);
    auto state = method.start(tensor, n, 1);
    method.combine(state.get(), chunk, out.data());
    for (std::size_t j = 0; j < n; ++j) mean[j] += (out[j] - base[j]) / static_cast<double>(seeds);
  }
  double z2 = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const double d = model[j] - base[j];
    const double se = std::fabs(d) * std::sqrt((1 - q) / q / static_cast<double>(seeds));
    const double z = (mean[j] - d) / se;
    EXPECT_LT(std::fabs(z), 5.0) << "entry " << j;
    z2 += z * z;
  }
  EXPECT_GT(z2 / n, 0.6);
  EXPECT_LT(z2 / n, 1.5);
}

TEST(Dare, DrawsAreUniformAndDifferPerTensorModelAndSeed) {
  // Mean 1/2 and variance 1/12 of a uniform, within 5 standard errors over 20000 draws.
  const int n = 20000;
  double sum = 0, sum2 = 0;
  for (int j = 0; j < n; ++j) {
    const double u = DareMerge::draw(9, "w", "a", static_cast<std::uint64_t>(j));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u, sum2 += u * u;
  }
  EXPECT_NEAR(sum / n, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12, 5 * std::sqrt(1.0 / 180 / n));
  EXPECT_NE(DareMerge::draw(9, "w", "a", 0), DareMerge::draw(9, "w", "b", 0));
  EXPECT_NE(DareMerge::draw(9, "w", "a", 0), DareMerge::draw(9, "v", "a", 0));
  EXPECT_NE(DareMerge::draw(9, "w", "a", 0), DareMerge::draw(8, "w", "a", 0));
}

}  // namespace
}  // namespace caulk::merge
