#include "mergers/algorithms/tensor_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "caulk/error.hpp"
#include "caulk/io/input_file.hpp"

namespace fs = std::filesystem;

namespace caulk::merge {

namespace {

void read_exactly(int fd, std::uint64_t offset, void* out, std::size_t size, const std::string& file) {
  auto* p = static_cast<char*>(out);
  while (size > 0) {
    const ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw DataError(file, n == 0 ? std::string("the file ended early (changed since it was opened?)")
                                   : std::string("read failed: ") + std::strerror(errno));
    p += n, size -= static_cast<std::size_t>(n), offset += static_cast<std::uint64_t>(n);
  }
}

}  // namespace

std::shared_ptr<const TensorFiles> TensorFiles::locate(const io::Checkpoint& checkpoint) {
  std::shared_ptr<TensorFiles> files(new TensorFiles());
  std::map<fs::path, std::size_t> numbers;
  for (const auto& tensor : checkpoint.names()) {
    // The file and offset io::Checkpoint validated: shards are not looked up again by name.
    const io::TensorLocation at = checkpoint.location(tensor);
    auto [it, added] = numbers.emplace(at.file, files->fds_.size());
    if (added) {
      io::InputFile input = io::InputFile::open(at.file);
      files->fds_.push_back(input.fd());
      files->inputs_.push_back(std::move(input));
      files->names_.push_back(at.file.string());
    }
    files->tensors_[tensor] = {it->second, at.offset};
  }
  return files;
}

TensorFiles::~TensorFiles() = default;

void TensorFiles::read(const std::string& tensor, std::uint64_t offset, void* out, std::size_t size) const {
  const Location& at = tensors_.at(tensor);
  read_exactly(fds_[at.file], at.data_offset + offset, out, size, names_[at.file]);
}

}  // namespace caulk::merge
