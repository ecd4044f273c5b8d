// Artifacts saved to a folder and read back bit for bit, for the cache of re-runs
// (caulk/node_cache.hpp, docs/architecture.md "Re-runs that redo only what changed").
//
// Each of the framework's artifact types (caulk/artifacts.hpp) is stored as a JSON header with its
// scalar fields and the names of its files; matrices as .npy files in their own dtype (a float32
// array held in memory stays float32); arrays and checkpoints that live in files as their path and
// the content hash the file had, which must still be its hash when the artifact is read back.
// Doubles in the header round-trip exactly (shortest text that reads back the same bits); those
// JSON cannot hold (NaN, infinities) are written as strings.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "caulk/artifact.hpp"
#include "caulk/context.hpp"
#include "caulk/file_hash.hpp"

namespace caulk {

// True for the artifact types this file can store (every framework type; not a plugin's own).
bool artifact_storable(std::string_view type_name);

// Writes the arrays of `artifact` into `dir` (files named PREFIX*.npy, replaced in place when
// there) and returns its header. `dir` is a folder being staged (io::StagedOutput), committed whole
// once every file is written: each file is flushed to disk but not committed on its own.
// Files it names are hashed with `hashes`. Throws Error when the type cannot be stored or a file it
// names cannot be hashed.
Json save_artifact(const Artifact& artifact, const std::filesystem::path& dir, const std::string& prefix, FileHashCache& hashes);

// The artifact `header` describes, its arrays read from `dir` (into memory: the folder may be
// replaced later). Throws Error or DataError on anything inconsistent: a missing or malformed
// array, a header field of the wrong kind, a named file whose content hash changed.
std::shared_ptr<Artifact> load_artifact(const Json& header, const std::filesystem::path& dir, FileHashCache& hashes);

}  // namespace caulk
