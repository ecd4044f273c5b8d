// Size arithmetic that cannot silently wrap: shapes and offsets come from untrusted files.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace caulk::io::detail {

inline std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b) {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) return std::nullopt;
  return a * b;
}

inline std::optional<std::size_t> checked_add(std::size_t a, std::size_t b) {
  if (b > std::numeric_limits<std::size_t>::max() - a) return std::nullopt;
  return a + b;
}

// The number of elements of a shape, or nothing when it overflows.
inline std::optional<std::size_t> checked_product(const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) {
    auto next = checked_mul(n, d);
    if (!next) return std::nullopt;
    n = *next;
  }
  return n;
}

// "2, 3"
inline std::string joined_dims(const std::vector<std::size_t>& shape) {
  std::string s;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s;
}

// A shape written as a Python tuple ("()", "(3,)", "(2, 3)") or a JSON list ("[2, 3]").
inline std::string python_shape(const std::vector<std::size_t>& shape) {
  std::string s = "(";  // appended, not "(" + string: that trips a GCC 12 -Wrestrict false alarm
  s += joined_dims(shape);
  s += shape.size() == 1 ? ",)" : ")";
  return s;
}
inline std::string json_shape(const std::vector<std::size_t>& shape) {
  std::string s = "[";
  s += joined_dims(shape);
  s += "]";
  return s;
}

// Bytes from a file quoted for a message: printable ASCII as is, anything else as \xNN.
inline std::string quote_bytes(const void* data, std::size_t size) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < size; ++i) {
    auto c = static_cast<const unsigned char*>(data)[i];
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      s.push_back(static_cast<char>(c));
    } else {
      s += "\\x";
      s.push_back(kHex[c >> 4]);
      s.push_back(kHex[c & 0xF]);
    }
  }
  return s;
}

}  // namespace caulk::io::detail
