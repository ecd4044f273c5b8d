// The registry of node types, artifact types and the plugins that brought them.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "caulk/artifact.hpp"
#include "caulk/node.hpp"
#include "caulk/units.hpp"

namespace caulk {

// What became of a plugin the engine tried to load.
enum class PluginStatus {
  loaded,   // its node types are registered
  failed,   // it could not be loaded (the loader's message, a wrong ABI, a failing registration...)
  refused,  // it loaded, but it clashes with a plugin loaded before it (a node type, or its name)
  skipped,  // the same file was already loaded (reached twice on the search path): nothing to do
};
std::string_view plugin_status_name(PluginStatus status);

struct PluginInfo {
  std::filesystem::path path;
  std::string name, version, summary;  // from the plugin's descriptor (empty when unreadable)
  PluginStatus status = PluginStatus::failed;
  std::string error;                  // why it failed, was refused or skipped (the loader's own message when there is one)
  std::vector<std::string> warnings;  // it loaded, but: built without optimisation, ...
  // The node types it registered; for a refused plugin, those it offered. When it failed before
  // registering (or during), the list is incomplete and it may have provided any type.
  std::vector<std::string> node_types;
  bool node_types_known = false;
  std::vector<std::string> artifact_types;

  bool loaded() const { return status == PluginStatus::loaded; }
  // "plugin PATH failed to load: WHY", "plugin PATH was refused: WHY", ...
  std::string problem() const;
};

class PluginRegistrar;

class Registry {
 public:
  Registry();  // knows the framework's artifact types, no node types
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Loads every plugin (*.so) in each folder (or the file itself) of `search_path`, in order.
  // The first plugin to register a node type (or to bear a plugin name) keeps it: a later plugin
  // that registers the same type, or has the same name, is refused whole, naming both plugins and
  // both files; the same file reached twice is skipped. Failures are recorded in plugins(), never
  // dropped, and the plugins loaded before and after a failure stay loaded.
  void load_plugins(const std::vector<std::filesystem::path>& search_path);
  // Loads one plugin file; false (with the reason recorded) when it fails or is refused. Skipping
  // a file that is already loaded counts as success.
  bool load_plugin(const std::filesystem::path& file);
  // Loads what a pipeline names in `[pipeline] plugins`: a path (a plugin file, or a folder whose
  // plugins are all loaded; relative paths are relative to `base`), or a bare plugin name (no '/',
  // not ending in .so), which must be among the plugins loaded from the search path. Returns "" when
  // it is loaded, else why not (with how to fix it).
  std::string require_plugin(const std::string& entry, const std::filesystem::path& base);

  // The search path: the plugin folder beside the running binary first (<bin>/../lib/caulk/plugins,
  // in the build and install trees), so caulk's own node types cannot be taken over; then each
  // --plugin-path; then CAULK_PLUGIN_PATH (':'-separated).
  static std::vector<std::filesystem::path> search_path(const std::vector<std::filesystem::path>& cli_paths);
  // The plugin folder beside the running binary.
  static std::filesystem::path bundled_plugin_dir();
  // Every folder or file load_plugins() and require_plugin() were given, in order (for hints).
  const std::vector<std::filesystem::path>& searched() const { return searched_; }

  const std::vector<PluginInfo>& plugins() const { return plugins_; }
  // The plugins that failed or were refused (not the skipped ones).
  std::vector<const PluginInfo*> failed_plugins() const;
  // The failed or refused plugins that offered `type`, or that failed before saying which types
  // they have (so they may provide it).
  std::vector<const PluginInfo*> failed_plugins_that_may_provide(const std::string& type) const;

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

 private:
  struct Library;
  // Declared first so it is destroyed last: nothing a plugin made outlives its library.
  std::vector<std::shared_ptr<Library>> libraries_;
  std::map<std::string, ArtifactType> artifact_types_;
  std::map<std::string, NodeType> node_types_;
  std::vector<PluginInfo> plugins_;
  std::vector<std::filesystem::path> searched_;
};

// What a plugin's registration entry point receives.
class PluginRegistrar {
 public:
  PluginRegistrar(Registry& registry, PluginInfo& info, std::shared_ptr<const void> owner);

  // Registers a node class N with `static NodeSpec spec()` and a default constructor. When N also
  // declares `static Json run_unit(UnitContext&, const Json&)`, its units are distributable
  // (caulk/units.hpp): NodeContext::run_units runs them, in this process or on any rank.
  template <class N>
  void add_node() {
    UnitFunction unit = nullptr;
    if constexpr (requires { &N::run_unit; }) {
      static_assert(std::is_convertible_v<decltype(&N::run_unit), UnitFunction>,
                    "a node's run_unit must be `static Json run_unit(caulk::UnitContext& ctx, const Json& payload)`");
      unit = &N::run_unit;
    }
    add_node(
        N::spec(), [] { return std::unique_ptr<Node>(new N()); }, unit);
  }
  void add_node(NodeSpec spec, NodeFactory make, UnitFunction run_unit = nullptr);
  // Registers a run observer class O (caulk/run_observer.hpp) with `static NodeSpec spec()` (its
  // type name, summary and parameters; no ports) and a default constructor. Its type shares the
  // node types' names: one plugin may not take another's.
  template <class O>
  void add_observer() {
    add_observer(O::spec(), [] { return std::unique_ptr<RunObserver>(new O()); });
  }
  void add_observer(NodeSpec spec, ObserverFactory make);
  void add_artifact_type(std::string name, std::string doc);

 private:
  Registry& registry_;
  PluginInfo& info_;
  std::shared_ptr<const void> owner_;
};

}  // namespace caulk
