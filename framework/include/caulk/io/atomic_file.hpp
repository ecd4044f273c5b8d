// Outputs are never left half-written: write to a temporary file beside the target, then rename.
#pragma once
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <string_view>

namespace caulk::io {

class AtomicFile {
 public:
  // Creates a temporary file in the target's directory (creating the directory if needed).
  // Throws DataError naming the target on failure.
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Flushes, fsyncs and renames onto the target. Throws DataError on failure.
  void commit();

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temporary() const { return temp_; }

 private:
  std::filesystem::path target_, temp_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

// Writes a whole file atomically.
void write_file_atomic(const std::filesystem::path& target, std::string_view content);

}  // namespace caulk::io
