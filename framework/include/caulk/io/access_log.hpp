// Which files a node read and wrote, as the framework's readers and writers see them.
//
// The executor opens an AccessLog for each node it runs and installs it on the node's thread
// (ScopedAccessLog); the thread pool carries it into every task the node submits (parallel loops,
// units), so every InputFile::open (all readers: .npy, .safetensors, CSV, manifests, text) and
// every committed output (io::StagedOutput, so io::write_file_atomic and the safetensors writer)
// is recorded against the node that caused it, whichever worker ran the code. Nodes list nothing
// themselves. Outside a run (tests, tools) nothing is recorded.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace caulk::io {

// What a reader saw of a file when it opened it (fstat of the opened descriptor).
struct FileStat {
  std::uintmax_t size = 0;
  std::int64_t mtime_ns = 0;  // modification time, nanoseconds since the epoch
  std::uint64_t inode = 0, device = 0;
  bool operator==(const FileStat&) const = default;
};

class AccessLog {
 public:
  // The first stat of a path is kept: a second reader of the same file sees the same identity
  // unless the file changed during the node, which `changed_while_read` then reports.
  void note_read(const std::filesystem::path& path, const FileStat& stat);
  void note_written(const std::filesystem::path& path, bool folder);

  // Absolute, lexically normal paths, sorted.
  std::map<std::string, FileStat> reads() const;
  std::map<std::string, bool> writes() const;  // path -> is a folder
  // Files whose size, mtime or inode differed between two opens by the same node.
  std::set<std::string> changed_while_read() const;
  // True when a note could not be recorded (memory exhausted): the lists are then incomplete and
  // nothing may be concluded from them (the node is not cached).
  bool incomplete() const;
  void mark_incomplete() noexcept;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, FileStat> reads_;
  std::map<std::string, bool> writes_;
  std::set<std::string> changed_;
  bool incomplete_ = false;
};

// The log of the code running on this thread, or nullptr.
AccessLog* current_access_log();

// Installs `log` as this thread's log until destroyed (then restores the previous one).
class ScopedAccessLog {
 public:
  explicit ScopedAccessLog(AccessLog* log);
  ~ScopedAccessLog();
  ScopedAccessLog(const ScopedAccessLog&) = delete;
  ScopedAccessLog& operator=(const ScopedAccessLog&) = delete;

 private:
  AccessLog* previous_;
};

// Called by the readers and writers; no-ops when no log is installed. Never throw.
void note_read(const std::filesystem::path& path, const FileStat& stat) noexcept;
void note_written(const std::filesystem::path& path, bool folder) noexcept;

}  // namespace caulk::io
