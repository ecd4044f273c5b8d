#include "caulk/registry.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "caulk/artifacts.hpp"
#include "caulk/error.hpp"
#include "caulk/plugin.hpp"

#ifndef CAULK_PLUGIN_SUBDIR
#define CAULK_PLUGIN_SUBDIR "lib/caulk/plugins"
#endif

namespace fs = std::filesystem;

namespace caulk {

struct Registry::Library {
  boost::dll::shared_library handle;
};

namespace {
const ArtifactType kBuiltinArtifacts[] = {
    {"Dataset", "labels (and optional model inputs and covariates) of a task, by split", ""},
    {"Embeddings", "per model: features (N x D) and optional source-class probabilities, by split", ""},
    {"Scores", "one transferability score per model, with its direction (and LogME posterior weights)", ""},
    {"Predictions", "per model and split: class probabilities or regression values (N x C)", ""},
    {"Checkpoint", "model weights on disk (.safetensors, single or sharded), as lazy handles", ""},
    {"Weights", "input-dependent model weights w(x) by split, and the fitted weight function", ""},
    {"Table", "a titled table of text and numbers", ""},
};

// The loader's own message from a Boost.DLL exception ("... (dlerror system message: MSG)").
std::string loader_message(const std::exception& e) {
  std::string what = e.what();
  const std::string marker = "(dlerror system message: ";
  auto at = what.find(marker);
  if (at == std::string::npos) return what;
  std::string msg = what.substr(at + marker.size());
  if (!msg.empty() && msg.back() == ')') msg.pop_back();
  return msg;
}

bool looks_like_plugin(const fs::path& p) { return p.extension() == ".so"; }
}  // namespace

Registry::Registry() {
  for (const auto& t : kBuiltinArtifacts) artifact_types_.emplace(t.name, t);
}

Registry::~Registry() = default;

std::vector<fs::path> Registry::search_path(const std::vector<fs::path>& cli_paths) {
  std::vector<fs::path> out(cli_paths.begin(), cli_paths.end());
  if (const char* env = std::getenv("CAULK_PLUGIN_PATH")) {
    std::string s = env;
    std::size_t start = 0;
    while (start <= s.size()) {
      std::size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) out.emplace_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  out.push_back(bundled_plugin_dir());
  return out;
}

fs::path Registry::bundled_plugin_dir() {
  std::error_code ec;
  fs::path exe = boost::dll::program_location(ec);
  if (ec) return fs::path(CAULK_PLUGIN_SUBDIR);
  return (exe.parent_path() / ".." / CAULK_PLUGIN_SUBDIR).lexically_normal();
}

void Registry::load_plugins(const std::vector<fs::path>& search_path) {
  std::set<fs::path> seen_dirs;
  for (const auto& entry : search_path) {
    std::error_code ec;
    if (!fs::exists(entry, ec)) {
      // The bundled folder may legitimately be absent (an engine built without plugins); a folder
      // the user named must exist.
      if (entry == bundled_plugin_dir()) continue;
      PluginInfo info;
      info.path = entry;
      info.error = "plugin path does not exist";
      plugins_.push_back(std::move(info));
      continue;
    }
    if (fs::is_directory(entry, ec)) {
      fs::path canonical = fs::weakly_canonical(entry, ec);
      if (!seen_dirs.insert(canonical).second) continue;
      std::vector<fs::path> files;
      for (const auto& f : fs::directory_iterator(entry, ec))
        if (f.is_regular_file() && looks_like_plugin(f.path())) files.push_back(f.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) load_plugin(f);
    } else {
      load_plugin(entry);
    }
  }
}

bool Registry::load_plugin(const fs::path& file) {
  PluginInfo info;
  info.path = file;
  auto fail = [&](std::string why) {
    info.error = std::move(why);
    plugins_.push_back(std::move(info));
    return false;
  };

  auto library = std::make_shared<Library>();
  try {
    library->handle.load(boost::dll::fs::path(fs::absolute(file)), boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    return fail(loader_message(e));
  }

  // The plain C descriptor first: nothing C++ is touched before the ABI version matches.
  if (!library->handle.has(CAULK_PLUGIN_DESCRIPTOR_SYMBOL))
    return fail("not a caulk plugin: it exports no '" CAULK_PLUGIN_DESCRIPTOR_SYMBOL "' descriptor");
  const auto& descriptor = library->handle.get<const caulk_plugin_descriptor>(CAULK_PLUGIN_DESCRIPTOR_SYMBOL);
  if (descriptor.abi_version != CAULK_ABI_VERSION)
    return fail("built for caulk plugin ABI version " + std::to_string(descriptor.abi_version) +
                ", but this caulk has ABI version " + std::to_string(CAULK_ABI_VERSION) + " (rebuild the plugin against caulk " +
                CAULK_VERSION_STRING + ")");
  if (!descriptor.name || !*descriptor.name) return fail("the plugin descriptor has no name");
  info.name = descriptor.name;
  info.version = descriptor.version ? descriptor.version : "";
  info.summary = descriptor.summary ? descriptor.summary : "";

  for (const auto& other : plugins_)
    if (other.loaded && other.name == info.name)
      return fail("skipped: a plugin named '" + info.name + "' was already loaded from " + other.path.string());

  if (!library->handle.has(CAULK_PLUGIN_ENTRY_SYMBOL))
    return fail("the plugin exports no '" CAULK_PLUGIN_ENTRY_SYMBOL "' entry point");
  auto& entry = library->handle.get<void(void*)>(CAULK_PLUGIN_ENTRY_SYMBOL);

  // Register into a scratch registry first, so that a plugin failing half-way adds nothing.
  Registry staging;
  staging.artifact_types_ = artifact_types_;
  std::shared_ptr<const void> owner = library;
  try {
    PluginRegistrar registrar(staging, info, owner);
    entry(&registrar);
    for (auto& [name, type] : staging.node_types_)
      if (node_types_.count(name))
        throw Error("node type '" + name + "' is already registered by plugin '" + node_types_.at(name).plugin + "'");
    for (auto& [name, fn] : staging.unit_functions_)
      if (unit_functions_.count(name))
        throw Error("unit function '" + name + "' is already registered by plugin '" + unit_functions_.at(name).second + "'");
    for (auto& [name, type] : staging.artifact_types_)
      if (!artifact_types_.count(name)) artifact_types_.emplace(name, type);
    for (auto& [name, type] : staging.node_types_) node_types_.emplace(name, std::move(type));
    for (auto& [name, fn] : staging.unit_functions_) unit_functions_.emplace(name, fn);
  } catch (const std::exception& e) {
    info.node_types.clear();
    info.artifact_types.clear();
    return fail(std::string("registration failed: ") + e.what());
  }
  info.loaded = true;
  libraries_.push_back(std::move(library));
  plugins_.push_back(std::move(info));
  return true;
}

std::vector<const PluginInfo*> Registry::failed_plugins() const {
  std::vector<const PluginInfo*> out;
  for (const auto& p : plugins_)
    if (!p.loaded && p.error.rfind("skipped:", 0) != 0) out.push_back(&p);
  return out;
}

const NodeType* Registry::find_node(const std::string& type) const {
  auto it = node_types_.find(type);
  return it == node_types_.end() ? nullptr : &it->second;
}

std::vector<const NodeType*> Registry::node_types() const {
  std::vector<const NodeType*> out;
  for (const auto& [name, t] : node_types_) out.push_back(&t);
  return out;
}

std::vector<std::string> Registry::node_type_names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : node_types_) out.push_back(name);
  return out;
}

const ArtifactType* Registry::find_artifact(const std::string& name) const {
  auto it = artifact_types_.find(name);
  return it == artifact_types_.end() ? nullptr : &it->second;
}

std::vector<const ArtifactType*> Registry::artifact_types() const {
  std::vector<const ArtifactType*> out;
  for (const auto& [name, t] : artifact_types_) out.push_back(&t);
  return out;
}

namespace {
// A node type's description must be coherent before any pipeline relies on it.
void check_spec(const NodeSpec& spec, const Registry& registry) {
  auto where = "node type '" + spec.type + "'";
  if (spec.type.empty()) throw Error("a node type has no name");
  if (spec.summary.empty()) throw Error(where + " has no summary");
  if (spec.runs_last && !spec.inputs.empty()) throw Error(where + " runs last, after every other node, so it cannot take inputs");
  std::set<std::string> names;
  auto check_port = [&](const PortSpec& p, const char* side) {
    if (!names.insert(std::string(side) + p.name).second)
      throw Error(where + " declares the " + side + " port '" + p.name + "' twice");
    if (p.type != kAnyArtifact && !registry.find_artifact(p.type))
      throw Error(where + ": " + side + " port '" + p.name + "' has unknown artifact type '" + p.type + "'");
  };
  for (const auto& p : spec.inputs) check_port(p, "input");
  for (const auto& p : spec.outputs) check_port(p, "output");
  std::set<std::string> params;
  for (const auto& p : spec.params) {
    if (!params.insert(p.name).second) throw Error(where + " declares the parameter '" + p.name + "' twice");
    if (p.doc.empty()) throw Error(where + ": parameter '" + p.name + "' has no doc");
    if (p.default_value && p.default_value->is_number() && (p.min || p.max)) {
      double v = p.default_value->as_number();
      if ((p.min && v < *p.min) || (p.max && v > *p.max))
        throw Error(where + ": the default of parameter '" + p.name + "' is outside its range");
    }
  }
}
}  // namespace

void Registry::add_node_type(NodeType type) {
  check_spec(type.spec, *this);
  auto name = type.spec.type;
  if (node_types_.count(name)) throw Error("node type '" + name + "' is registered twice");
  node_types_.emplace(name, std::move(type));
}

void Registry::add_artifact_type(ArtifactType type) {
  if (type.name.empty()) throw Error("an artifact type has no name");
  auto it = artifact_types_.find(type.name);
  if (it != artifact_types_.end()) {
    if (it->second.plugin != type.plugin)
      throw Error("artifact type '" + type.name + "' is already defined" +
                  (it->second.plugin.empty() ? std::string(" by the framework") : " by plugin '" + it->second.plugin + "'"));
    return;
  }
  artifact_types_.emplace(type.name, std::move(type));
}

void Registry::add_unit_function(const UnitKind& kind, const std::string& plugin) {
  if (!kind.name || !*kind.name || !kind.run) throw Error("a unit function has no name or no function");
  if (!unit_functions_.emplace(kind.name, std::make_pair(kind.run, plugin)).second)
    throw Error(std::string("unit function '") + kind.name + "' is registered twice");
}

UnitFunctionPtr Registry::find_unit_function(const std::string& name) const {
  auto it = unit_functions_.find(name);
  return it == unit_functions_.end() ? nullptr : it->second.first;
}

PluginRegistrar::PluginRegistrar(Registry& registry, PluginInfo& info, std::shared_ptr<const void> owner)
    : registry_(registry), info_(info), owner_(std::move(owner)) {}

void PluginRegistrar::add_node(NodeSpec spec, NodeFactory make) {
  NodeType t{std::move(spec), std::move(make), info_.name, owner_};
  info_.node_types.push_back(t.spec.type);
  registry_.add_node_type(std::move(t));
}

void PluginRegistrar::add_unit_function(const UnitKind& kind) { registry_.add_unit_function(kind, info_.name); }

void PluginRegistrar::add_artifact_type(std::string name, std::string doc) {
  info_.artifact_types.push_back(name);
  registry_.add_artifact_type({std::move(name), std::move(doc), info_.name});
}

}  // namespace caulk
