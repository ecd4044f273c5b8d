#include "caulk/io/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "caulk/error.hpp"
#include "caulk/io/access_log.hpp"

namespace caulk::io {

namespace {

std::string errno_text(int error) {
  if (error == ENOENT) return "no such file";
  if (error == ENOTDIR) return "no such file (a part of the path is not a folder)";
  return std::strerror(error);
}

// "" for a regular file, else what it is instead.
std::string not_regular(mode_t mode) {
  if (S_ISREG(mode)) return {};
  const char* kind = S_ISDIR(mode)    ? "a folder"
                     : S_ISFIFO(mode) ? "a FIFO"
                     : S_ISCHR(mode)  ? "a character device"
                     : S_ISBLK(mode)  ? "a block device"
                     : S_ISSOCK(mode) ? "a socket"
                                      : "not a file";
  return std::string("not a regular file (") + kind + ")";
}

std::size_t checked_size(const struct stat& st, const std::string& name) {
  if (st.st_size < 0 || static_cast<std::uintmax_t>(st.st_size) > SIZE_MAX)
    throw DataError(name, "file size " + std::to_string(st.st_size) + " cannot be addressed");
  return static_cast<std::size_t>(st.st_size);
}

}  // namespace

std::optional<std::string> input_file_problem(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_text(errno);
  std::string problem = not_regular(st.st_mode);
  if (problem.empty()) return std::nullopt;
  return problem;
}

InputFile InputFile::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  // Checked before opening: opening a device can have effects (a tape rewinds, a terminal attaches).
  struct stat st {};
  if (::stat(name.c_str(), &st) != 0) throw DataError(name, "cannot open: " + errno_text(errno));
  if (std::string problem = not_regular(st.st_mode); !problem.empty()) throw DataError(name, problem);

  InputFile file;
  file.path_ = path;
  file.fd_ = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (file.fd_ < 0) throw DataError(name, "cannot open: " + errno_text(errno));
  if (::fstat(file.fd_, &st) != 0) throw DataError(name, "cannot stat: " + errno_text(errno));
  if (std::string problem = not_regular(st.st_mode); !problem.empty()) throw DataError(name, problem);
  // Regular files ignore O_NONBLOCK today; cleared so that reads keep their ordinary meaning.
  const int flags = ::fcntl(file.fd_, F_GETFL);
  if (flags < 0 || ::fcntl(file.fd_, F_SETFL, flags & ~O_NONBLOCK) != 0) throw DataError(name, "cannot open: " + errno_text(errno));
  file.size_ = checked_size(st, name);
  // The node running this (if any) read this file: its provenance and cache key (access_log.hpp).
  note_read(path, FileStat{static_cast<std::uintmax_t>(st.st_size),
                           static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                           static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_dev)});
  return file;
}

InputFile::InputFile(InputFile&& other) noexcept : fd_(std::exchange(other.fd_, -1)), size_(other.size_), path_(std::move(other.path_)) {}

InputFile& InputFile::operator=(InputFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    path_ = std::move(other.path_);
  }
  return *this;
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string InputFile::read_all(std::size_t limit) const {
  const std::string name = path_.string();
  auto too_large = [&] { return DataError(name, "is larger than " + std::to_string(limit) + " bytes, the limit for a file of this kind"); };
  if (size_ > limit) throw too_large();
  std::string text;
  text.reserve(size_ + 4096);  // room for the read that finds the end: growing would copy it all
  text.resize(size_);
  std::size_t have = 0;
  for (;;) {
    if (have == text.size()) {
      if (text.size() > limit) throw too_large();  // it grew while read
      text.resize(text.size() + 4096);
    }
    const ssize_t n = ::pread(fd_, text.data() + have, text.size() - have, static_cast<off_t>(have));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw DataError(name, std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  if (have > limit) throw too_large();
  text.resize(have);
  return text;
}

std::string read_text_file(const std::filesystem::path& path, std::size_t limit) { return InputFile::open(path).read_all(limit); }

}  // namespace caulk::io
