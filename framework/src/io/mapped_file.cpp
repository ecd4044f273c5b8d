#include "caulk/io/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "caulk/error.hpp"

namespace caulk::io {

namespace {
std::string errno_text(int error) {
  if (error == ENOENT) return "no such file";
  return std::strerror(error);
}

// Closes the descriptor on every path out of open(): the mapping does not need it.
struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};
}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw DataError(name, "cannot open: " + errno_text(errno));
  FdCloser closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) throw DataError(name, "cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) throw DataError(name, "not a regular file");
  if (st.st_size < 0 || static_cast<std::uintmax_t>(st.st_size) > SIZE_MAX)
    throw DataError(name, "file size " + std::to_string(st.st_size) + " cannot be mapped");

  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<std::size_t>(st.st_size);
  if (file->size_ == 0) return file;  // mmap refuses length 0; an empty file has no data

  void* address = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (address == MAP_FAILED) throw DataError(name, "cannot map " + std::to_string(file->size_) +
                                                      " bytes: " + errno_text(errno));
  file->data_ = static_cast<const std::byte*>(address);
  return file;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace caulk::io
