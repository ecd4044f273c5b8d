// A run's output folder holds one run (docs/pipeline-format.md, "The run folder").
//
// RunFolderLock: a run holds an exclusive flock on OUT/.caulk/lock for its whole life, so a second
// run on the same folder stops at once (exit 2) naming the folder and the holder's PID. The kernel
// releases the lock when the holder dies, however it dies, so a crash leaves nothing to clean up.
//
// RunFolderLedger: OUT/.caulk/outputs.json lists every output caulk wrote into the folder (path
// relative to the folder, size, content hash) and which pipeline wrote it. A new run of another
// pipeline (another name or pipeline file) first moves the previous run's outputs aside into
// OUT/.caulk/previous-run/ (replacing what an earlier move put there); a new run of the same
// pipeline, once it has finished, removes the previous run's outputs it did not write again. Only
// files caulk wrote and that are unchanged since (same size and hash) are moved or removed;
// anything else is left where it is, and said.
#pragma once
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "caulk/error.hpp"
#include "caulk/file_hash.hpp"

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

  // Before a run of `pipeline_id` (its name and file): when the ledger's pipeline differs, moves
  // the previous outputs aside. Returns the lines to tell the user.
  std::vector<std::string> prepare(const std::string& pipeline_id, FileHashCache& hashes);
  // Records an output a node wrote (an absolute path; outside the folder it is ignored) and saves
  // the ledger, so a killed run's outputs are known to the next one.
  void add(const std::filesystem::path& path, const Entry& entry);
  // After a finished run: removes the previous run's outputs this run did not write. Returns the
  // lines to tell the user.
  std::vector<std::string> remove_stale(FileHashCache& hashes);
  // Saves OUT/.caulk/outputs.json (atomically).
  void save() const;

  // The outputs the previous run wrote that this one has not written (so far).
  std::vector<std::string> stale() const;

 private:
  // True when `rel` is unchanged since caulk wrote it.
  bool unchanged(const std::string& rel, const Entry& e, FileHashCache& hashes) const;
  void save_locked() const;
  mutable std::mutex mutex_;
  std::filesystem::path folder_;
  std::string pipeline_id_;
  std::map<std::string, Entry> previous_;  // relative path -> entry, of earlier runs
  std::map<std::string, Entry> current_;   // written by this run
};

}  // namespace caulk
