// Pipeline files: parsing (TOML, with toml++), command-line overrides, and validation against the
// registry into a graph that is ready to run.
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "caulk/error.hpp"
#include "caulk/node.hpp"
#include "caulk/value.hpp"

namespace caulk {

class Registry;

// One source feeding an input port: "node" or "node.port".
struct InputRef {
  std::string node;
  std::string port;  // "" when the reference names only the node
  SourceLocation where;
  std::string text() const { return port.empty() ? node : node + "." + port; }
};

struct InputBinding {
  std::string port;
  std::vector<InputRef> sources;
  bool written_as_list = false;
  SourceLocation where;
};

// A [[node]] as written (not yet checked against node types).
struct NodeConfig {
  std::string id, type;
  SourceLocation where, id_where, type_where;
  std::vector<std::pair<std::string, Value>> params;  // as written, with their locations
  SourceLocation params_where;
  std::vector<InputBinding> inputs;
};

// An entry of `[pipeline] plugins`: a path (relative to the pipeline file) to a plugin or a folder
// of plugins, or a bare plugin name looked up among the plugins of the search path.
struct PluginEntry {
  std::string text;
  SourceLocation where;
};

struct PipelineConfig {
  std::filesystem::path file;
  std::string name, description;
  std::vector<PluginEntry> plugins;
  std::vector<NodeConfig> nodes;
  // [[observer]] entries (caulk/run_observer.hpp): a type and params; no inputs. Their id is
  // the type unless given.
  std::vector<NodeConfig> observers;
};

// Parses a pipeline file. Throws PipelineError (every structural problem, each FILE:LINE:COL).
PipelineConfig parse_pipeline_file(const std::filesystem::path& file);
PipelineConfig parse_pipeline_text(std::string_view text, const std::filesystem::path& file);

// Applies `--set ID.PARAM=VALUE` overrides: VALUE is read as a TOML value (so 3, 0.5, true,
// "text", [1, 2] and { a = 1 } work), and as a plain string when it is not valid TOML.
// Relative paths given this way are relative to the current directory.
// Throws PipelineError naming the override for an unknown node id or a malformed override.
void apply_overrides(PipelineConfig& config, const std::vector<std::string>& overrides);

// Loads the plugins the pipeline names (`[pipeline] plugins`) into `registry`, which already holds
// the search path's plugins; call it before validate_pipeline. Returns one diagnostic per entry that
// could not be loaded, at the entry's FILE:LINE:COL, saying why (empty when every one loaded).
std::vector<Diagnostic> load_pipeline_plugins(const PipelineConfig& config, Registry& registry);

// A node after validation: its type, its complete parameters and its resolved inputs.
struct ResolvedSource {
  std::size_t node = 0;  // index into Pipeline::nodes
  std::string port;      // the producing output port
};
struct ResolvedInput {
  std::string port;
  std::vector<ResolvedSource> sources;
};
struct PipelineNode {
  NodeConfig config;
  const NodeType* type = nullptr;
  Params params;
  std::vector<ResolvedInput> inputs;  // only connected ports
  std::vector<std::size_t> depends_on;
};

struct Pipeline {
  PipelineConfig config;
  std::vector<PipelineNode> nodes;                    // in file order
  std::vector<std::size_t> order;                     // a topological order (file order among independent nodes)
  std::vector<PipelineNode> observers;                // the run observers, in file order (no inputs)
  std::size_t index_of(const std::string& id) const;  // npos-like size() when absent
};

// Validates the whole pipeline and reports every problem at once: unknown node type (with the
// closest known names), unknown/missing/ill-typed/out-of-range parameter, unknown port, an input
// whose artifact type does not match, duplicate ids, a cycle (naming its nodes), ...
// Throws PipelineError.
Pipeline validate_pipeline(PipelineConfig config, const Registry& registry);

// Graphviz DOT of a validated pipeline, edges labelled with artifact types.
std::string pipeline_to_dot(const Pipeline& pipeline);

// A DOT string literal: quoted, with quotes and backslashes escaped and newlines as \n.
std::string dot_quote(const std::string& s);

// Edit distance, for "did you mean" suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);
// Up to `limit` of `candidates` close to `name`, closest first.
std::vector<std::string> closest_names(const std::string& name, const std::vector<std::string>& candidates, std::size_t limit = 3);

}  // namespace caulk
