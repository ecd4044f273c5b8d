// Converting runs of tensor elements between their stored dtype (F64, F32, F16, BF16) and the
// merge's arithmetic type (float or double).
//
// Narrowing rounds to nearest, ties to even, once: a double bound for F16 or BF16 is first rounded
// to float *to odd* (truncate, then set the last bit when anything was dropped), which keeps enough
// information that the float -> F16/BF16 rounding of caulk/io/dtype.hpp then gives the correctly
// rounded result (this holds whenever the intermediate format has at least two more significand
// bits than the final one: float has 24, F16 11, BF16 8). Rounding through a nearest-even float
// instead would round twice and miss the right answer near halfway points.
#pragma once
#include <cstddef>
#include <cstdint>

#include "caulk/io/dtype.hpp"

namespace caulk::merge {

// The dtypes a merge reads and writes.
bool is_merge_dtype(io::DType t);

// out[i] = element (first + i) of `data` (stored as `t`), for i < count. `data` may be unaligned.
void decode(const void* data, io::DType t, std::size_t first, std::size_t count, float* out);
void decode(const void* data, io::DType t, std::size_t first, std::size_t count, double* out);

// Writes count elements as `t` into `out` (count * dtype_size(t) bytes), rounding to nearest even.
void encode(const float* in, std::size_t count, io::DType t, void* out);
void encode(const double* in, std::size_t count, io::DType t, void* out);

// double -> float rounded to odd (exact values unchanged; NaN stays NaN).
float round_to_odd_float(double x);
// Correctly rounded (nearest, ties to even) narrowing of a double.
std::uint16_t f64_to_f16(double x);
std::uint16_t f64_to_bf16(double x);

}  // namespace caulk::merge
