// The registry of node types, artifact types and the plugins that brought them.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "caulk/artifact.hpp"
#include "caulk/node.hpp"
#include "caulk/units.hpp"

namespace caulk {

struct PluginInfo {
  std::filesystem::path path;
  std::string name, version, summary;  // from the plugin's descriptor (empty when unreadable)
  bool loaded = false;
  std::string error;  // why it failed to load (the loader's own message when there is one)
  std::vector<std::string> node_types;
  std::vector<std::string> artifact_types;
};

class PluginRegistrar;

class Registry {
 public:
  Registry();  // knows the framework's artifact types, no node types
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Loads every plugin (*.so) in each folder (or the file itself) of `search_path`, in order.
  // A plugin whose name was already loaded from an earlier folder is skipped (listed with the
  // reason). Failures are recorded in plugins(), never dropped.
  void load_plugins(const std::vector<std::filesystem::path>& search_path);
  // Loads one plugin file; false (with the reason recorded) when it fails.
  bool load_plugin(const std::filesystem::path& file);

  // The search path: each --plugin-path, then CAULK_PLUGIN_PATH (':'-separated), then the plugin
  // folder beside the running binary (<bin>/../lib/caulk/plugins, in the build and install trees).
  static std::vector<std::filesystem::path> search_path(const std::vector<std::filesystem::path>& cli_paths);
  // The plugin folder beside the running binary.
  static std::filesystem::path bundled_plugin_dir();

  const std::vector<PluginInfo>& plugins() const { return plugins_; }
  std::vector<const PluginInfo*> failed_plugins() const;

  const NodeType* find_node(const std::string& type) const;
  std::vector<const NodeType*> node_types() const;  // sorted by type name
  std::vector<std::string> node_type_names() const;
  const ArtifactType* find_artifact(const std::string& name) const;
  std::vector<const ArtifactType*> artifact_types() const;

  // Registration (used by plugins through PluginRegistrar, and by tests directly).
  // Throws Error on a duplicate or malformed node type (unknown artifact type on a port,
  // a default outside its range, ...).
  void add_node_type(NodeType type);
  void add_artifact_type(ArtifactType type);
  // Unit functions (caulk/units.hpp), which any process that loaded the plugin can run by name.
  // Throws Error when the name is taken.
  void add_unit_function(const UnitKind& kind, const std::string& plugin);
  // The function registered under `name`, or nullptr.
  UnitFunctionPtr find_unit_function(const std::string& name) const;

 private:
  struct Library;
  // Declared first so it is destroyed last: nothing a plugin made outlives its library.
  std::vector<std::shared_ptr<Library>> libraries_;
  std::map<std::string, ArtifactType> artifact_types_;
  std::map<std::string, NodeType> node_types_;
  std::map<std::string, std::pair<UnitFunctionPtr, std::string>> unit_functions_;  // name -> function, plugin
  std::vector<PluginInfo> plugins_;
};

// What a plugin's registration entry point receives.
class PluginRegistrar {
 public:
  PluginRegistrar(Registry& registry, PluginInfo& info, std::shared_ptr<const void> owner);

  // Registers a node class N with `static NodeSpec spec()` and a default constructor.
  template <class N>
  void add_node() {
    add_node(N::spec(), [] { return std::unique_ptr<Node>(new N()); });
  }
  void add_node(NodeSpec spec, NodeFactory make);
  void add_artifact_type(std::string name, std::string doc);
  // A unit function its nodes hand to NodeContext::run_units.
  void add_unit_function(const UnitKind& kind);

 private:
  Registry& registry_;
  PluginInfo& info_;
  std::shared_ptr<const void> owner_;
};

}  // namespace caulk
