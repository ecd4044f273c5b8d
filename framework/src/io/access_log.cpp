#include "caulk/io/access_log.hpp"

#include "caulk/io/durable.hpp"

namespace caulk::io {

namespace {
thread_local AccessLog* current_log = nullptr;

std::string absolute_text(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) p = path;
  return p.lexically_normal().string();
}
}  // namespace

void AccessLog::note_read(const std::filesystem::path& path, const FileStat& stat) {
  const std::string key = absolute_text(path);
  std::lock_guard lock(mutex_);
  auto [it, inserted] = reads_.emplace(key, stat);
  if (!inserted && !(it->second == stat)) changed_.insert(key);
}

void AccessLog::note_written(const std::filesystem::path& path, bool folder) {
  const std::string key = absolute_text(path);
  std::lock_guard lock(mutex_);
  writes_[key] = folder;
}

std::map<std::string, FileStat> AccessLog::reads() const {
  std::lock_guard lock(mutex_);
  return reads_;
}

std::map<std::string, bool> AccessLog::writes() const {
  std::lock_guard lock(mutex_);
  return writes_;
}

std::set<std::string> AccessLog::changed_while_read() const {
  std::lock_guard lock(mutex_);
  return changed_;
}

bool AccessLog::incomplete() const {
  std::lock_guard lock(mutex_);
  return incomplete_;
}

void AccessLog::mark_incomplete() noexcept {
  std::lock_guard lock(mutex_);
  incomplete_ = true;
}

AccessLog* current_access_log() { return current_log; }

ScopedAccessLog::ScopedAccessLog(AccessLog* log) : previous_(current_log) { current_log = log; }
ScopedAccessLog::~ScopedAccessLog() { current_log = previous_; }

void note_read(const std::filesystem::path& path, const FileStat& stat) noexcept {
  if (AccessLog* log = current_log) try {
      log->note_read(path, stat);
    } catch (...) {
      log->mark_incomplete();  // the read itself goes on; the record says it is incomplete
    }
}

void note_written(const std::filesystem::path& path, bool folder) noexcept {
  AccessLog* log = current_log;
  if (!log) return;
  // A file committed inside a folder that is itself being staged (an index written into a sharded
  // checkpoint's temporary folder) is part of that folder's output, recorded when it is committed.
  try {
    for (const auto& part : path.parent_path())
      if (is_temporary_name(part.string())) return;
  } catch (...) {
  }
  try {
    log->note_written(path, folder);
  } catch (...) {
    log->mark_incomplete();
  }
}

}  // namespace caulk::io
