// Narrowing to F16 and BF16 against a brute-force search over every half value.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "caulk/io/dtype.hpp"
#include "mergers/algorithms/element_codec.hpp"

namespace caulk::merge {
namespace {

// The correctly rounded half (nearest; on a tie the one with an even last bit), found by scanning
// every finite value of the format: independent of any bit manipulation.
std::uint16_t nearest_by_search(double x, bool f16) {
  auto value = [&](std::uint16_t h) { return static_cast<double>(f16 ? io::f16_to_f32(h) : io::bf16_to_f32(h)); };
  const std::uint16_t max_finite = f16 ? 0x7BFF : 0x7F7F;
  const double ax = std::fabs(x);
  const std::uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  std::uint16_t best = 0;
  double best_error = INFINITY;
  for (std::uint32_t h = 0; h <= max_finite; ++h) {
    const double e = std::fabs(value(static_cast<std::uint16_t>(h)) - ax);
    if (e < best_error || (e == best_error && (h & 1u) == 0)) best = static_cast<std::uint16_t>(h), best_error = e;
  }
  // Beyond the largest finite value by half a step or more: infinity (IEEE overflow rule).
  const double max = value(max_finite);
  const double step = max - value(max_finite - 1);
  if (ax >= max + step / 2) return sign | (f16 ? 0x7C00 : 0x7F80);
  return sign | best;
}

TEST(ElementCodec, DoubleToHalfRoundsToNearestEvenOnce) {
  std::mt19937_64 rng(5);
  std::vector<double> xs;
  std::uniform_real_distribution<double> mantissa(1.0, 2.0);
  std::uniform_int_distribution<int> exponent(-26, 17);
  for (int i = 0; i < 400; ++i) xs.push_back(std::ldexp(mantissa(rng), exponent(rng)) * (i % 2 ? -1 : 1));
  // Halfway points between neighbouring F16 values, and a hair either side of them: rounding
  // through a nearest-even float would get the hair-above cases wrong (double rounding).
  for (std::uint16_t h : {0x3C00, 0x3C01, 0x0001, 0x03FF, 0x7BFE, 0x4000, 0x1234}) {
    const double a = io::f16_to_f32(h), b = io::f16_to_f32(static_cast<std::uint16_t>(h + 1));
    const double mid = (a + b) / 2;
    for (double x : {mid, mid * (1 + 1e-12), mid * (1 - 1e-12), std::nextafter(mid, 10.0)}) xs.push_back(x);
  }
  for (double x : xs) {
    EXPECT_EQ(f64_to_f16(x), nearest_by_search(x, true)) << x;
  }
  for (std::uint16_t h : {0x3F80, 0x3F81, 0x0001, 0x7F7E, 0x4321}) {
    const double a = io::bf16_to_f32(h), b = io::bf16_to_f32(static_cast<std::uint16_t>(h + 1));
    const double mid = (a + b) / 2;
    for (double x : {mid, mid * (1 + 1e-12), mid * (1 - 1e-12)}) EXPECT_EQ(f64_to_bf16(x), nearest_by_search(x, false)) << x;
  }
  for (int i = 0; i < 200; ++i) {
    const double x = xs[static_cast<std::size_t>(i)] * 1e3;
    EXPECT_EQ(f64_to_bf16(x), nearest_by_search(x, false)) << x;
  }
  EXPECT_EQ(f64_to_f16(1e6), 0x7C00);
  EXPECT_EQ(f64_to_f16(-1e6), 0xFC00);
  EXPECT_EQ(f64_to_f16(1e-30), 0x0000);
  EXPECT_TRUE(std::isnan(io::f16_to_f32(f64_to_f16(NAN))));
}

TEST(ElementCodec, FloatEncodingRoundsToNearestEven) {
  std::mt19937_64 rng(9);
  std::normal_distribution<float> normal(0.f, 3.f);
  std::vector<float> in(300);
  for (auto& x : in) x = normal(rng);
  in[0] = 1.0f + 0x1.0p-11f;      // an F16 tie: rounds to the even 1.0
  in[1] = 1.0f + 3 * 0x1.0p-11f;  // a tie that rounds up to the even 1 + 2^-9
  std::vector<std::uint16_t> f16(in.size()), bf16(in.size());
  encode(in.data(), in.size(), io::DType::F16, f16.data());
  encode(in.data(), in.size(), io::DType::BF16, bf16.data());
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(f16[i], nearest_by_search(in[i], true)) << in[i];
    EXPECT_EQ(bf16[i], nearest_by_search(in[i], false)) << in[i];
  }
  EXPECT_EQ(f16[0], 0x3C00);
  EXPECT_EQ(f16[1], 0x3C02);
}

TEST(ElementCodec, DecodesEveryDtypeFromAnUnalignedOffset) {
  const std::vector<double> values{1.5, -2.25, 1e-3, 65504.0};
  for (io::DType t : {io::DType::F64, io::DType::F32, io::DType::F16, io::DType::BF16}) {
    std::vector<unsigned char> bytes(1 + values.size() * io::dtype_size(t));
    std::vector<double> as_double(values.size());
    encode(values.data(), values.size(), t, bytes.data() + 1);
    decode(bytes.data() + 1, t, 1, 3, as_double.data());
    std::vector<float> as_float(3);
    decode(bytes.data() + 1, t, 1, 3, as_float.data());
    for (std::size_t i = 1; i < 4; ++i) {
      const double want = t == io::DType::F16    ? io::f16_to_f32(io::f32_to_f16(static_cast<float>(values[i])))
                          : t == io::DType::BF16 ? io::bf16_to_f32(io::f32_to_bf16(static_cast<float>(values[i])))
                          : t == io::DType::F32  ? static_cast<float>(values[i])
                                                 : values[i];
      EXPECT_EQ(as_double[i - 1], want) << io::dtype_name(t) << " " << i;
      EXPECT_EQ(as_float[i - 1], static_cast<float>(want)) << io::dtype_name(t) << " " << i;
    }
  }
}

}  // namespace
}  // namespace caulk::merge
