// Provenance of a run: what ran, with what, on what, where and when, recorded in run.json under
// "provenance" (docs/pipeline-format.md, "Provenance"), and the copy of the pipeline file the run
// folder keeps, from which `caulk rerun` runs the same thing again.
#pragma once
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "caulk/context.hpp"
#include "caulk/file_hash.hpp"
#include "caulk/io/access_log.hpp"
#include "caulk/pipeline.hpp"

namespace caulk {

class Registry;

// What the command line knows of a run; the executor adds the rest.
struct RunInvocation {
  std::vector<std::string> command;       // argv
  std::vector<std::string> overrides;     // each --set, as given
  std::vector<std::string> plugin_paths;  // each --plugin-path, absolute
  std::string plugin_path_env;            // CAULK_PLUGIN_PATH as it was
  std::filesystem::path pipeline_file;    // absolute
  std::string pipeline_text;              // the file's bytes as parsed (kept as OUT/pipeline.toml)
  struct Plugin {
    std::string name, version;
    std::filesystem::path file;
    bool used = false;  // provides a node or observer type the pipeline uses
  };
  std::vector<Plugin> plugins;  // every loaded plugin
};

// The invocation of `pipeline` run with `registry`'s plugins.
RunInvocation describe_invocation(const std::vector<std::string>& command, const std::vector<std::string>& overrides,
                                  const std::vector<std::string>& plugin_paths, const std::string& pipeline_text, const Pipeline& pipeline,
                                  const Registry& registry);

// A parameter value as JSON: numbers, strings, booleans, arrays and tables as they are; floats
// that JSON cannot hold as the strings "nan", "inf", "-inf".
Json value_to_json(const Value& v);
// A node's effective parameters (defaults filled in) as JSON, in name order; values of path
// parameters relative to `base` when they lie inside it (so the record does not depend on where
// the project is checked out), else absolute.
Json effective_params_json(const PipelineNode& node, const std::filesystem::path& base);

// "2026-12-06T12:34:56.123456789Z" (UTC) from nanoseconds since the epoch.
std::string utc_timestamp(std::int64_t ns_since_epoch);
std::int64_t now_since_epoch_ns();

// The hash of an output: a file's content hash, or for a folder the hash of its regular files'
// relative names and content hashes in name order. Nothing when it cannot be read.
std::optional<std::string> output_hash(const std::filesystem::path& path, FileHashCache& cache);

// The files the framework's artifact types name (Embeddings' features and source probabilities,
// Checkpoint files and Fisher diagonals, a Dataset's labels, inputs and covariates files),
// absolute; regular files only. A node handed these depends on them wherever its units run
// (on another MPI rank, the reads are not seen by this process).
std::vector<std::string> files_named_by(const Artifact& artifact);

// Records the provenance of one run (thread-safe: nodes end on several workers).
class ProvenanceRecorder {
 public:
  // `invocation` may be null (a run started by a test, not the CLI): the command-line parts are
  // then absent. Hashes the plugin files.
  ProvenanceRecorder(const Pipeline& pipeline, const RunInvocation* invocation, std::filesystem::path out_dir, unsigned jobs,
                     FileHashCache& hashes);

  // After node `index` ran (whatever its outcome): what it read and wrote, hashed now.
  // `handed` are the files its input artifacts name (files_named_by). A reused node's files come
  // `checked` by its cache entry: recorded as the check found them.
  void node_ran(std::size_t index, const io::AccessLog& log, const std::vector<std::string>& handed = {},
                const KnownFiles* checked = nullptr);
  void finish();  // the end time

  // The "provenance" object of run.json.
  Json to_json() const;
  // Paths (absolute) of every output the run's nodes wrote, and of every input file they had.
  std::vector<std::filesystem::path> written() const;
  std::vector<std::string> inputs() const;

 private:
  struct FileRecord {
    std::string path;
    std::uintmax_t size = 0;
    std::int64_t mtime_ns = 0;
    std::string hash;  // "" when it could not be hashed (a note says why)
    std::string note;
    std::string via = "read";  // "parameter", "artifact" or "read"
    bool folder = false;
  };
  struct NodeRecord {
    Json params;
    std::vector<FileRecord> inputs, outputs;
    bool ran = false;
  };
  FileRecord describe_input(const std::string& path, const io::FileStat& stat, std::string via, const KnownFiles* checked);

  const Pipeline& pipeline_;
  const RunInvocation* invocation_;
  std::filesystem::path out_dir_;
  unsigned jobs_;
  FileHashCache& hashes_;
  std::int64_t started_ns_ = 0, ended_ns_ = 0;
  Json plugins_ = Json::array();
  mutable std::mutex mutex_;
  std::vector<NodeRecord> nodes_;
};

}  // namespace caulk
