// A read-only memory map of a whole file (pages are read lazily, on first touch).
#pragma once
#include <cstddef>
#include <filesystem>
#include <memory>

namespace caulk::io {

class MappedFile {
 public:
  // Throws DataError naming the file when it cannot be opened or mapped. An empty file maps to
  // size() == 0 and data() == nullptr.
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile() = default;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::filesystem::path path_;
};

}  // namespace caulk::io
