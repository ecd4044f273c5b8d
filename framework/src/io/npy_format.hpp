// The .npy header, as the reader and the writer share it.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "caulk/io/dtype.hpp"

namespace caulk::io::detail {

// The NumPy descr of a type ("<f4", "|b1"), or nothing for bfloat16, which NumPy lacks.
std::optional<std::string> npy_descr(DType t);

// Magic, version, header length and the padded dict: everything before the data. Format 1.0, or
// 2.0 when the header does not fit a 16-bit length; the data starts on a 64-byte boundary.
std::string npy_header_image(const std::string& descr, const std::vector<std::size_t>& shape, bool fortran_order);

}  // namespace caulk::io::detail
