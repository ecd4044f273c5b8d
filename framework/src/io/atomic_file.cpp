#include "caulk/io/atomic_file.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

#include "caulk/error.hpp"

namespace caulk::io {

namespace {

// The process umask, read without changing it (umask(2) can only set it, racing other threads).
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) != 0) continue;
    try {
      return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8) & 0777);
    } catch (const std::exception&) {
      break;
    }
  }
  return 022;
}

// After a rename, the directory entry itself must reach the disk for the new name to survive a
// crash. Best effort: some file systems refuse fsync on directories.
void sync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::filesystem::path directory_of(const std::filesystem::path& target) {
  auto dir = target.parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

}  // namespace

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  const std::string name = target_.string();
  if (target_.filename().empty()) throw DataError(name, "cannot write: the path names no file");
  const auto dir = directory_of(target_);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw DataError(name, "cannot create the folder " + dir.string() + ": " + ec.message());

  std::string temp_name = ".";  // appended piecewise: "." + string trips a GCC 12 -Wrestrict false alarm
  temp_name += target_.filename().string();
  temp_name += ".tmp-XXXXXX";
  std::string pattern = (dir / temp_name).string();
  int fd = ::mkstemp(pattern.data());
  if (fd < 0) throw DataError(name, "cannot create a temporary file in " + dir.string() + ": " + std::strerror(errno));
  temp_ = pattern;
  // mkstemp creates 0600; give the output the permissions an ordinary new file would have.
  ::fchmod(fd, 0666 & ~current_umask());
  file_ = ::fdopen(fd, "wb");
  if (!file_) {
    int error = errno;
    ::close(fd);
    ::unlink(temp_.c_str());
    throw DataError(name, std::string("cannot open the temporary file: ") + std::strerror(error));
  }
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (!file_) throw DataError(target_.string(), committed_ ? "write after commit" : "write after a failed commit");
  if (size == 0) return;
  if (std::fwrite(data, 1, size, file_) != size)
    throw DataError(target_.string(), std::string("write failed: ") + std::strerror(errno));
}

void AtomicFile::commit() {
  const std::string name = target_.string();
  if (committed_) throw DataError(name, "committed twice");
  if (!file_) throw DataError(name, "commit after a failed commit");
  std::FILE* file = file_;
  file_ = nullptr;  // closed below whatever happens; the destructor then only removes the temp
  bool flushed = std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
  int error = errno;
  bool closed = std::fclose(file) == 0;
  if (!flushed || !closed) throw DataError(name, std::string("cannot flush to disk: ") + std::strerror(flushed ? errno : error));
  if (std::rename(temp_.c_str(), target_.c_str()) != 0)
    throw DataError(name, std::string("cannot rename the temporary file onto the target: ") + std::strerror(errno));
  committed_ = true;
  sync_directory(directory_of(target_));
}

void write_file_atomic(const std::filesystem::path& target, std::string_view content) {
  AtomicFile file(target);
  file.write(content);
  file.commit();
}

}  // namespace caulk::io
