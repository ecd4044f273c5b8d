// Outputs are never left half-written: a file is written under a temporary name beside the target,
// flushed to disk, then renamed onto it in one step (caulk/io/durable.hpp, the one way every
// writer puts an output under its final name).
#pragma once
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <string_view>

#include "caulk/io/durable.hpp"

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
  // Flushes, fsyncs and renames onto the target as `existing` says (StagedOutput::commit).
  // Throws DataError on failure, Error on a refusal.
  void commit(OnExisting existing = OnExisting::Replace, Durability durability = Durability::Flushed);

  const std::filesystem::path& target() const { return staged_.target(); }
  const std::filesystem::path& temporary() const { return staged_.path(); }

 private:
  StagedOutput staged_;
  std::FILE* file_ = nullptr;  // buffered writes on a duplicate of the staged descriptor
};

// Writes a whole file atomically.
void write_file_atomic(const std::filesystem::path& target, std::string_view content, OnExisting existing = OnExisting::Replace,
                       Durability durability = Durability::Flushed);

}  // namespace caulk::io
