#include "caulk/io/durable.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <system_error>

#include "caulk/error.hpp"
#include "caulk/io/access_log.hpp"
#include "caulk/io/safetensors.hpp"

namespace fs = std::filesystem;

namespace caulk::io {

namespace {

constexpr const char* kTempTag = ".caulk-tmp-";
constexpr const char* kAsideTag = ".caulk-old-";  // an old output moved aside (file systems without RENAME_EXCHANGE)
// Room for the suffix within NAME_MAX (255): long target names are shortened in temporary names.
constexpr std::size_t kMaxNameInTemp = 160;

std::string error_text(int error) { return std::strerror(error); }

// ------------------------------------------------------------------ who owns a temporary

// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. With the PID it
// names one process for as long as the machine runs (a PID alone may be reused).
bool start_time_of(long pid, unsigned long long& start) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const std::size_t paren = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return false;
  std::size_t pos = paren + 1;
  for (int field = 3; field <= 22; ++field) {
    while (pos < stat.size() && stat[pos] == ' ') ++pos;
    const std::size_t end = stat.find(' ', pos);
    if (field == 22) {
      try {
        start = std::stoull(stat.substr(pos, end - pos));
        return true;
      } catch (const std::exception&) {
        return false;
      }
    }
    if (end == std::string::npos) return false;
    pos = end;
  }
  return false;
}

struct Owner {
  long pid = 0;
  unsigned long long start = 0;
};

Owner this_process() {
  // Read once per process (a forked child has its own PID and start time).
  static std::mutex mutex;
  static Owner cached;
  std::lock_guard lock(mutex);
  const long pid = static_cast<long>(::getpid());
  if (cached.pid != pid) {
    cached = Owner{pid, 0};
    start_time_of(pid, cached.start);
  }
  return cached;
}

// False when no process with that PID and start time runs on this machine. Without /proc there is
// no answer here, and the owner's lock alone decides (recover_stale_temporaries).
bool owner_alive(const Owner& o) {
  unsigned long long start = 0;
  if (start_time_of(o.pid, start)) return start == o.start;
  std::error_code ec;
  // A process whose stat cannot be read (another user's, under hardened /proc) may be the owner.
  return fs::exists(fmt::format("/proc/{}", o.pid), ec);
}

struct TemporaryName {
  std::string target;  // the target's file name (possibly shortened, for kTempTag)
  bool aside = false;  // kAsideTag: an old output moved aside
  Owner owner;
};

bool all_of_chars(const std::string& s, const char* allowed) { return !s.empty() && s.find_first_not_of(allowed) == std::string::npos; }

// ".TARGET.caulk-tmp-PID-START-RANDOM" (or .caulk-old-).
bool parse_temporary_name(const std::string& name, TemporaryName& out) {
  if (name.size() < 2 || name[0] != '.') return false;
  std::size_t tag = name.rfind(kTempTag);
  bool aside = false;
  if (tag == std::string::npos) {
    tag = name.rfind(kAsideTag);
    aside = true;
  }
  if (tag == std::string::npos || tag < 2) return false;
  const std::string rest = name.substr(tag + std::strlen(kTempTag));  // both tags have one length
  const std::size_t a = rest.find('-'), b = a == std::string::npos ? a : rest.find('-', a + 1);
  if (b == std::string::npos) return false;
  const std::string pid = rest.substr(0, a), start = rest.substr(a + 1, b - a - 1), random = rest.substr(b + 1);
  if (!all_of_chars(pid, "0123456789") || !all_of_chars(start, "0123456789") || random.size() != 8 ||
      !all_of_chars(random, "0123456789abcdef") || pid.size() > 10 || start.size() > 20)
    return false;
  out.target = name.substr(1, tag - 1);
  out.aside = aside;
  out.owner.pid = std::stol(pid);
  out.owner.start = std::stoull(start);
  return true;
}

std::string temporary_name(const std::string& target_name, const char* tag) {
  static thread_local std::mt19937 random{std::random_device{}()};
  const Owner me = this_process();
  std::string shown = target_name;
  if (std::strcmp(tag, kTempTag) == 0 && shown.size() > kMaxNameInTemp) shown.resize(kMaxNameInTemp);
  return fmt::format(".{}{}{}-{}-{:08x}", shown, tag, me.pid, me.start, random());
}

// ------------------------------------------------------------------ the temporaries this process has open

std::mutex g_open_mutex;
std::set<std::string>& open_temporaries() {
  static std::set<std::string> paths;
  return paths;
}
void note_open(const fs::path& p) {
  std::lock_guard lock(g_open_mutex);
  open_temporaries().insert(p.string());
}
void note_closed(const fs::path& p) {
  std::lock_guard lock(g_open_mutex);
  open_temporaries().erase(p.string());
}

// ------------------------------------------------------------------ file system steps

fs::path parent_of(const fs::path& target) {
  const fs::path dir = target.parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

// After a rename, the directory entry itself must reach the disk for the new name to survive a
// crash. Best effort: some file systems refuse fsync on directories.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

bool exists_no_follow(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

bool is_empty_folder(const fs::path& p) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  std::error_code ec;
  return fs::is_empty(p, ec) && !ec;
}

// renameat2 with flags; -1 and errno as the system call (EINVAL/ENOSYS where unsupported).
int rename_with_flags(const fs::path& from, const fs::path& to, unsigned flags) {
  return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
}

bool unsupported(int error) { return error == EINVAL || error == ENOSYS || error == ENOTSUP; }

void remove_path(const fs::path& p) noexcept {
  std::error_code ec;
  fs::remove_all(p, ec);
}

std::string refusal_existing(const fs::path& target) {
  return fmt::format("the output {} already exists; set overwrite = true to replace it (it was left untouched)", target.string());
}

std::string refusal_appeared(const fs::path& target) {
  return fmt::format(
      "the output {} appeared while this output was being written (another run writing the same target?); it was left "
      "untouched and this result discarded",
      target.string());
}

std::string refusal_not_ours(const fs::path& target) {
  return fmt::format(
      "{} exists and was not written by caulk, so overwrite = true does not replace it (caulk replaces only its own "
      "outputs: a folder holding {}, or a .safetensors file whose metadata says {} = \"{}\"); it was left untouched: "
      "remove or rename it yourself, or choose another output",
      target.string(), kOutputMarker, kWrittenByKey, kWrittenByValue);
}

void write_all(int fd, std::string_view text, const fs::path& file) {
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw DataError(file.string(), "write failed: " + error_text(errno));
    }
    p += n, left -= static_cast<std::size_t>(n);
  }
}

