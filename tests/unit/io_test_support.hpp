// Helpers for the file-format tests: a scratch folder, hand-built byte images, and a way to
// catch the one DataError a malformed file must produce.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "caulk/error.hpp"
#include "temp_dir.hpp"

namespace caulk::test {

// The suite's temporary folder, plus a listing of what is in it (to check that a failed write
// left nothing behind).
class ScratchDir : public caulk::testing::TempDir {
 public:
  // Every entry of the folder, by file name (hidden files included).
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path())) names.push_back(e.path().filename().string());
    return names;
  }
};

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::vector<std::byte> to_byte_vector(const std::string& s) {
  std::vector<std::byte> out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// Little-endian encodings of single values, appended to a byte image.
inline std::string le_uint(std::uint64_t value, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  return out;
}
inline std::string le_f32(float f) { return le_uint(std::bit_cast<std::uint32_t>(f), 4); }
inline std::string le_f64(double d) { return le_uint(std::bit_cast<std::uint64_t>(d), 8); }

// The message of the DataError `fn` throws; a test failure when it throws anything else or nothing.
template <class Fn>
std::string data_error_message(Fn&& fn) {
  try {
    fn();
  } catch (const caulk::DataError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected caulk::DataError, got another exception: " << e.what();
    return {};
  } catch (...) {
    ADD_FAILURE() << "expected caulk::DataError, got a non-standard exception";
    return {};
  }
  ADD_FAILURE() << "expected caulk::DataError, nothing was thrown";
  return {};
}

}  // namespace caulk::test
