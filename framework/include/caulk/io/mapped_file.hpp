// A read-only memory map of a whole file (pages are read lazily, on first touch).
#pragma once
#include <cstddef>
#include <filesystem>
#include <memory>

namespace caulk::io {

class MappedFile {
 public:
  // Opens through InputFile (caulk/io/input_file.hpp: a FIFO, folder or device is refused by
  // name) and maps the file. Throws DataError naming the file when it cannot be opened or mapped.
  // An empty file maps to size() == 0 and data() == nullptr.
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // True when a read of the mapping ran past the end of the file because the file shrank after
  // it was mapped (another program truncated or rewrote it). The read itself completed on zero
  // pages instead of killing caulk with SIGBUS (framework/src/io/mapping_guard.hpp), so whatever
  // read the mapping must call check_intact() after reading and before using what it read.
  bool shrunk() const;
  // Throws DataError("FILE: the file shrank while caulk was reading it ...") when shrunk().
  void check_intact() const;

 private:
  MappedFile() = default;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::filesystem::path path_;
  int guard_slot_ = -1;
};

}  // namespace caulk::io
