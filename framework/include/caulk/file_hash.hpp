// Content hashes of files: XXH3-128 (xxHash, Debian's libxxhash), written as 32 lower-case hex
// digits in xxHash's canonical order (`xxhsum -H2` prints the same), for provenance and the
// cache of re-runs (docs/pipeline-format.md, "Provenance").
//
// A FileHashCache hashes each file once per run and remembers the result by path, size,
// modification time and inode, so a file read by several nodes is hashed once; it can be saved
// in the run folder and loaded by the next run, which then re-hashes only files that changed
// (or were touched). An entry is trusted only if the file's modification time is older than the
// moment it was hashed by more than the clock tick of modification times (two seconds where they
// are whole seconds, 100 ms where they have fractions): a file rewritten within the same tick keeps
// its mtime, so a fresh one is hashed again (the "racily clean" rule of git). A run hashes what it
// wrote once more at its end when the tick has passed (confirm_settled), so the next run trusts it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "caulk/io/access_log.hpp"

namespace caulk {

// XXH3-128 of bytes in memory, as hex.
std::string content_hash(std::string_view bytes);
// XXH3-128 of a file's whole content, read in chunks of `chunk_bytes`. Throws DataError naming
// the file when it cannot be read; `seen` (optional) receives the stat of the opened file.
std::string hash_file(const std::filesystem::path& path, std::size_t chunk_bytes = std::size_t{64} << 10, io::FileStat* seen = nullptr);
// The stat of a path (following symbolic links); nothing when it cannot be examined.
std::optional<io::FileStat> stat_file(const std::filesystem::path& path);

// Files whose identity and content hash were checked a moment ago (a reused node's, by its cache
// entry), by path: what records them again takes them as checked instead of looking again.
struct KnownFile {
  io::FileStat stat;  // as checked (an output: its size only; a folder: nothing)
  std::string hash;
};
using KnownFiles = std::map<std::string, KnownFile>;
// The entry of `path` in `files` (which may be null), or null.
const KnownFile* find_known(const KnownFiles* files, const std::string& path);

class FileHashCache {
 public:
  // The hash of the file as it is now; hashed when no trusted entry matches its current
  // identity. Thread-safe; two threads asking for the same new file may both hash it.
  // Nothing when the file cannot be read (or changed while it was hashed). `seen` (optional)
  // receives the identity the hash is of.
  std::optional<std::string> hash(const std::filesystem::path& path, io::FileStat* seen = nullptr);
  // The hash of the file if it still has the identity `expected` (as a reader saw it), else nothing.
  std::optional<std::string> hash_if_unchanged(const std::filesystem::path& path, const io::FileStat& expected);

  // Hashes again the files this object hashed too soon after they were written to trust the
  // result, once that moment has passed (and they have not changed since), up to `budget_bytes` in
  // all: their entries become trusted, and the next run need not read them. Returns how many.
  std::size_t confirm_settled(std::uintmax_t budget_bytes);

  // Entries as JSON text / read back (unreadable text gives an empty cache).
  std::string to_json_text() const;
  void load_json_text(std::string_view text);
  std::size_t hashed_count() const;  // files hashed (not found in the cache) by this object

 private:
  struct Entry {
    io::FileStat stat;
    std::string hash;
    std::int64_t hashed_at_ns = 0;
    bool this_run = false;  // hashed by this object (not loaded)
  };
  bool trusted(const Entry& e) const;
  // The hash of the file that had `expected` as its stat a moment ago: the entry's when it matches
  // and is trusted, else read now (nothing when the file changes meanwhile).
  std::optional<std::string> hash_as_seen(const std::filesystem::path& path, const io::FileStat& expected);
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  std::size_t hashed_ = 0;
};

}  // namespace caulk
