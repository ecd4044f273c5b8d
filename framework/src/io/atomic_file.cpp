#include "caulk/io/atomic_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "caulk/error.hpp"

namespace caulk::io {

AtomicFile::AtomicFile(std::filesystem::path target) : staged_(std::move(target), StagedOutput::Kind::File) {
  const int fd = ::dup(staged_.fd());
  if (fd >= 0) file_ = ::fdopen(fd, "wb");
  if (!file_) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    throw DataError(staged_.target().string(), std::string("cannot open the temporary file: ") + std::strerror(error));
  }
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  // staged_ removes the temporary unless committed.
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (!file_) throw DataError(target().string(), staged_.committed() ? "write after commit" : "write after a failed commit");
  if (size == 0) return;
  if (std::fwrite(data, 1, size, file_) != size) throw DataError(target().string(), std::string("write failed: ") + std::strerror(errno));
}

void AtomicFile::commit(OnExisting existing, Durability durability) {
  const std::string name = target().string();
  if (staged_.committed()) throw DataError(name, "committed twice");
  if (!file_) throw DataError(name, "commit after a failed commit");
  std::FILE* file = file_;
  file_ = nullptr;  // closed here whatever happens; the staged output then only removes the temp
  const bool flushed = std::fflush(file) == 0;
  const int error = errno;
  const bool closed = std::fclose(file) == 0;
  if (!flushed || !closed) throw DataError(name, std::string("cannot write: ") + std::strerror(flushed ? errno : error));
  staged_.commit(existing, durability);  // fsync, rename, fsync the folder
}

void write_file_atomic(const std::filesystem::path& target, std::string_view content, OnExisting existing, Durability durability) {
  AtomicFile file(target);
  file.write(content);
  file.commit(existing, durability);
}

}  // namespace caulk::io
