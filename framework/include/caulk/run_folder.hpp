// A run's output folder holds one run (docs/pipeline-format.md, "The run folder").
//
// RunFolderLock: a run holds an exclusive flock on OUT/.caulk/lock for its whole life, so a second
// run on the same folder stops at once (exit 2) naming the folder and the holder's PID. The kernel
// releases the lock when the holder dies, however it dies, so a crash leaves nothing to clean up.
//
// RunFolderLedger: OUT/.caulk/outputs.json lists every output caulk wrote into the folder (path
// relative to the folder, size, content hash) and which pipeline wrote it. When a run has
// succeeded, the previous run's outputs it did not write again, and did not read, are moved aside
// into OUT/.caulk/previous-run/ when the previous run was of another pipeline (another name or
// pipeline file; replacing what an earlier move put there), and removed when it was of the same
// pipeline. A failed or interrupted run changes nothing of the previous run's files. Only files
// caulk wrote and that are unchanged since (same size and hash) are moved or removed, never
// through a symbolic link; anything else is left where it is, and said.
#pragma once
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "caulk/error.hpp"
#include "caulk/file_hash.hpp"
#include "caulk/io/durable.hpp"

namespace caulk {

// Thrown when another process holds the folder's lock (exit code 2).
class RunFolderBusy : public Error {
 public:
  RunFolderBusy(const std::filesystem::path& folder, long pid);
  long holder_pid() const { return pid_; }

 private:
  long pid_;
};

// The folder of caulk's own state inside a run folder.
inline constexpr const char* kRunStateFolder = ".caulk";

// Writes one of the files of the run's record (pipeline.dot, pipeline.toml) atomically, unless it
// is already a regular file holding exactly `text` (a re-run of the same pipeline: each replace
// waits for the disk twice, and the file would not change).
void write_record_file(const std::filesystem::path& path, std::string_view text);

// Folders of caulk's own state that are no longer wanted (old cache entries) are moved into
// OUT/.caulk/removed/ with one rename each, and deleted from there later, while the next run's
// nodes run (deleting a folder waits on the disk once per file). Both never throw.
// Moves `folder`, which must be inside OUT/.caulk/, aside; false when it could not be moved (then
// it is deleted at once).
bool remove_later(const std::filesystem::path& out_dir, const std::filesystem::path& folder);
// Deletes what remove_later moved aside.
void remove_what_was_set_aside(const std::filesystem::path& out_dir);

class RunFolderLock {
 public:
  // Creates OUT/.caulk/ if needed and takes the lock; throws RunFolderBusy when another process
  // holds it, Error when the lock file cannot be created.
  explicit RunFolderLock(const std::filesystem::path& folder);
  ~RunFolderLock();
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;

 private:
  int fd_ = -1;
};

class RunFolderLedger {
 public:
  struct Entry {
    std::uintmax_t size = 0;
    std::string hash;
    bool folder = false;
  };

  // Reads OUT/.caulk/outputs.json (an absent or damaged ledger is empty).
  explicit RunFolderLedger(std::filesystem::path folder);

  // Before a run of `pipeline_id` (its name and file): when the previous run was of another
  // pipeline, copies its run.json, pipeline.dot and pipeline.toml into OUT/.caulk/previous-run/
  // (the new run replaces them). Returns the lines to tell the user.
  std::vector<std::string> prepare(const std::string& pipeline_id);
  // Records an output a node wrote (an absolute path; outside the folder it is ignored) and saves
  // the ledger, so a killed run's outputs are known to the next one.
  void add(const std::filesystem::path& path, const Entry& entry);
  // Records all the outputs of one node and saves the ledger once, unflushed (a node's outputs are
  // all committed before it is recorded, so one save per node keeps what one save per output kept).
  // Nothing is written, nor its text made, when the ledger already says exactly this of them (a
  // reused node's outputs are there with the hashes the previous run recorded).
  void add_all(const std::vector<std::pair<std::filesystem::path, Entry>>& outputs);
  // After a successful run: moves aside (another pipeline) or removes (the same) the previous
  // run's outputs this run did not write, except those in `read` (absolute paths of files the
  // run's nodes read). Returns the lines to tell the user.
  std::vector<std::string> clean_up(const std::vector<std::string>& read, FileHashCache& hashes);
  // Saves OUT/.caulk/outputs.json (atomically, flushed) unless it already holds exactly this, flushed.
  void save() const;
  // How many times this object wrote OUT/.caulk/outputs.json (for tests and benchmarks).
  std::size_t saves() const;

  // The outputs the previous run wrote that this one has not written (so far).
  std::vector<std::string> stale() const;

 private:
  // True when `rel` is unchanged since caulk wrote it.
  bool unchanged(const std::string& rel, const Entry& e, FileHashCache& hashes) const;
  void save_locked(io::Durability durability) const;
  // Adds one entry; true when that changed what the ledger says (false too when the path is outside
  // the folder or caulk's own state).
  bool record_locked(const std::filesystem::path& path, const Entry& entry);
  mutable std::mutex mutex_;
  mutable std::string on_disk_;          // the text OUT/.caulk/outputs.json holds (as read or last written)
  mutable bool on_disk_flushed_ = true;  // false after an unflushed save, until a flushed one
  mutable bool dirty_ = true;            // what it records may differ from on_disk_ (not known at first)
  mutable std::size_t saves_ = 0;
  std::filesystem::path folder_;
  std::string pipeline_id_;  // of the previous run until this one succeeds
  std::string new_pipeline_id_;
  std::map<std::string, Entry> previous_;  // relative path -> entry, of earlier runs
  std::map<std::string, Entry> current_;   // written by this run
};

}  // namespace caulk
