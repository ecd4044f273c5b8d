#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "caulk/io/dtype.hpp"
#include "io_test_support.hpp"

using namespace caulk::io;
using caulk::test::le_uint;

namespace {
float from_bits(std::uint32_t b) { return std::bit_cast<float>(b); }
std::uint32_t bits_of(float f) { return std::bit_cast<std::uint32_t>(f); }
bool f16_is_nan(std::uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }
bool bf16_is_nan(std::uint16_t b) { return (b & 0x7F80u) == 0x7F80u && (b & 0x7Fu) != 0; }
}  // namespace

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::BOOL), 1u);
  EXPECT_EQ(dtype_size(DType::I8), 1u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::U32), 4u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_TRUE(dtype_is_float(DType::BF16));
  EXPECT_FALSE(dtype_is_float(DType::I64));
  for (const char* name : {"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F16", "BF16", "F32", "F64"}) {
    auto t = dtype_from_safetensors_name(name);
    ASSERT_TRUE(t.has_value()) << name;
    EXPECT_EQ(dtype_name(*t), name);
  }
  EXPECT_FALSE(dtype_from_safetensors_name("F8_E4M3").has_value());
  EXPECT_FALSE(dtype_from_safetensors_name("f32").has_value());
}

TEST(Half, NarrowingHandWorkedPatterns) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(0.1f), 0x2E66);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);               // the largest finite half
  EXPECT_EQ(f32_to_f16(from_bits(0x477FEFFF)), 0x7BFF);  // just below the midpoint to infinity
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);               // the midpoint: ties to even = infinity
  EXPECT_EQ(f32_to_f16(1e10f), 0x7C00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24: even is 0
  EXPECT_EQ(f32_to_f16(from_bits(0x33000001)), 0x0001);  // just above that tie
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // tie between 1 and 2 units: even is 2
  EXPECT_EQ(f32_to_f16(from_bits(0x387FE000)), 0x0400);  // 2^-14 - 2^-25: largest subnormal rounds up
  EXPECT_EQ(f32_to_f16(from_bits(0x3F801000)), 0x3C00);  // 1 + 2^-11: tie, stays on even 0x3C00
  EXPECT_EQ(f32_to_f16(from_bits(0x3F803000)), 0x3C02);  // 1 + 3*2^-11: tie, up to even 0x3C02
  EXPECT_EQ(f32_to_f16(from_bits(0x3F801001)), 0x3C01);  // just above a tie
  EXPECT_TRUE(f16_is_nan(f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(f16_is_nan(f32_to_f16(from_bits(0x7F800001))));  // payload only in dropped bits
  EXPECT_TRUE(f16_is_nan(f32_to_f16(from_bits(0xFFC00000))));
}

TEST(Half, WideningHandWorkedPatterns) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(bits_of(f16_to_f32(0x8000)), 0x80000000u);
  EXPECT_EQ(f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7C01)));
}

TEST(Half, EveryHalfSurvivesARoundTripThroughFloat) {
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    auto half = static_cast<std::uint16_t>(h);
    float f = f16_to_f32(half);
    if (f16_is_nan(half)) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_TRUE(f16_is_nan(f32_to_f16(f))) << std::hex << h;
    } else {
      EXPECT_EQ(f32_to_f16(f), half) << std::hex << h;
    }
  }
}

