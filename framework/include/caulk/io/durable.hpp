// The one way caulk puts an output under its final name (docs/reliability.md, "Durability"):
// built complete under a temporary name beside the target, flushed to disk, then moved in by a
// single rename, so the target name always holds a complete output, the old one or the new one.
//
//   file    rename(2) over the target (overwrite), or renameat2(RENAME_NOREPLACE) (no overwrite;
//           link + unlink where the file system refuses that flag), then the folder is fsynced.
//   folder  renameat2(RENAME_EXCHANGE) of the complete new folder with the old one, then the old
//           one (now under the temporary name) is removed; RENAME_NOREPLACE when nothing may be
//           replaced.
//
// Temporaries are named ".TARGET.caulk-tmp-PID-START-RANDOM" (START: the process's start time,
// so a reused PID is not mistaken for the owner) and locked (flock) by their owner while open, so
// a later run recognises those of dead processes and removes them (recover_stale_temporaries)
// and never touches a live run's. caulk marks what it writes where it may later replace it: a
// folder holds kOutputMarker, a merged .safetensors file carries written_by = "caulk" in its
// metadata; OnExisting::ReplaceOwn replaces only marked outputs.
#pragma once
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace caulk::io {

// What commit() does when something already exists under the target's name.
enum class OnExisting {
  Refuse,      // fail and leave it untouched; the rename itself enforces it (no check-then-act window)
  Replace,     // replace it: files in a run's own output folder (run.json, tables, reports)
  ReplaceOwn,  // replace it only if caulk wrote it (is_caulk_output); refuse anything else
};

// Whether commit() waits for the bytes to reach the disk.
enum class Durability {
  Flushed,  // outputs and records: the file (or the folder's files) and then its folder are fsynced
  // State caulk rebuilds when it is lost or damaged (the node cache's entries, the hash cache): moved
  // in by the same rename, unflushed. Other processes never see it incomplete; a power loss may leave
  // it missing or damaged, and its readers reject a damaged one (docs/reliability.md, "Durability").
  Recomputable,
};

// The file inside every output folder caulk may later replace.
inline constexpr const char* kOutputMarker = ".caulk-output";
// The safetensors metadata entry that marks a file caulk wrote (merges set it).
inline constexpr const char* kWrittenByKey = "written_by";
inline constexpr const char* kWrittenByValue = "caulk";

// True for a folder holding kOutputMarker and a .safetensors file whose header metadata has
// written_by = "caulk". Symbolic links are never caulk's.
bool is_caulk_output(const std::filesystem::path& path);

// A file or folder built under a temporary name beside its target, then committed.
class StagedOutput {
 public:
  enum class Kind { File, Folder };
  // Creates the temporary (and the target's folder when missing). A file is opened read-write
  // with the permissions an ordinary new file would get. Throws DataError naming the target.
  StagedOutput(std::filesystem::path target, Kind kind);
  // Removes the temporary unless committed.
  ~StagedOutput();
  StagedOutput(const StagedOutput&) = delete;
  StagedOutput& operator=(const StagedOutput&) = delete;

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& path() const { return temp_; }  // the temporary
  Kind kind() const { return kind_; }
  int fd() const { return fd_; }  // a file's descriptor (owned; closed by commit), -1 for a folder

  // File: fsyncs and closes it. Folder: writes kOutputMarker into it and fsyncs the folder (the
  // caller has fsynced the files it wrote). Then moves it under the target as `existing` says and
  // fsyncs the parent folder. Durability::Recomputable skips the fsyncs. Throws Error (a refusal,
  // naming the target and what to do) or DataError (an I/O failure); the temporary is removed and
  // an existing target left as it was.
  void commit(OnExisting existing, Durability durability = Durability::Flushed);
  bool committed() const { return committed_; }

 private:
  void commit_file(OnExisting existing, bool flush);
  void commit_folder(OnExisting existing, bool flush);
  std::filesystem::path target_, temp_;
  Kind kind_;
  int fd_ = -1;
  int lock_fd_ = -1;  // holds the flock that says the temporary's owner is alive
  bool committed_ = false;
};

// Writes a file inside a folder being staged (StagedOutput::Kind::Folder, before its commit): the
// pieces one after the other, plainly, unflushed; the folder's commit makes it visible, whole, with
// the folder (and flushes it only if the folder is Flushed and the caller fsynced it). Throws
// DataError naming the file.
void write_file_in_staged_folder(const std::filesystem::path& path, std::initializer_list<std::string_view> pieces);

// Throws Error when `target` exists and `existing` does not allow replacing it (a friendly early
// check before any work; commit() enforces the same atomically).
void check_replaceable(const std::filesystem::path& target, OnExisting existing);

// Removes the temporaries of processes that no longer run, in `dir` and (depth > 0) its
// sub-folders down to `depth` levels; where a replacement that could not exchange atomically was
// cut short (the target moved aside and missing), moves the old output back. Never follows
// symbolic links; errors are skipped. Returns one line per temporary removed or output restored.
// The sub-folders of `whole_folders_in` (paths as `dir` joined with names) are not looked into:
// each was committed whole, as a staged folder is, so none holds a temporary (those of folders
// still being staged are beside them, and are looked at).
std::vector<std::string> recover_stale_temporaries(const std::filesystem::path& dir, int depth = 0,
                                                   const std::vector<std::filesystem::path>& whole_folders_in = {});

// True when `name` (a file name) is a caulk temporary (of any process).
bool is_temporary_name(const std::string& name);

// Removes every temporary this process has open, now (a second SIGINT/SIGTERM: the process exits
// right after). Never throws.
void remove_open_temporaries() noexcept;

}  // namespace caulk::io
