// Finding NaN and infinity in the merge's streams (docs/mergers.md, "Non-finite values"): the
// engine checks every input chunk on its first read and every merged chunk before it is written,
// so a checkpoint holding NaN or infinity, or a merge that overflows, is refused instead of
// written, without another pass over the data.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "caulk/io/dtype.hpp"

namespace caulk::merge {

// The index of the first NaN or infinity among x[0, n), or n when every value is finite. A
// branch-free scan of the bit patterns per block (it vectorises), the element search only inside
// a block that holds one.
std::size_t first_non_finite(const float* x, std::size_t n);
std::size_t first_non_finite(const double* x, std::size_t n);

// The smallest magnitude that rounds to infinity when narrowed to `t` (round to nearest even):
// 65520 for F16, 2^128 - 2^119 for BF16, 2^128 - 2^103 for F32; infinity for F64.
double overflow_threshold(io::DType t);

// The index of the first finite value among x[0, n) whose magnitude is at least `threshold`, or n.
std::size_t first_at_least(const float* x, std::size_t n, double threshold);
std::size_t first_at_least(const double* x, std::size_t n, double threshold);

// "17 (index [3, 2])": a flat element index and its position in a tensor of that shape.
std::string element_text(std::size_t flat, const std::vector<std::size_t>& shape);

// "NaN", "inf", "-inf" or the number.
std::string value_text(double v);

}  // namespace caulk::merge
