// The cache of re-runs (docs/architecture.md, "Re-runs that redo only what changed"): a node whose
// key is unchanged since a run into the same folder, whose files read then still hash the same and
// whose outputs are still there with the hashes they had, is not run again; what it published is
// read back from OUT/.caulk/cache/KEY/ and its summary and printed text are replayed.
//
// Key of a node: XXH3-128 over the cache format, the caulk library's file hash, the node's id and
// type, its plugin's name, version and file hash, its effective parameters as canonical JSON, the
// keys of the nodes and ports feeding each input port in order, and the content hashes of the files
// its path parameters name. A node is reused only when every node it depends on was reused too: a
// node that ran may have published something new under the same key (a file it read through a
// manifest changed), so whatever depends on it runs again.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "caulk/context.hpp"
#include "caulk/file_hash.hpp"
#include "caulk/io/access_log.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/provenance.hpp"

namespace caulk {

// What a reused node gives the run instead of running.
struct CachedResult {
  // Its tables and figures (light, and run.json shows them) at once; its other outputs only when a
  // node that runs reads them (NodeCache::read_back): an unchanged re-run reads no arrays.
  std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>> published;
  std::vector<std::pair<std::string, Json>> not_read_back;  // port, the artifact's stored header
  std::filesystem::path entry;                              // the entry's folder
  Json summary = Json::object();
  std::string printed;
  // The files it read and wrote when it ran (read ones with their current identity), so its
  // provenance and the folder's ledger are what a fresh run records.
  std::unique_ptr<io::AccessLog> files = std::make_unique<io::AccessLog>();
  // Those files' identities and hashes as the check of the entry found them: the node's provenance
  // and the ledger record them without looking at the files again.
  KnownFiles checked;
  // The files its input artifacts named when it ran (their provenance says "artifact"): its
  // inputs are not read back when it is reused.
  std::vector<std::string> handed;
  double seconds = 0;  // checking the entry
};

class NodeCache {
 public:
  // Keys every node. Without an invocation (a run started by a program, not the command line) the
  // plugins' files are unknown and nothing is cached. `reuse` false (`--no-cache`): no entry is
  // used, but entries are still made for the next run.
  NodeCache(const Pipeline& pipeline, const RunInvocation* invocation, std::filesystem::path out_dir, FileHashCache& hashes, bool reuse);
  ~NodeCache();
  NodeCache(const NodeCache&) = delete;
  NodeCache& operator=(const NodeCache&) = delete;

  // Whether node `i` has a key (its type, its outputs' types and everything it depends on allow it).
  bool keyed(std::size_t i) const { return !keys_[i].empty(); }
  const std::string& key(std::size_t i) const { return keys_[i]; }
  // Node `i`'s entry when every check passes now. Never throws: a missing, damaged or stale entry is
  // nothing, with the reason in `why_not` when an entry was there.
  // Thread-safe for different nodes.
  std::optional<CachedResult> lookup(std::size_t i, std::string* why_not = nullptr);
  // Reads back the outputs `lookup` left on disk. Throws when an array is missing or damaged.
  void read_back(CachedResult& hit);
  // Makes node `i`'s entry after it ran and succeeded. Never throws; a node whose results cannot be
  // stored (a plugin's own artifact type, a file that changed while read) has no entry, and the
  // reason is returned (empty when stored, or when the node has no key).
  std::string store(std::size_t i, const std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>>& published,
                    const Json& summary, const std::string& printed, const io::AccessLog& files, const std::vector<std::string>& handed);
  // After a successful run: removes the entries of keys this run does not have (moved aside at
  // once, deleted while the next run goes on: caulk/run_folder.hpp, remove_later). Never throws.
  void prune();

  // OUT/.caulk/cache
  std::filesystem::path folder() const;

 private:
  const Pipeline& pipeline_;
  std::filesystem::path out_dir_;
  FileHashCache& hashes_;
  bool reuse_;
  std::vector<std::string> keys_;  // "" for a node never cached
  std::thread remover_;            // deletes the entries an earlier run pruned
};

}  // namespace caulk
