// Element types shared by the .npy and .safetensors formats, and the half-precision conversions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace caulk::io {

enum class DType { BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64 };

std::size_t dtype_size(DType t);
bool dtype_is_float(DType t);
// The safetensors name ("F32", "BF16", "I64", "BOOL", ...).
std::string_view dtype_name(DType t);
std::optional<DType> dtype_from_safetensors_name(std::string_view name);

// IEEE binary16 and bfloat16 to and from float32; narrowing rounds to nearest, ties to even,
// and keeps NaN a NaN.
float f16_to_f32(std::uint16_t h);
std::uint16_t f32_to_f16(float f);
float bf16_to_f32(std::uint16_t b);
std::uint16_t f32_to_bf16(float f);

// Element `i` of a buffer of type `t`, as double (any type, including BOOL and integers).
// The buffer need not be aligned (safetensors offsets and .npy padding are arbitrary).
double load_as_double(const void* data, DType t, std::size_t i);
// The first `count` elements of a buffer of type `t` (aligned or not), converted in bulk.
// Integers wider than 24 (float) or 53 (double) bits are rounded to nearest.
void convert_to_double(const void* data, DType t, std::size_t count, double* out);
void convert_to_float(const void* data, DType t, std::size_t count, float* out);

}  // namespace caulk::io
