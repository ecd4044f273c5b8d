// Manifests: TOML files listing models ([[model]] entries under a header table such as [hub]).
// The hub manifest of adapter.precomputed, and the checkpoint and predictions manifests of later
// nodes, share this form and this reader.
//
//   [hub]
//   name = "demo"
//   [[model]]
//   name = "alpha"
//   features = "features/alpha.npy"   # or { train = "...", test = "..." }
//
// Unknown keys are errors with FILE:LINE:COL; relative paths are relative to the manifest.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "caulk/value.hpp"

namespace caulk {

struct ManifestModel {
  std::string name;
  SourceLocation where;
  Value::Table fields;  // every key but name, with locations; paths resolved

  const Value* get(const std::string& key) const;
  bool has(const std::string& key) const { return get(key) != nullptr; }
  // A key holding one path (the split "train") or a table of split -> path.
  std::map<std::string, std::filesystem::path> split_paths(const std::string& key) const;
  std::filesystem::path path(const std::string& key) const;
  std::string string(const std::string& key, const std::string& fallback = {}) const;
  bool flag(const std::string& key, bool fallback = false) const;
  // "FILE:LINE:COL" of a key's value (or of the model) for error messages.
  std::string location(const std::string& key = {}) const;
};

// What a kind of manifest accepts.
struct ManifestSchema {
  std::string header;                    // the header table, e.g. "hub"
  std::vector<std::string> header_keys;  // keys allowed in it (name is always allowed)
  struct Key {
    std::string name;
    enum Kind { Path, SplitPaths, String, Bool, Number, Table } kind;
    bool required = false;
  };
  std::vector<Key> model_keys;  // keys allowed in a [[model]] (name is always required)
};

struct Manifest {
  std::filesystem::path file;
  std::string name;     // header.name, or the file's stem
  Value::Table header;  // other header keys
  std::vector<ManifestModel> models;
  const ManifestModel* find(const std::string& model) const;
};

// The hub manifest of adapter.precomputed: [hub] (name, description) and [[model]]s with
// features (required), source_probs and description.
const ManifestSchema& hub_manifest_schema();
// A hub of model checkpoints (adapter.mlp, tune.peft, ...): [hub] (name, description) and
// [[model]]s with checkpoint (a .safetensors file or sharded folder; required), description, and
// base = true for the pre-trained model that task-vector merges subtract.
const ManifestSchema& checkpoint_hub_schema();

// Throws DataError ("FILE:LINE:COL: problem") on a missing file, bad TOML, unknown or missing
// keys, values of the wrong kind, duplicate or invalid model names, or no models at all.
Manifest read_manifest(const std::filesystem::path& file, const ManifestSchema& schema);
Manifest parse_manifest_text(std::string_view text, const std::filesystem::path& file, const ManifestSchema& schema);

}  // namespace caulk
