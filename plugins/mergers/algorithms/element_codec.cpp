#include "mergers/algorithms/element_codec.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace caulk::merge {

bool is_merge_dtype(io::DType t) { return t == io::DType::F64 || t == io::DType::F32 || t == io::DType::F16 || t == io::DType::BF16; }

namespace {

template <class S>
void decode_any(const void* data, io::DType t, std::size_t first, std::size_t count, S* out) {
  const auto* bytes = static_cast<const unsigned char*>(data) + first * io::dtype_size(t);
  if ((t == io::DType::F32 && sizeof(S) == 4) || (t == io::DType::F64 && sizeof(S) == 8)) {
    std::memcpy(out, bytes, count * sizeof(S));  // the common case: a plain copy
    return;
  }
  switch (t) {
    case io::DType::F32:
      for (std::size_t i = 0; i < count; ++i) {
        float v;
        std::memcpy(&v, bytes + 4 * i, 4);
        out[i] = static_cast<S>(v);
      }
      return;
    case io::DType::F64:
      for (std::size_t i = 0; i < count; ++i) {
        double v;
        std::memcpy(&v, bytes + 8 * i, 8);
        out[i] = static_cast<S>(v);  // to float: rounded to nearest even
      }
      return;
    case io::DType::F16:
    case io::DType::BF16: {
      const bool f16 = t == io::DType::F16;
      for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        out[i] = static_cast<S>(f16 ? io::f16_to_f32(h) : io::bf16_to_f32(h));
      }
      return;
    }
    default:
      throw std::invalid_argument("decode: not a floating-point dtype");
  }
}

void store16(void* out, std::size_t i, std::uint16_t h) { std::memcpy(static_cast<unsigned char*>(out) + 2 * i, &h, 2); }

}  // namespace

void decode(const void* data, io::DType t, std::size_t first, std::size_t count, float* out) { decode_any(data, t, first, count, out); }
void decode(const void* data, io::DType t, std::size_t first, std::size_t count, double* out) { decode_any(data, t, first, count, out); }

float round_to_odd_float(double x) {
  if (std::isnan(x) || std::isinf(x)) return static_cast<float>(x);
  float f = static_cast<float>(x);  // nearest even
  if (static_cast<double>(f) == x) return f;
  // Step back toward zero when rounding went away from it: that is the truncation.
  if (std::fabs(static_cast<double>(f)) > std::fabs(x)) f = std::nextafter(f, 0.0f);
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(f) | 1u);  // inexact: make it odd
}

std::uint16_t f64_to_f16(double x) { return io::f32_to_f16(round_to_odd_float(x)); }
std::uint16_t f64_to_bf16(double x) { return io::f32_to_bf16(round_to_odd_float(x)); }

void encode(const float* in, std::size_t count, io::DType t, void* out) {
  switch (t) {
    case io::DType::F32:
      std::memcpy(out, in, count * 4);
      return;
    case io::DType::F64:
      for (std::size_t i = 0; i < count; ++i) {
        const double v = in[i];
        std::memcpy(static_cast<unsigned char*>(out) + 8 * i, &v, 8);
      }
      return;
    case io::DType::F16:
      for (std::size_t i = 0; i < count; ++i) store16(out, i, io::f32_to_f16(in[i]));
      return;
    case io::DType::BF16:
      for (std::size_t i = 0; i < count; ++i) store16(out, i, io::f32_to_bf16(in[i]));
      return;
    default:
      throw std::invalid_argument("encode: not a floating-point dtype");
  }
}

void encode(const double* in, std::size_t count, io::DType t, void* out) {
  switch (t) {
    case io::DType::F64:
      std::memcpy(out, in, count * 8);
      return;
    case io::DType::F32:
      for (std::size_t i = 0; i < count; ++i) {
        const float v = static_cast<float>(in[i]);
        std::memcpy(static_cast<unsigned char*>(out) + 4 * i, &v, 4);
      }
      return;
    case io::DType::F16:
      for (std::size_t i = 0; i < count; ++i) store16(out, i, f64_to_f16(in[i]));
      return;
    case io::DType::BF16:
      for (std::size_t i = 0; i < count; ++i) store16(out, i, f64_to_bf16(in[i]));
      return;
    default:
      throw std::invalid_argument("encode: not a floating-point dtype");
  }
}

}  // namespace caulk::merge
