// The subset of Python literal syntax a .npy header is written in.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace caulk::io::detail {

// A value of the small subset of Python literals a .npy header uses.
struct PyValue {
  enum class Kind { None, Bool, Int, Str, Tuple, List, Dict };
  Kind kind = Kind::None;
  bool boolean = false;
  bool negative = false;
  std::uint64_t magnitude = 0;
  std::string text;
  std::vector<PyValue> items;      // tuple and list elements, dict values
  std::vector<std::string> keys;   // dict keys (strings only)
  std::size_t begin = 0, end = 0;  // where it was written, for messages
};

// Parses one literal (and nothing after it but whitespace). Throws DataError naming `file`, the
// column and, inside a top-level dict, the key whose value is malformed.
PyValue parse_py_literal(std::string_view text, const std::string& file);

}  // namespace caulk::io::detail
