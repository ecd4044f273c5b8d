// SLERP and Fisher merging against direct computations, and the engine's determinism.
#include <gtest/gtest.h>

#include <cmath>

#include "caulk/error.hpp"
#include "caulk/io/durable.hpp"
#include "caulk/parallel.hpp"
#include "mergers/algorithms/merge_methods.hpp"
#include "merge_test_support.hpp"

namespace caulk::merge {
namespace {

using namespace caulk::merge_test;

std::vector<TensorParameter> constants(std::vector<double> v) {
  std::vector<TensorParameter> out;
  for (double x : v) out.emplace_back(x);
  return out;
}

struct TwoModels : ::testing::Test {
  caulk::testing::TempDir dir;
  int n = 0;
  fs::path write(const std::string& name, const Values& v, DType t = DType::F32, const std::vector<Shape>& s = small_shapes()) {
    const fs::path p = dir / (name + ".safetensors");
    write_checkpoint(p, v, t, s);
    return p;
  }
  Values merge(MergeMethod& method, std::vector<MergeModel> models, MergeOptions o = {}, bool fisher = false) {
    const fs::path out = dir / (numbered("out", ++n) + ".safetensors");
    run_merge(MergeInputs::open(std::move(models), std::nullopt, fisher), method, out, o);
    return read_checkpoint(out);
  }
};

TEST_F(TwoModels, SlerpFollowsTheGreatCircle) {
  for (DType in : {DType::F32, DType::F16, DType::F64})
    for (std::optional<DType> out : {std::optional<DType>{}, std::optional{DType::BF16}}) {
      const Values a = write_checkpoint(dir / "a.safetensors", random_values(1, 1.0), in);
      const Values b = write_checkpoint(dir / "b.safetensors", random_values(2, 1.0), in);
      SlerpMerge method(TensorParameter({{NamePattern::parse("layers.0.*"), 0.2}}, 0.7));
      MergeOptions o;
      o.output_dtype = out;
      o.chunk_elements = 6;
      const Values got = merge(method, {{"a", dir / "a.safetensors", {}}, {"b", dir / "b.safetensors", {}}}, o);
      Values want;
      for (const auto& [name, x] : a) {
        const auto& y = b.at(name);
        double xx = 0, yy = 0, xy = 0;
        for (std::size_t j = 0; j < x.size(); ++j) xx += x[j] * x[j], yy += y[j] * y[j], xy += x[j] * y[j];
        const double cosine = xy / std::sqrt(xx * yy), t = name.starts_with("layers.0.") ? 0.2 : 0.7;
        double sa = 1 - t, sb = t;
        if (std::fabs(cosine) <= 0.9995) {
          const double w = std::acos(cosine);
          sa = std::sin((1 - t) * w) / std::sin(w), sb = std::sin(t * w) / std::sin(w);
        }
        for (std::size_t j = 0; j < x.size(); ++j) want[name].push_back(sa * x[j] + sb * y[j]);
      }
      // "norm.scale" has one element: cos = +-1, the parallel fallback.
      expect_close(got, want, out.value_or(in), 4e-6, std::string(io::dtype_name(in)));
    }
}

TEST_F(TwoModels, SlerpFallsBackToLinearForParallelVectors) {
  const Values a = random_values(3, 1.0);
  Values b = a;
  for (auto& [name, v] : b)
    for (double& x : v) x *= 2;  // exactly parallel, and exact in float
  write("a", a);
  write("b", b);
  SlerpMerge method(TensorParameter(0.25));
  const Values got = merge(method, {{"a", dir / "a.safetensors", {}}, {"b", dir / "b.safetensors", {}}});
  for (const auto& [name, x] : a)
    for (std::size_t j = 0; j < x.size(); ++j) EXPECT_FLOAT_EQ(got.at(name)[j], 1.25f * static_cast<float>(x[j])) << name;

  bool linear = false;
  SlerpMerge::coefficients(0.99951, 0.3, &linear);
  EXPECT_TRUE(linear);
  SlerpMerge::coefficients(-0.99951, 0.3, &linear);
  EXPECT_TRUE(linear);
  const auto [sa, sb] = SlerpMerge::coefficients(0.99949, 0.3, &linear);
  EXPECT_FALSE(linear);
  EXPECT_GT(sa + sb, 1.0);  // a slerp of non-parallel vectors keeps more norm than the chord
  // Orthogonal unit vectors at t = 1/2: both coefficients sin(pi/4) / sin(pi/2) = sqrt(2)/2.
  const auto [oa, ob] = SlerpMerge::coefficients(0.0, 0.5);
  EXPECT_NEAR(oa, std::sqrt(0.5), 1e-15);
  EXPECT_NEAR(ob, std::sqrt(0.5), 1e-15);
}

TEST_F(TwoModels, SlerpNeedsExactlyTwoModels) {
  write("a", random_values(1, 1.0));
  SlerpMerge method(TensorParameter(0.5));
  EXPECT_THROW(merge(method, {{"a", dir / "a.safetensors", {}}}), Error);
}

// Fisher files: positive random values, or as given.
Values random_fisher(std::uint64_t seed) {
  Values f = random_values(seed, 1.0);
  for (auto& [name, v] : f)
    for (double& x : v) x = x * x + 0.01;
  return f;
}

TEST_F(TwoModels, FisherMergingMatchesItsFormula) {
  for (bool normalize : {false, true})
    for (DType fisher_dtype : {DType::F32, DType::BF16}) {
      std::vector<Values> x, f;
      std::vector<MergeModel> models;
      for (int i = 0; i < 3; ++i) {
        const std::string name = numbered("m", i);
        x.push_back(write_checkpoint(dir / (name + ".safetensors"), random_values(10 + i, 1.0), DType::F32));
        f.push_back(write_checkpoint(dir / (name + ".fisher.safetensors"), random_fisher(20 + i), fisher_dtype));
        models.push_back({name, dir / (name + ".safetensors"), dir / (name + ".fisher.safetensors")});
      }
      const std::vector<double> lambda{1.0, 2.0, 0.5};
      std::vector<double> norm(3, 1.0);
      if (normalize)
        for (int i = 0; i < 3; ++i) {
          double s = 0;
          for (const auto& [name, v] : f[i])
            for (double y : v) s += y * y;
          norm[i] = std::sqrt(s);
        }
      const double floor = 0.05;  // above some entries (0.01 + small squares), so it matters
      FisherMerge method(constants(lambda), floor, FisherMerge::FloorMode::Max, normalize);
      const Values got = merge(method, models, {}, true);
      Values want;
      for (const auto& [name, v] : x[0])
        for (std::size_t j = 0; j < v.size(); ++j) {
          double num = 0, den = 0;
          for (int i = 0; i < 3; ++i) {
            const double c = lambda[i] / norm[i] * std::max(f[i].at(name)[j], floor);
            num += c * x[i].at(name)[j];
            den += c;
          }
          want[name].push_back(num / den);
        }
      expect_close(got, want, DType::F32, 4e-6, normalize ? "normalised" : "plain");
      if (normalize) {
        for (int i = 0; i < 3; ++i) EXPECT_NEAR(method.fisher_norms()[i], norm[i], 1e-9 * norm[i]);
      }
    }
}

TEST_F(TwoModels, EqualFisherGivesTheWeightedAverage) {
  const Values x0 = write_checkpoint(dir / "a.safetensors", random_values(1, 1.0), DType::F64);
  const Values x1 = write_checkpoint(dir / "b.safetensors", random_values(2, 1.0), DType::F64);
  const Values f = random_fisher(3);
  write_checkpoint(dir / "fa.safetensors", f, DType::F64);
  write_checkpoint(dir / "fb.safetensors", f, DType::F64);
  FisherMerge method(constants({1.0, 3.0}), 1e-6, FisherMerge::FloorMode::Max, false);
  MergeOptions o;
  o.precision = Precision::F64;
  const Values got =
      merge(method, {{"a", dir / "a.safetensors", dir / "fa.safetensors"}, {"b", dir / "b.safetensors", dir / "fb.safetensors"}}, o, true);
  Values want;
  for (const auto& [name, v] : x0)
    for (std::size_t j = 0; j < v.size(); ++j) want[name].push_back((v[j] + 3 * x1.at(name)[j]) / 4);
  expect_close(got, want, DType::F64, 1e-15, "equal Fisher");
}

TEST_F(TwoModels, AnEntryWithoutFisherMassComesFromTheOthers) {
  const Values x0 = write_checkpoint(dir / "a.safetensors", random_values(1, 1.0), DType::F64);
  const Values x1 = write_checkpoint(dir / "b.safetensors", random_values(2, 1.0), DType::F64);
  const Values x2 = write_checkpoint(dir / "c.safetensors", random_values(4, 1.0), DType::F64);
  const Values fb = random_fisher(5), fc = random_fisher(6);
  Values fa = random_fisher(7);
  fa["layers.0.weight"][4] = 0;  // model a knows nothing about this entry
  fa["layers.1.bias"][0] = 0;
  write_checkpoint(dir / "fa.safetensors", fa, DType::F64);
  write_checkpoint(dir / "fb.safetensors", fb, DType::F64);
  write_checkpoint(dir / "fc.safetensors", fc, DType::F64);
  std::vector<MergeModel> models{{"a", dir / "a.safetensors", dir / "fa.safetensors"},
                                 {"b", dir / "b.safetensors", dir / "fb.safetensors"},
                                 {"c", dir / "c.safetensors", dir / "fc.safetensors"}};
  MergeOptions o;
  o.precision = Precision::F64;
  for (double floor : {0.0, 1e-6}) {
    FisherMerge method(constants({1, 1, 1}), floor, FisherMerge::FloorMode::Max, false);
    const Values got = merge(method, models, o, true);
    for (auto [name, j] :
         {std::pair{std::string("layers.0.weight"), std::size_t{4}}, std::pair{std::string("layers.1.bias"), std::size_t{0}}}) {
      const double b = fb.at(name)[j], c = fc.at(name)[j];
      const double from_others = (b * x1.at(name)[j] + c * x2.at(name)[j]) / (b + c);
      // With a floor, model a keeps weight floor / (b + c + floor) in this entry.
      const double bound = floor / (b + c) * (std::fabs(x0.at(name)[j]) + std::fabs(from_others)) + 1e-14;
      EXPECT_NEAR(got.at(name)[j], from_others, bound) << name << " floor " << floor;
    }
  }
  // With no Fisher mass anywhere in an entry and no floor, the entry is the plain average.
  Values zero_b = fb, zero_c = fc;
  zero_b["layers.0.weight"][4] = 0;
  zero_c["layers.0.weight"][4] = 0;
  write_checkpoint(dir / "fb.safetensors", zero_b, DType::F64);
  write_checkpoint(dir / "fc.safetensors", zero_c, DType::F64);
  FisherMerge method(constants({1, 1, 2}), 0.0, FisherMerge::FloorMode::Max, false);
  const Values got = merge(method, models, o, true);
  EXPECT_NEAR(got.at("layers.0.weight")[4],
              (x0.at("layers.0.weight")[4] + x1.at("layers.0.weight")[4] + 2 * x2.at("layers.0.weight")[4]) / 4, 1e-15);
}

TEST_F(TwoModels, NegativeFisherIsAnErrorAndLeavesNoOutput) {
  write("a", random_values(1, 1.0));
  Values f = random_fisher(2);
  f["layers.1.weight"][3] = -0.5;
  write("fa", f);
  write("fb", random_fisher(3));
  write("b", random_values(4, 1.0));
  FisherMerge method(constants({1, 1}), 1e-6, FisherMerge::FloorMode::Max, false);
  try {
    merge(method, {{"a", dir / "a.safetensors", dir / "fa.safetensors"}, {"b", dir / "b.safetensors", dir / "fb.safetensors"}}, {}, true);
    FAIL() << "a negative Fisher entry was accepted";
  } catch (const DataError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("fa.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("layers.1.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("element 3"), std::string::npos) << m;
  }
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_FALSE(e.path().filename().string().starts_with("out")) << e.path();
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_FALSE(io::is_temporary_name(e.path().filename().string())) << e.path();
}

TEST_F(TwoModels, MissingFisherIsNamed) {
  write("a", random_values(1, 1.0));
  write("b", random_values(2, 1.0));
  write("fa", random_fisher(2));
  FisherMerge method(constants({1, 1}), 1e-6, FisherMerge::FloorMode::Max, false);
  try {
    merge(method, {{"a", dir / "a.safetensors", dir / "fa.safetensors"}, {"b", dir / "b.safetensors", {}}}, {}, true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model 'b' has no Fisher file"), std::string::npos) << e.what();
  }
}

TEST_F(TwoModels, SameBytesWithAnyPoolWidthAndChunking) {
  const Values base = random_values(1, 1.0);
  write("base", base);
  for (int i = 0; i < 3; ++i) write(numbered("m", i), random_values(10 + i, 0.2, &base));
  std::vector<MergeModel> models;
  for (int i = 0; i < 3; ++i) models.push_back({numbered("m", i), dir / (numbered("m", i) + ".safetensors"), {}});
  auto bytes = [&](unsigned width, std::size_t chunk) {
    ThreadPool pool(width);
    ScopedPool scoped(&pool);
    TiesMerge method(constants({1, 2, 1}), TensorParameter(0.4), TensorParameter(1.0));
    MergeOptions o;
    o.chunk_elements = chunk;
    const fs::path out = dir / (numbered("ties", ++n) + ".safetensors");
    run_merge(MergeInputs::open(models, MergeModel{"base", dir / "base.safetensors", {}}, false), method, out, o);
    return caulk::testing::read_file(out);
  };
  const std::string one = bytes(1, 1 << 20);
  EXPECT_EQ(one, bytes(4, 1 << 20));
  EXPECT_EQ(one, bytes(3, 5));
}

}  // namespace
}  // namespace caulk::merge
