// .npy images built by hand in tests, independently of caulk's writer.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace caulk::testing {

// A version 1.0 .npy image: `descr` such as "<f4", `shape` such as "(3, 2)", raw little-endian data.
inline std::string npy_image(const std::string& descr, const std::string& shape, const void* data, std::size_t bytes,
                             bool fortran = false) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
  std::size_t total = 10 + dict.size() + 1;
  std::size_t pad = (64 - total % 64) % 64;
  dict += std::string(pad, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  std::uint16_t len = static_cast<std::uint16_t>(dict.size());
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>(len >> 8);
  out += dict;
  out.append(static_cast<const char*>(data), bytes);
  return out;
}

inline std::string npy_f32(std::size_t rows, std::size_t cols, const std::vector<float>& v) {
  // Built with append: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string chains.
  std::string shape = "(";
  shape.append(std::to_string(rows)).append(", ").append(std::to_string(cols)).append(")");
  return npy_image("<f4", shape, v.data(), v.size() * 4);
}

inline std::string npy_i64(const std::vector<std::int64_t>& v) {
  std::string shape = "(";
  shape.append(std::to_string(v.size())).append(",)");
  return npy_image("<i8", shape, v.data(), v.size() * 8);
}

}  // namespace caulk::testing
