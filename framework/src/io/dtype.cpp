#include "caulk/io/dtype.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace caulk::io {

static_assert(std::endian::native == std::endian::little, "caulk reads little-endian .npy and .safetensors data in place");

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::BOOL:
    case DType::U8:
    case DType::I8:
      return 1;
    case DType::U16:
    case DType::I16:
    case DType::F16:
    case DType::BF16:
      return 2;
    case DType::U32:
    case DType::I32:
    case DType::F32:
      return 4;
    case DType::U64:
    case DType::I64:
    case DType::F64:
      return 8;
  }
  throw std::invalid_argument("dtype_size: not a DType");
}

bool dtype_is_float(DType t) { return t == DType::F16 || t == DType::BF16 || t == DType::F32 || t == DType::F64; }

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::BOOL:
      return "BOOL";
    case DType::U8:
      return "U8";
    case DType::I8:
      return "I8";
    case DType::U16:
      return "U16";
    case DType::I16:
      return "I16";
    case DType::U32:
      return "U32";
    case DType::I32:
      return "I32";
    case DType::U64:
      return "U64";
    case DType::I64:
      return "I64";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
  }
  throw std::invalid_argument("dtype_name: not a DType");
}

std::optional<DType> dtype_from_safetensors_name(std::string_view name) {
  static constexpr DType kAll[] = {DType::BOOL, DType::U8,  DType::I8,  DType::U16,  DType::I16, DType::U32, DType::I32,
                                   DType::U64,  DType::I64, DType::F16, DType::BF16, DType::F32, DType::F64};
  for (DType t : kAll)
    if (dtype_name(t) == name) return t;
  return std::nullopt;
}

float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  const std::uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa x 2^-24, exact in float32.
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1F)  // infinity, or NaN with its payload kept
    return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13));
}

std::uint16_t f32_to_f16(float f) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;

  if (magnitude > 0x7F800000u)  // NaN: keep the top of the payload and force the quiet bit
    return static_cast<std::uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
  // 65520 (0x477FF000) is the midpoint between 65504 (max f16, odd mantissa) and 65536: ties to even
  // round it up, so it and everything above becomes infinity.
  if (magnitude >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);
  if (magnitude >= 0x38800000u) {  // >= 2^-14: a normal f16
    // Rebias the exponent (127 -> 15), then round the 13 dropped bits to nearest even; a carry
    // out of the mantissa correctly bumps the exponent.
    const std::uint32_t rebiased = magnitude - ((127u - 15u) << 23);
    const std::uint32_t rounded = rebiased + 0xFFFu + ((rebiased >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | (rounded >> 13));
  }
  // Subnormal f16 (units of 2^-24). At or below 2^-25 (a tie with zero) rounds to zero.
  if (magnitude <= 0x33000000u) return sign;
  const std::uint32_t exponent = magnitude >> 23;                      // 102 .. 112 here
  const std::uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;  // with the implicit 1
  const std::uint32_t shift = 126u - exponent;                         // 14 .. 24
  std::uint32_t quotient = mantissa >> shift;
  const std::uint32_t remainder = mantissa & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1u);
  if (remainder > half || (remainder == half && (quotient & 1u))) ++quotient;  // may reach 0x400: the
  return static_cast<std::uint16_t>(sign | quotient);                          // smallest normal
}

float bf16_to_f32(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

std::uint16_t f32_to_bf16(float f) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  // A NaN whose payload lives only in the dropped half would become infinity: set the quiet bit.
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);
  const std::uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);  // ties to even
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

namespace {

// Reads element i with memcpy: the buffer may be unaligned.
template <class T>
T load(const void* data, std::size_t i) {
  T value;
  std::memcpy(&value, static_cast<const unsigned char*>(data) + i * sizeof(T), sizeof(T));
  return value;
}

template <class Out>
Out element(const void* data, DType t, std::size_t i) {
  switch (t) {
    case DType::BOOL:
      return load<std::uint8_t>(data, i) != 0 ? Out(1) : Out(0);
    case DType::U8:
      return static_cast<Out>(load<std::uint8_t>(data, i));
    case DType::I8:
      return static_cast<Out>(load<std::int8_t>(data, i));
    case DType::U16:
      return static_cast<Out>(load<std::uint16_t>(data, i));
    case DType::I16:
      return static_cast<Out>(load<std::int16_t>(data, i));
    case DType::U32:
      return static_cast<Out>(load<std::uint32_t>(data, i));
    case DType::I32:
      return static_cast<Out>(load<std::int32_t>(data, i));
    case DType::U64:
      return static_cast<Out>(load<std::uint64_t>(data, i));
    case DType::I64:
      return static_cast<Out>(load<std::int64_t>(data, i));
    case DType::F16:
      return static_cast<Out>(f16_to_f32(load<std::uint16_t>(data, i)));
    case DType::BF16:
      return static_cast<Out>(bf16_to_f32(load<std::uint16_t>(data, i)));
    case DType::F32:
      return static_cast<Out>(load<float>(data, i));
    case DType::F64:
      return static_cast<Out>(load<double>(data, i));
  }
  throw std::invalid_argument("element: not a DType");
}

// With the type a template argument, element()'s switch folds away inside the loop.
template <DType T, class Out>
void convert_all(const void* data, std::size_t count, Out* out) {
  for (std::size_t i = 0; i < count; ++i) out[i] = element<Out>(data, T, i);
}

template <class Out>
void convert(const void* data, DType t, std::size_t count, Out* out) {
  if (count == 0) return;
  switch (t) {
    case DType::BOOL:
      return convert_all<DType::BOOL>(data, count, out);
    case DType::U8:
      return convert_all<DType::U8>(data, count, out);
    case DType::I8:
      return convert_all<DType::I8>(data, count, out);
    case DType::U16:
      return convert_all<DType::U16>(data, count, out);
    case DType::I16:
      return convert_all<DType::I16>(data, count, out);
    case DType::U32:
      return convert_all<DType::U32>(data, count, out);
    case DType::I32:
      return convert_all<DType::I32>(data, count, out);
    case DType::U64:
      return convert_all<DType::U64>(data, count, out);
    case DType::I64:
      return convert_all<DType::I64>(data, count, out);
    case DType::F16:
      return convert_all<DType::F16>(data, count, out);
    case DType::BF16:
      return convert_all<DType::BF16>(data, count, out);
    case DType::F32:
      return convert_all<DType::F32>(data, count, out);
    case DType::F64:
      return convert_all<DType::F64>(data, count, out);
  }
}

}  // namespace

double load_as_double(const void* data, DType t, std::size_t i) { return element<double>(data, t, i); }

void convert_to_double(const void* data, DType t, std::size_t count, double* out) { convert(data, t, count, out); }

void convert_to_float(const void* data, DType t, std::size_t count, float* out) { convert(data, t, count, out); }

}  // namespace caulk::io
