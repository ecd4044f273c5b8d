// Opening a file caulk reads (data files, manifests, pipelines, text a report shows).
//
// Every reader goes through InputFile, so "is it a file?" has one answer everywhere: a FIFO would
// block the run forever, a device could have side effects or never end, and a folder is not
// missing; each is refused by name. The path is checked with stat before anything is opened, the
// open itself is non-blocking (a FIFO swapped in after the check does not hang it), and the opened
// descriptor is checked again with fstat.
#pragma once
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

namespace caulk::io {

// Why `path` cannot be read as an input file, or nothing when it is a regular file (following
// symbolic links). Opens nothing. Examples: "no such file", "not a regular file (a FIFO)",
// "not a regular file (a folder)", "not a regular file (a character device)".
std::optional<std::string> input_file_problem(const std::filesystem::path& path);

class InputFile {
 public:
  // Throws DataError naming the file: "cannot open: no such file", "not a regular file (a folder)"...
  static InputFile open(const std::filesystem::path& path);
  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  int fd() const { return fd_; }
  std::size_t size() const { return size_; }  // at open
  const std::filesystem::path& path() const { return path_; }

  // The whole file; throws DataError when it holds more than `limit` bytes or cannot be read.
  std::string read_all(std::size_t limit) const;

 private:
  InputFile() = default;
  int fd_ = -1;
  std::size_t size_ = 0;
  std::filesystem::path path_;
};

// Files people write by hand (pipelines, manifests, JSON) are small; the bound keeps a huge file
// named by mistake from filling memory.
inline constexpr std::size_t kMaxTextFile = std::size_t{64} << 20;

// The whole text of an input file; throws DataError naming the file.
std::string read_text_file(const std::filesystem::path& path, std::size_t limit = kMaxTextFile);

}  // namespace caulk::io