TEST(Half, MidpointsBetweenNeighboursRoundToEven) {
  // Between each pair of adjacent finite halves: the exact midpoint goes to the even one, the
  // floats on either side of it go to the nearer one. Midpoints need 12 bits, so they are exact.
  for (std::uint16_t h = 0; h < 0x7BFF; ++h) {
    double low = f16_to_f32(h), high = f16_to_f32(static_cast<std::uint16_t>(h + 1));
    float mid = static_cast<float>((low + high) / 2);
    ASSERT_EQ(static_cast<double>(mid), (low + high) / 2);
    std::uint16_t even = (h & 1u) ? static_cast<std::uint16_t>(h + 1) : h;
    EXPECT_EQ(f32_to_f16(mid), even) << std::hex << h;
    EXPECT_EQ(f32_to_f16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    EXPECT_EQ(f32_to_f16(std::nextafter(mid, 1e9f)), h + 1) << std::hex << h;
    EXPECT_EQ(f32_to_f16(-mid), even | 0x8000u) << std::hex << h;
  }
}

TEST(BFloat16, HandWorkedPatterns) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(-1.0f), 0xBF80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808000)), 0x3F80);  // tie, stays on even
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F818000)), 0x3F82);  // tie, up to even
  EXPECT_EQ(f32_to_bf16(from_bits(0xBF818000)), 0xBF82);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808001)), 0x3F81);  // above the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F807FFF)), 0x3F80);  // below the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x7F7FFFFF)), 0x7F80);  // max float rounds to infinity
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00000001)), 0x0000);  // tiny subnormal rounds to zero
  EXPECT_TRUE(bf16_is_nan(f32_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(bf16_is_nan(f32_to_bf16(from_bits(0x7F800001))));  // payload only in dropped bits
  EXPECT_EQ(bits_of(bf16_to_f32(0x4049)), 0x40490000u);
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  for (std::uint32_t b = 0; b <= 0xFFFF; ++b) {
    auto v = static_cast<std::uint16_t>(b);
    if (bf16_is_nan(v)) continue;
    EXPECT_EQ(f32_to_bf16(bf16_to_f32(v)), v) << std::hex << b;
  }
}

TEST(DType, LoadsEveryTypeFromUnalignedMemory) {
  struct Case {
    DType type;
    std::string bytes;
    double expected;
  };
  const std::vector<Case> cases = {
      {DType::BOOL, "\x02", 1.0},
      {DType::BOOL, std::string(1, '\0'), 0.0},
      {DType::U8, "\xFF", 255.0},
      {DType::I8, "\x80", -128.0},
      {DType::U16, "\xFE\xFF", 65534.0},
      {DType::I16, "\xFE\xFF", -2.0},
      {DType::U32, le_uint(4000000000u, 4), 4000000000.0},
      {DType::I32, "\xFB\xFF\xFF\xFF", -5.0},
      {DType::U64, le_uint(0x8000000000000000ull, 8), 9223372036854775808.0},
      {DType::I64, le_uint(static_cast<std::uint64_t>(-9000000000000000ll), 8), -9e15},
      {DType::F16, le_uint(0x3C00, 2), 1.0},
      {DType::F16, le_uint(0xC500, 2), -5.0},
      {DType::BF16, le_uint(0x4049, 2), 3.140625},
      {DType::F32, le_uint(0x3FC00000, 4), 1.5},
      {DType::F64, le_uint(0x4009000000000000ull, 8), 3.125},
  };
  for (const auto& c : cases) {
    std::string buffer = "x" + c.bytes + c.bytes;  // odd offset: unaligned on purpose
    EXPECT_EQ(load_as_double(buffer.data() + 1, c.type, 1), c.expected) << dtype_name(c.type);
    double d = 0;
    convert_to_double(buffer.data() + 1 + c.bytes.size(), c.type, 1, &d);
    EXPECT_EQ(d, c.expected) << dtype_name(c.type);
    float f = 0;
    convert_to_float(buffer.data() + 1, c.type, 1, &f);
    EXPECT_EQ(f, static_cast<float>(c.expected)) << dtype_name(c.type);
  }
}

TEST(DType, ConvertsArraysInBulk) {
  std::string bytes = le_uint(1, 2) + le_uint(static_cast<std::uint16_t>(-7), 2) + le_uint(300, 2);
  std::vector<double> out(3);
  convert_to_double(bytes.data(), DType::I16, 3, out.data());
  EXPECT_EQ(out, (std::vector<double>{1, -7, 300}));
  convert_to_double(nullptr, DType::I16, 0, nullptr);  // nothing to do, nothing touched
}