// True when the temporary's owner still holds its lock (open fails: treated as held).
bool lock_held(const fs::path& p, bool folder) {
  const int fd = ::open(p.c_str(), (folder ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return true;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
  ::close(fd);
  return held;
}

}  // namespace

// ------------------------------------------------------------------ marks

bool is_caulk_output(const fs::path& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return false;
  if (S_ISDIR(st.st_mode)) {
    struct stat marker;
    return ::lstat((path / kOutputMarker).c_str(), &marker) == 0 && S_ISREG(marker.st_mode);
  }
  if (!S_ISREG(st.st_mode)) return false;
  // Only the header is read: the 8-byte little-endian size, then the JSON.
  std::ifstream in(path, std::ios::binary);
  unsigned char size_bytes[8];
  if (!in.read(reinterpret_cast<char*>(size_bytes), 8)) return false;
  std::uint64_t size = 0;
  for (int i = 7; i >= 0; --i) size = (size << 8) | size_bytes[i];
  if (size < 2 || size > kMaxSafetensorsHeader || size > static_cast<std::uint64_t>(st.st_size) - 8) return false;
  std::string header(size, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(size))) return false;
  const auto j = nlohmann::json::parse(header, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  const auto meta = j.find("__metadata__");
  if (meta == j.end() || !meta->is_object()) return false;
  const auto mark = meta->find(kWrittenByKey);
  return mark != meta->end() && mark->is_string() && mark->get<std::string>() == kWrittenByValue;
}

void check_replaceable(const fs::path& target, OnExisting existing) {
  if (!exists_no_follow(target) || existing == OnExisting::Replace) return;
  if (existing == OnExisting::Refuse) throw Error(refusal_existing(target));
  if (!is_caulk_output(target) && !is_empty_folder(target)) throw Error(refusal_not_ours(target));
}

bool is_temporary_name(const std::string& name) {
  TemporaryName parsed;
  return parse_temporary_name(name, parsed);
}

// ------------------------------------------------------------------ StagedOutput

StagedOutput::StagedOutput(fs::path target, Kind kind) : target_(std::move(target)), kind_(kind) {
  const std::string name = target_.string();
  if (target_.filename().empty() || target_.filename() == "." || target_.filename() == "..")
    throw DataError(name, "cannot write: the path names no file");
  const fs::path dir = parent_of(target_);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw DataError(name, "cannot create the folder " + dir.string() + ": " + ec.message());
  int error = 0;
  for (int attempt = 0; attempt < 100 && temp_.empty(); ++attempt) {
    const fs::path candidate = dir / temporary_name(target_.filename().string(), kTempTag);
    if (kind_ == Kind::File) {
      // 0666 & ~umask: the permissions an ordinary new file gets.
      const int fd = ::open(candidate.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      error = errno;
      if (fd < 0) {
        if (error == EEXIST) continue;
        break;
      }
      fd_ = lock_fd_ = fd;
    } else {
      if (::mkdir(candidate.c_str(), 0777) != 0) {
        error = errno;
        if (error == EEXIST) continue;
        break;
      }
      lock_fd_ = ::open(candidate.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      error = errno;
      if (lock_fd_ < 0) {
        ::rmdir(candidate.c_str());
        break;
      }
    }
    temp_ = candidate;
  }
  if (temp_.empty())
    throw DataError(name, fmt::format("cannot create a temporary {} in {}: {}", kind_ == Kind::File ? "file" : "folder", dir.string(),
                                      error_text(error ? error : EEXIST)));
  // The lock says "my owner is alive" to other processes (also on file systems shared by several
  // machines, where a PID means nothing); file systems without locks still have the PID.
  ::flock(lock_fd_, LOCK_EX | LOCK_NB);
  note_open(temp_);
}

StagedOutput::~StagedOutput() {
  if (fd_ >= 0 && fd_ != lock_fd_) ::close(fd_);
  if (!committed_) remove_path(temp_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
  note_closed(temp_);
}

void StagedOutput::commit(OnExisting existing, Durability durability) {
  if (committed_) throw Error("internal: " + target_.string() + " committed twice");
  const bool flush = durability == Durability::Flushed;
  try {
    if (kind_ == Kind::File)
      commit_file(existing, flush);
    else
      commit_folder(existing, flush);
  } catch (...) {
    remove_path(temp_);  // now, not when the object goes: nothing of a refused output stays
    throw;
  }
  committed_ = true;
  note_written(target_, kind_ == Kind::Folder);  // the run's record of who wrote what (access_log.hpp)
  if (flush) sync_directory(parent_of(target_));
}

void StagedOutput::commit_file(OnExisting existing, bool flush) {
  const std::string name = target_.string();
  if (fd_ < 0) throw Error("internal: commit of " + name + " after a failed commit");
  if (flush && ::fsync(fd_) != 0) throw DataError(name, "cannot flush to disk: " + error_text(errno));
  if (existing == OnExisting::ReplaceOwn) check_replaceable(target_, existing);
  if (existing != OnExisting::Refuse) {
    if (::rename(temp_.c_str(), target_.c_str()) != 0)
      throw DataError(name, "cannot rename the temporary file onto the target: " + error_text(errno));
  } else if (rename_with_flags(temp_, target_, RENAME_NOREPLACE) != 0) {
    int error = errno;
    if (unsupported(error)) {
      // A no-replace rename another way: link(2) never replaces either.
      if (::link(temp_.c_str(), target_.c_str()) == 0) {
        ::unlink(temp_.c_str());
        error = 0;
      } else {
        error = errno;
        if (error != EEXIST && !exists_no_follow(target_)) {
          // No hard links either (e.g. FAT): check, then rename (the window is the file system's).
          error = ::rename(temp_.c_str(), target_.c_str()) == 0 ? 0 : errno;
        }
      }
    }
    if (error == EEXIST || error == ENOTEMPTY) throw Error(refusal_appeared(target_));
    if (error) throw DataError(name, "cannot rename the temporary file onto the target: " + error_text(error));
  }
  ::close(fd_);  // the lock goes with it, once the name is the target's
  fd_ = lock_fd_ = -1;
  note_closed(temp_);
}

void StagedOutput::commit_folder(OnExisting existing, bool flush) {
  const std::string name = target_.string();
  {
    const fs::path marker = temp_ / kOutputMarker;
    const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) throw DataError(name, "cannot write " + marker.string() + ": " + error_text(errno));
    try {
      write_all(fd,
                "This folder was written by caulk. With overwrite = true, caulk replaces a folder only when it holds this file "
                "(docs/reliability.md).\n",
                marker);
    } catch (...) {
      ::close(fd);
      throw;
    }
    const bool synced = !flush || ::fsync(fd) == 0;
    ::close(fd);
    if (!synced) throw DataError(name, "cannot flush to disk: " + error_text(errno));
  }
  if (flush && ::fsync(lock_fd_) != 0 && errno != EINVAL) throw DataError(name, "cannot flush the folder to disk: " + error_text(errno));

  auto claim_empty_target = [&] {
    // Without RENAME_NOREPLACE: mkdir(2) claims the name atomically, then the rename replaces the
    // empty folder it made.
    if (::mkdir(target_.c_str(), 0777) != 0) {
      if (errno == EEXIST) throw Error(existing == OnExisting::Refuse ? refusal_appeared(target_) : refusal_not_ours(target_));
      throw DataError(name, "cannot create the output folder: " + error_text(errno));
    }
    if (::rename(temp_.c_str(), target_.c_str()) != 0) {
      const int error = errno;
      ::rmdir(target_.c_str());
      throw DataError(name, "cannot rename the finished temporary folder onto the output: " + error_text(error));
    }
  };

  for (int attempt = 0; attempt < 10; ++attempt) {
    if (existing == OnExisting::Refuse || !exists_no_follow(target_)) {
      if (rename_with_flags(temp_, target_, RENAME_NOREPLACE) == 0) return;
      const int error = errno;
      if (unsupported(error)) {
        if (existing != OnExisting::Refuse && exists_no_follow(target_)) continue;
        claim_empty_target();
        return;
      }
      if (error == EEXIST || error == ENOTEMPTY) {
        if (existing == OnExisting::Refuse) throw Error(refusal_appeared(target_));
        continue;  // appeared meanwhile: replace it if allowed
      }
      throw DataError(name, "cannot rename the finished temporary folder onto the output: " + error_text(error));
    }
    if (existing == OnExisting::ReplaceOwn) check_replaceable(target_, existing);
    if (rename_with_flags(temp_, target_, RENAME_EXCHANGE) == 0) {
      // The temporary name now holds the old output: sync the swap, then remove it (a kill here
      // leaves it as a stale temporary, which the next run removes; the target is complete).
      sync_directory(parent_of(target_));
      remove_path(temp_);
      return;
    }
    const int error = errno;
    if (error == ENOENT) continue;  // the target vanished meanwhile
    if (!unsupported(error)) throw DataError(name, "cannot exchange the finished folder with the output: " + error_text(error));
    // No RENAME_EXCHANGE: move the old output aside under a name the next run recognises (and
    // moves back should this process die before the new one is in place), then rename.
    const fs::path aside = parent_of(target_) / temporary_name(target_.filename().string(), kAsideTag);
    if (::rename(target_.c_str(), aside.c_str()) != 0)
      throw DataError(name, "cannot move the existing output aside to replace it: " + error_text(errno));
    if (::rename(temp_.c_str(), target_.c_str()) != 0) {
      const int rename_error = errno;
      ::rename(aside.c_str(), target_.c_str());  // put the previous output back
      throw DataError(name, "cannot rename the finished temporary folder onto the output: " + error_text(rename_error));
    }
    sync_directory(parent_of(target_));
    remove_path(aside);
    return;
  }
  throw DataError(name, "the output kept changing while it was being replaced (another run writing the same target?)");
}

// ------------------------------------------------------------------ recovery

std::vector<std::string> recover_stale_temporaries(const fs::path& dir, int depth, const std::vector<fs::path>& whole_folders_in) {
  std::vector<std::string> done;
  std::error_code ec;
  fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) return done;
  std::vector<fs::path> folders;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path p = it->path();
    const std::string name = p.filename().string();
    TemporaryName parsed;
    const bool temporary = parse_temporary_name(name, parsed);
    // The type readdir gave (no stat for each entry), asked for again only for a temporary.
    const fs::file_status st = temporary ? it->symlink_status(ec)
                                         : fs::file_status(it->is_symlink(ec)     ? fs::file_type::symlink
                                                           : it->is_directory(ec) ? fs::file_type::directory
                                                                                  : fs::file_type::regular);
    if (ec) continue;
    if (!temporary) {
      // Hidden folders are the user's, except .caulk (the run folder's own state: lock, hash cache,
      // ledger), whose files are written through the same primitive and leave the same temporaries.
      if (depth > 0 && st.type() == fs::file_type::directory && (name[0] != '.' || name == ".caulk")) folders.push_back(p);
      continue;
    }
    if (st.type() == fs::file_type::symlink || owner_alive(parsed.owner)) continue;
    const bool folder = st.type() == fs::file_type::directory;
    if (lock_held(p, folder)) continue;
    const fs::path target = dir / parsed.target;
    if (parsed.aside && !exists_no_follow(target)) {
      if (::rename(p.c_str(), target.c_str()) == 0) {
        sync_directory(dir);
        done.push_back(fmt::format("restored {}: a replacement of it by process {} was cut short", target.string(), parsed.owner.pid));
      }
      continue;
    }
    remove_path(p);
    if (!exists_no_follow(p))
      done.push_back(fmt::format("removed {}, a temporary {} left by process {}, which no longer runs", p.string(),
                                 folder ? "folder" : "file", parsed.owner.pid));
  }
  if (std::find(whole_folders_in.begin(), whole_folders_in.end(), dir) != whole_folders_in.end()) return done;
  for (const auto& f : folders) {
    auto more = recover_stale_temporaries(f, depth - 1, whole_folders_in);
    done.insert(done.end(), more.begin(), more.end());
  }
  return done;
}

void remove_open_temporaries() noexcept {
  std::set<std::string> paths;
  {
    std::lock_guard lock(g_open_mutex);
    paths = open_temporaries();
  }
  for (const auto& p : paths) remove_path(p);
}

void write_file_in_staged_folder(const fs::path& path, std::initializer_list<std::string_view> pieces) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw DataError(path.string(), "cannot create: " + error_text(errno));
  try {
    for (std::string_view piece : pieces) write_all(fd, piece, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) throw DataError(path.string(), "write failed: " + error_text(errno));
}

}  // namespace caulk::io
