// NaN and infinity in a merge (docs/mergers.md, "Non-finite values"): every method refuses a model
// or base holding one, naming the model, the file, the tensor and the element, and writes
// nothing; a merged value that overflows the arithmetic or the output dtype is refused too; with
// allow_non_finite the merge goes through and the value is carried over as the formula gives it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>

#include "caulk/error.hpp"
#include "cli.hpp"
#include "mergers/algorithms/merge_methods.hpp"
#include "merge_test_support.hpp"
#include "mergers/algorithms/non_finite.hpp"

namespace caulk::merge {
namespace {

using namespace caulk::merge_test;
using ::testing::HasSubstr;

std::vector<TensorParameter> ones(std::size_t k) { return std::vector<TensorParameter>(k, TensorParameter(1.0)); }

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A base, two fine-tuned models and a Fisher file each; one value of one model can be spoiled.
struct NonFinite : ::testing::Test {
  caulk::testing::TempDir dir;
  Values raw_base;
  int n = 0;

  void write_all(const Values& spoiled_m1, DType t = DType::F32) {
    raw_base = random_values(1, 1.0);
    write_checkpoint(dir / "base.safetensors", raw_base, t);
    write_checkpoint(dir / "m0.safetensors", random_values(2, 0.3, &raw_base), t);
    write_checkpoint(dir / "m1.safetensors", spoiled_m1, t);
    Values f = random_values(3, 1.0);
    for (auto& [name, v] : f)
      for (double& x : v) x = x * x + 0.01;
    write_checkpoint(dir / "f.safetensors", f, DType::F32);
  }
  // Model m1 with `value` at element `element` of `tensor`.
  Values spoiled(const std::string& tensor, std::size_t element, double value) {
    Values m1 = random_values(4, 0.3, &raw_base);
    m1.at(tensor).at(element) = value;
    return m1;
  }
  MergeInputs inputs(bool fisher) const {
    std::vector<MergeModel> m{{"m0", dir / "m0.safetensors", dir / "f.safetensors"}, {"m1", dir / "m1.safetensors", dir / "f.safetensors"}};
    return MergeInputs::open(m, MergeModel{"base", dir / "base.safetensors", {}}, fisher);
  }
  // The merge's error message ("" when it succeeds), and whether an output file appeared.
  std::string merge(MergeMethod& method, MergeOptions o, bool* written = nullptr) {
    const fs::path out = dir / (numbered("out", ++n) + ".safetensors");
    std::string message;
    try {
      const MergeInputs in = inputs(method.uses_fisher());
      run_merge(in, method, out, o);
    } catch (const Error& e) {
      message = e.what();
    }
    if (written) *written = fs::exists(out);
    return message;
  }
};

// Every element-wise method, as the nodes build them.
std::vector<std::pair<std::string, std::function<std::unique_ptr<MergeMethod>()>>> every_method() {
  return {
      {"linear", [] { return std::make_unique<LinearMerge>(ones(2), true); }},
      {"task_arithmetic", [] { return std::make_unique<TaskArithmeticMerge>(ones(2), TensorParameter(1.0), false); }},
      {"ties", [] { return std::make_unique<TiesMerge>(ones(2), TensorParameter(0.5), TensorParameter(1.0)); }},
      {"dare",
       [] {
         return std::make_unique<DareMerge>(ones(2), TensorParameter(0.5), TensorParameter(1.0), DareMerge::Combine::Linear, false, 1);
       }},
      {"dare_ties",
       [] { return std::make_unique<DareMerge>(ones(2), TensorParameter(0.5), TensorParameter(1.0), DareMerge::Combine::Ties, false, 1); }},
      {"slerp", [] { return std::make_unique<SlerpMerge>(TensorParameter(0.5)); }},
      {"fisher", [] { return std::make_unique<FisherMerge>(ones(2), 1e-6, FisherMerge::FloorMode::Max, true); }},
  };
}

TEST_F(NonFinite, EveryMethodRefusesAModelHoldingNaNOrInfinityAndNamesIt) {
  for (double bad : {kNaN, kInf, -kInf})
    for (std::size_t chunk : {std::size_t{4}, std::size_t{1} << 20}) {
      raw_base = random_values(1, 1.0);
      write_all(spoiled("layers.0.weight", 17, bad));
      for (const auto& [name, make] : every_method()) {
        const std::string what = name + " with " + value_text(bad) + ", chunk " + std::to_string(chunk);
        auto method = make();
        MergeOptions o;
        o.chunk_elements = chunk;
        bool written = true;
        const std::string message = merge(*method, o, &written);
        EXPECT_THAT(message, HasSubstr((dir / "m1.safetensors").string())) << what;
        EXPECT_THAT(message, HasSubstr("model 'm1': tensor 'layers.0.weight', element 17 (index [3, 2]) is " + value_text(bad))) << what;
        EXPECT_THAT(message, HasSubstr("allow_non_finite = true")) << what;
        EXPECT_FALSE(written) << what;
      }
    }
}

TEST_F(NonFinite, AllowNonFiniteMergesAsTheFormulaSays) {
  raw_base = random_values(1, 1.0);
  write_all(spoiled("layers.1.bias", 2, kNaN));
  for (const auto& [name, make] : every_method()) {
    auto method = make();
    MergeOptions o;
    o.allow_non_finite = true;
    bool written = false;
    EXPECT_EQ(merge(*method, o, &written), "") << name;
    ASSERT_TRUE(written) << name;
    const Values got = read_checkpoint(dir / (numbered("out", n) + ".safetensors"));
    // Linear: the NaN spreads to that element only; SLERP's norms are NaN, so the whole tensor.
    if (name == "linear") {
      EXPECT_TRUE(std::isnan(got.at("layers.1.bias")[2]));
      EXPECT_FALSE(std::isnan(got.at("layers.1.bias")[1]));
      EXPECT_FALSE(std::isnan(got.at("layers.0.weight")[0]));
    }
  }
}

TEST_F(NonFinite, TheBaseIsCheckedToo) {
  raw_base = random_values(1, 1.0);
  write_all(random_values(4, 0.3, &raw_base));
  Values base = raw_base;
  base.at("norm.scale")[0] = kNaN;
  write_checkpoint(dir / "base.safetensors", base, DType::F32);
  TaskArithmeticMerge method(ones(2), TensorParameter(1.0), false);
  const std::string message = merge(method, {});
  EXPECT_THAT(message,
              HasSubstr((dir / "base.safetensors").string() + ": the base 'base': tensor 'norm.scale', element 0 (index [0]) is NaN"));
  // Linear merging has no base: the same inputs merge.
  LinearMerge linear(ones(2), true);
  EXPECT_EQ(merge(linear, {}), "");
}

TEST_F(NonFinite, AFiniteDoubleBeyondFloatRangeAsksForFloat64) {
  raw_base = random_values(1, 1.0);
  write_all(spoiled("layers.0.bias", 5, 1e300), DType::F64);
  LinearMerge method(ones(2), true);
  const std::string message = merge(method, {});
  EXPECT_THAT(message, HasSubstr("model 'm1': tensor 'layers.0.bias', element 5 (index [5]) is 1e+300, which is inf in float32 arithmetic: "
                                 "merge with precision = \"float64\""));
  MergeOptions f64;
  f64.precision = Precision::F64;
  EXPECT_EQ(merge(method, f64), "");
  EXPECT_DOUBLE_EQ(read_checkpoint(dir / (numbered("out", n) + ".safetensors")).at("layers.0.bias")[5],
                   (1e300 + random_values(2, 0.3, &raw_base).at("layers.0.bias")[5]) / 2);
}

TEST_F(NonFinite, AMergedValueThatOverflowsIsRefused) {
  // Two finite float32 values whose sum overflows float32: linear with normalize = false.
  raw_base = random_values(1, 1.0);
  Values m0 = random_values(2, 0.3, &raw_base), m1 = random_values(4, 0.3, &raw_base);
  m0.at("layers.1.weight")[4] = 3e38;
  m1.at("layers.1.weight")[4] = 3e38;
  write_all(m1);
  write_checkpoint(dir / "m0.safetensors", m0, DType::F32);
  LinearMerge sum(ones(2), false);
  bool written = true;
  EXPECT_THAT(merge(sum, {}, &written),
              HasSubstr("linear: tensor 'layers.1.weight', element 4 (index [0, 4]): the merged value is inf although "
                        "every input is finite"));
  EXPECT_FALSE(written);
  // In double the sum is finite, but the output (F32, the inputs' dtype) cannot hold it; F64 can.
  MergeOptions f64;
  f64.precision = Precision::F64;
  EXPECT_THAT(merge(sum, f64), HasSubstr("linear: tensor 'layers.1.weight', element 4 (index [0, 4]): the merged value 6e+38 is beyond the "
                                         "range of the output dtype F32"));
  f64.output_dtype = DType::F64;
  EXPECT_EQ(merge(sum, f64), "");
  EXPECT_NEAR(read_checkpoint(dir / (numbered("out", n) + ".safetensors")).at("layers.1.weight")[4], 2 * static_cast<double>(3e38f), 1e25);
}

TEST_F(NonFinite, ANarrowOutputDtypeThatCannotHoldTheValueIsRefused) {
  raw_base = random_values(1, 1.0);
  Values m0 = random_values(2, 0.3, &raw_base), m1 = random_values(4, 0.3, &raw_base);
  m0.at("layers.0.bias")[1] = 70000;
  m1.at("layers.0.bias")[1] = 70000;
  write_all(m1);
  write_checkpoint(dir / "m0.safetensors", m0, DType::F32);
  LinearMerge soup(ones(2), true);
  MergeOptions o;
  o.output_dtype = DType::F16;
  bool written = true;
  EXPECT_THAT(merge(soup, o, &written),
              HasSubstr("linear: tensor 'layers.0.bias', element 1 (index [1]): the merged value 70000 is beyond the "
                        "range of the output dtype F16"));
  EXPECT_FALSE(written);
  o.allow_non_finite = true;
  EXPECT_EQ(merge(soup, o), "");
  EXPECT_TRUE(std::isinf(read_checkpoint(dir / (numbered("out", n) + ".safetensors")).at("layers.0.bias")[1]));
}

TEST_F(NonFinite, AStagedOutputFileChecksToo) {
  raw_base = random_values(1, 1.0);
  write_all(spoiled("layers.1.weight", 0, kInf));
  LinearMerge method(ones(2), true);
  const MergeInputs in = inputs(false);
  MergeOptions o;
  o.max_shard_bytes = 100;
  StagedMerge staged(in, method, dir / "staged", o);
  std::string messages;
  for (std::size_t f = 0; f < staged.file_count(); ++f) try {
      merge_output_file(in, method, staged.file_job(f), Precision::F32, 1 << 20);
    } catch (const Error& e) {
      messages += e.what();
    }
  EXPECT_THAT(messages, HasSubstr("model 'm1': tensor 'layers.1.weight', element 0 (index [0, 0]) is inf"));
}

TEST_F(NonFinite, ANonFiniteFisherValueIsNamedWhenTheNormIsTaken) {
  raw_base = random_values(1, 1.0);
  write_all(random_values(4, 0.3, &raw_base));
  Values f = random_values(3, 1.0);
  for (auto& [name, v] : f)
    for (double& x : v) x = x * x + 0.01;
  f.at("layers.1.weight")[3] = kNaN;
  write_checkpoint(dir / "f.safetensors", f, DType::F32);
  FisherMerge method(ones(2), 1e-6, FisherMerge::FloorMode::Max, true);
  EXPECT_THAT(merge(method, {}),
              HasSubstr((dir / "f.safetensors").string() + ": the Fisher of model 'm0': tensor 'layers.1.weight', element 3 "
                                                           "(index [0, 3]): Fisher value NaN"));
}

TEST(NonFiniteScan, FindsTheFirstAndOnlyNonFiniteValues) {
  std::vector<double> x(5000, 1.0);
  EXPECT_EQ(first_non_finite(x.data(), x.size()), x.size());
  x[4097] = kNaN;
  x[4500] = kInf;
  EXPECT_EQ(first_non_finite(x.data(), x.size()), 4097u);
  std::vector<float> y(3000, -2.0f);
  y[2999] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(first_non_finite(y.data(), y.size()), 2999u);
  y[2999] = std::numeric_limits<float>::max();
  EXPECT_EQ(first_non_finite(y.data(), y.size()), y.size());
  // The thresholds are where round to nearest even gives infinity.
  EXPECT_TRUE(std::isinf(io::f16_to_f32(io::f32_to_f16(static_cast<float>(overflow_threshold(DType::F16))))));
  EXPECT_FALSE(std::isinf(io::f16_to_f32(io::f32_to_f16(std::nextafter(static_cast<float>(overflow_threshold(DType::F16)), 0.0f)))));
  EXPECT_TRUE(std::isinf(io::bf16_to_f32(io::f32_to_bf16(static_cast<float>(overflow_threshold(DType::BF16))))));
  EXPECT_FALSE(std::isinf(io::bf16_to_f32(io::f32_to_bf16(std::nextafter(static_cast<float>(overflow_threshold(DType::BF16)), 0.0f)))));
  EXPECT_TRUE(std::isinf(static_cast<float>(overflow_threshold(DType::F32))));
  EXPECT_FALSE(std::isinf(static_cast<float>(std::nextafter(overflow_threshold(DType::F32), 0.0))));
}

// Through the command line: the node's error, its exit code, and allow_non_finite.
TEST(NonFiniteNodes, AMergeNodeRefusesAndTheParameterAllows) {
  caulk::testing::TempDir dir;
  const Values raw = random_values(1, 1.0);
  Values b = random_values(3, 0.1, &raw);
  b.at("layers.0.weight")[9] = kNaN;
  write_checkpoint(dir / "a.safetensors", random_values(2, 0.1, &raw), DType::F32);
  write_checkpoint(dir / "b.safetensors", b, DType::F32);
  dir.write("hub.toml",
            "[hub]\nname = \"t\"\n[[model]]\nname = \"a\"\ncheckpoint = \"a.safetensors\"\n"
            "[[model]]\nname = \"b\"\ncheckpoint = \"b.safetensors\"\n");
  auto run = [&](const std::string& params, const std::string& out) {
    dir.write("p.toml",
              "[pipeline]\nname = \"t\"\n[[node]]\nid = \"load\"\ntype = \"checkpoint.load\"\nparams = { manifest = \"hub.toml\" }\n"
              "[[node]]\nid = \"soup\"\ntype = \"merge.linear\"\ninputs = { checkpoints = \"load\" }\nparams = { " +
                  params + " }\n");
    return caulk::testing::run_caulk({"run", (dir / "p.toml").string(), "--out", (dir / out).string()});
  };
  auto r = run("", "refused");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err,
              HasSubstr((dir / "b.safetensors").string() + ": model 'b': tensor 'layers.0.weight', element 9 (index [1, 4]) is NaN"));
  EXPECT_FALSE(fs::exists(dir / "refused" / "soup" / "soup.safetensors"));
  r = run("allow_non_finite = true", "allowed");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::isnan(read_checkpoint(dir / "allowed" / "soup" / "soup.safetensors").at("layers.0.weight")[9]));
}

}  // namespace
}  // namespace caulk::merge
