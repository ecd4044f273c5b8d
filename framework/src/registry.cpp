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
    {"Figure", "a chart (Vega-Lite spec) or PNG images a node wants drawn in report.html, with a title and caption", ""},
};

// The loader's own message from a Boost.DLL exception ("... (dlerror system message: MSG)").
std::string loader_message(const std::exception& e) {
  std::string what = e.what();
  const std::string marker = "(dlerror system message: ";
  auto at = what.find(marker);
  if (at == std::string::npos) return what;
  std::string msg = what.substr(at + marker.size());
  // Boost.DLL closes the parenthesis and may append the errno text (": Bad file descriptor").
  auto close = msg.rfind(')');
  return close == std::string::npos ? msg : msg.substr(0, close);
}

bool looks_like_plugin(const fs::path& p) { return p.extension() == ".so"; }

// libcaulk's own build, to compare with each plugin's (caulk/plugin.hpp).
constexpr caulk_plugin_build kEngineBuild = CAULK_PLUGIN_BUILD_INFO;

// Why a plugin built as `plugin` cannot share matrices with this libcaulk ("" when it can).
std::string build_mismatch(const caulk_plugin_build& plugin) {
  if (plugin.size < sizeof(caulk_plugin_build)) return "";  // an older, shorter record: nothing to compare
  if (plugin.eigen_max_align_bytes == kEngineBuild.eigen_max_align_bytes &&
      plugin.eigen_malloc_already_aligned == kEngineBuild.eigen_malloc_already_aligned)
    return "";
  auto describe = [](const caulk_plugin_build& b) {
    return std::to_string(b.eigen_max_align_bytes) + "-byte alignment, " +
           (b.eigen_malloc_already_aligned ? "malloc" : "Eigen's own aligned allocator");
  };
  return "compiled with another Eigen configuration than caulk (the plugin: " + describe(plugin) + "; caulk: " + describe(kEngineBuild) +
         "), so matrices crossing between them would be freed by the wrong allocator: build it with caulk's flags "
         "(caulk_add_plugin applies them; the same -fsanitize and -march options, see docs/writing-plugins.md)";
}

std::string path_list(const std::vector<fs::path>& paths) {
  std::string out;
  for (const auto& p : paths) out += (out.empty() ? "" : ", ") + p.string();
  return out.empty() ? std::string("none") : out;
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}
}  // namespace

std::string_view plugin_status_name(PluginStatus status) {
  switch (status) {
    case PluginStatus::loaded:
      return "loaded";
    case PluginStatus::failed:
      return "failed";
    case PluginStatus::refused:
      return "refused";
    case PluginStatus::skipped:
      return "skipped";
  }
  return "unknown";
}

std::string PluginInfo::problem() const {
  switch (status) {
    case PluginStatus::loaded:
      return "";
    case PluginStatus::failed:
      return "plugin " + path.string() + " failed to load: " + error;
    case PluginStatus::refused:
      return "plugin " + path.string() + " was refused: " + error;
    case PluginStatus::skipped:
      return "plugin " + path.string() + " was skipped: " + error;
  }
  return "";
}

Registry::Registry() {
  for (const auto& t : kBuiltinArtifacts) artifact_types_.emplace(t.name, t);
}

Registry::~Registry() = default;

std::vector<fs::path> Registry::search_path(const std::vector<fs::path>& cli_paths) {
  std::vector<fs::path> out{bundled_plugin_dir()};
  out.insert(out.end(), cli_paths.begin(), cli_paths.end());
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
  return out;
}

fs::path Registry::bundled_plugin_dir() {
  std::error_code ec;
  fs::path exe = boost::dll::program_location(ec);
  if (ec) return fs::path(CAULK_PLUGIN_SUBDIR);
  return (exe.parent_path() / ".." / CAULK_PLUGIN_SUBDIR).lexically_normal();
}

void Registry::load_plugins(const std::vector<fs::path>& search_path) {
  for (const auto& entry : search_path) {
    std::error_code ec;
    if (!fs::exists(entry, ec)) {
      // The bundled folder may legitimately be absent (an engine built without plugins); a folder
      // the user named must exist.
      if (entry == bundled_plugin_dir()) continue;
      searched_.push_back(entry);
      PluginInfo info;
      info.path = entry;
      info.error = "plugin path does not exist";
      plugins_.push_back(std::move(info));
      continue;
    }
    bool seen = false;
    for (const auto& s : searched_) seen = seen || same_file(s, entry);
    if (seen) continue;  // a folder (or file) named twice is loaded once
    searched_.push_back(entry);
    if (fs::is_directory(entry, ec)) {
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
  auto finish = [&](PluginStatus status, std::string why) {
    info.status = status;
    info.error = std::move(why);
    plugins_.push_back(std::move(info));
    return status == PluginStatus::skipped;
  };
  auto fail = [&](std::string why) { return finish(PluginStatus::failed, std::move(why)); };

  for (const auto& other : plugins_)
    if (other.loaded() && same_file(other.path, file))
      return finish(PluginStatus::skipped, "the same file was already loaded as " + other.path.string());

  auto library = std::make_shared<Library>();
  try {
    library->handle.load(boost::dll::fs::path(fs::absolute(file)), boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    return fail(loader_message(e));
  }

  // The plain C descriptor first: nothing C++ is touched before the ABI version matches.
  if (!library->handle.has(CAULK_PLUGIN_DESCRIPTOR_SYMBOL)) {
    info.node_types_known = true;  // not a plugin: it provides nothing
    return fail("not a caulk plugin: it exports no '" CAULK_PLUGIN_DESCRIPTOR_SYMBOL "' descriptor");
  }
  const auto& descriptor = library->handle.get<const caulk_plugin_descriptor>(CAULK_PLUGIN_DESCRIPTOR_SYMBOL);
  if (descriptor.abi_version != CAULK_ABI_VERSION)
    return fail("built for caulk plugin ABI version " + std::to_string(descriptor.abi_version) + ", but this caulk has ABI version " +
                std::to_string(CAULK_ABI_VERSION) + " (rebuild the plugin against caulk " + CAULK_VERSION_STRING + ")");
  if (!descriptor.name || !*descriptor.name) return fail("the plugin descriptor has no name");
  info.name = descriptor.name;
  info.version = descriptor.version ? descriptor.version : "";
  info.summary = descriptor.summary ? descriptor.summary : "";

  if (library->handle.has(CAULK_PLUGIN_BUILD_SYMBOL)) {
    const auto& build = library->handle.get<const caulk_plugin_build>(CAULK_PLUGIN_BUILD_SYMBOL);
    if (auto mismatch = build_mismatch(build); !mismatch.empty()) return fail(mismatch);
    // A debug build of caulk itself makes every plugin slow alike: say it only when caulk is optimised.
    if (!build.optimized && kEngineBuild.optimized)
      info.warnings.push_back(
          "built without optimisation (a Debug build?): its nodes may run many times slower; "
          "rebuild it with -DCMAKE_BUILD_TYPE=Release");
  }

  if (!library->handle.has(CAULK_PLUGIN_ENTRY_SYMBOL)) return fail("the plugin exports no '" CAULK_PLUGIN_ENTRY_SYMBOL "' entry point");
  auto& entry = library->handle.get<void(void*)>(CAULK_PLUGIN_ENTRY_SYMBOL);

  // Register into a scratch registry first, so that a plugin failing half-way adds nothing, and a
  // plugin that clashes with an earlier one is refused whole.
  Registry staging;
  staging.artifact_types_ = artifact_types_;
  std::shared_ptr<const void> owner = library;
  try {
    PluginRegistrar registrar(staging, info, owner);
    entry(&registrar);
  } catch (const std::exception& e) {
    return fail(std::string("registration failed: ") + e.what());
  }
  info.node_types_known = true;

  const std::string self = "plugin '" + info.name + "'";
  auto first = [&](const std::string& plugin) {
    for (const auto& other : plugins_)
      if (other.loaded() && other.name == plugin) return "plugin '" + plugin + "' (" + other.path.string() + ")";
    return "plugin '" + plugin + "'";
  };
  const std::string rule = " (the first plugin to register a name keeps it, and caulk's bundled plugins load first)";
  for (const auto& other : plugins_)
    if (other.loaded() && other.name == info.name)
      return finish(PluginStatus::refused, "a plugin named '" + info.name + "' was already loaded from " + other.path.string() +
                                               "; rename " + self + " in its CAULK_PLUGIN" + rule);
  for (const auto& [name, type] : staging.node_types_)
    if (node_types_.count(name))
      return finish(PluginStatus::refused, self + " registers the node type '" + name + "', which " + first(node_types_.at(name).plugin) +
                                               " registered first; rename the node type" + rule);
  for (auto& [name, type] : staging.artifact_types_)
    if (!artifact_types_.count(name)) artifact_types_.emplace(name, type);
  for (auto& [name, type] : staging.node_types_) node_types_.emplace(name, std::move(type));
  info.status = PluginStatus::loaded;
  libraries_.push_back(std::move(library));
  plugins_.push_back(std::move(info));
  return true;
}

std::string Registry::require_plugin(const std::string& entry, const fs::path& base) {
  const std::string how = "add its folder with --plugin-path DIR or CAULK_PLUGIN_PATH, or give its path here";
  const bool bare_name = entry.find('/') == std::string::npos && fs::path(entry).extension() != ".so" && entry != "." && entry != "..";
  if (bare_name) {
    const PluginInfo* found = nullptr;
    for (const auto& p : plugins_)
      if (p.name == entry || p.path.stem() == entry)
        if (!found || p.loaded()) found = &p;
    if (found) return found->loaded() ? "" : found->problem();
    std::error_code ec;
    std::string beside = fs::exists(base / entry, ec) ? "; to load '" + (base / entry).string() + "', write \"./" + entry + "\"" : "";
    return "no plugin named '" + entry + "' was loaded from the plugin path (searched: " + path_list(searched_) + "); " + how +
           " (\"path/to/" + entry + ".so\" or a folder)" + beside;
  }
  fs::path path = entry;
  if (path.is_relative()) path = base / path;
  path = path.lexically_normal();
  std::error_code ec;
  if (!fs::exists(path, ec)) return "no such plugin file or folder: " + path.string();
  std::vector<fs::path> files;
  if (fs::is_directory(path, ec)) {
    for (const auto& f : fs::directory_iterator(path, ec))
      if (f.is_regular_file() && looks_like_plugin(f.path())) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) return "the folder " + path.string() + " holds no plugin (*.so)";
  } else {
    files.push_back(path);
  }
  bool seen = false;
  for (const auto& s : searched_) seen = seen || same_file(s, path);
  if (!seen) searched_.push_back(path);
  std::string problems;
  for (const auto& f : files) {
    if (load_plugin(f)) continue;
    problems += (problems.empty() ? "" : "; ") + plugins_.back().problem();
  }
  return problems;
}

std::vector<const PluginInfo*> Registry::failed_plugins() const {
  std::vector<const PluginInfo*> out;
  for (const auto& p : plugins_)
    if (p.status == PluginStatus::failed || p.status == PluginStatus::refused) out.push_back(&p);
  return out;
}

std::vector<const PluginInfo*> Registry::failed_plugins_that_may_provide(const std::string& type) const {
  std::vector<const PluginInfo*> out;
  for (const auto* p : failed_plugins())
    if (!p->node_types_known || std::find(p->node_types.begin(), p->node_types.end(), type) != p->node_types.end()) out.push_back(p);
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
  if (spec.observer && (!spec.inputs.empty() || !spec.outputs.empty()))
    throw Error("run observer type '" + spec.type + "' declares ports; an observer sees the run from outside the graph and has none");
  std::set<std::string> names;
  auto check_port = [&](const PortSpec& p, const char* side) {
    if (!names.insert(std::string(side) + p.name).second) throw Error(where + " declares the " + side + " port '" + p.name + "' twice");
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

PluginRegistrar::PluginRegistrar(Registry& registry, PluginInfo& info, std::shared_ptr<const void> owner)
    : registry_(registry), info_(info), owner_(std::move(owner)) {}

void PluginRegistrar::add_node(NodeSpec spec, NodeFactory make, UnitFunction run_unit) {
  NodeType t{std::move(spec), std::move(make), info_.name, owner_, run_unit, nullptr};
  info_.node_types.push_back(t.spec.type);
  registry_.add_node_type(std::move(t));
}

void PluginRegistrar::add_observer(NodeSpec spec, ObserverFactory make) {
  spec.observer = true;
  NodeType t{std::move(spec), nullptr, info_.name, owner_, nullptr, std::move(make)};
  info_.node_types.push_back(t.spec.type);
  registry_.add_node_type(std::move(t));
}

void PluginRegistrar::add_artifact_type(std::string name, std::string doc) {
  info_.artifact_types.push_back(name);
  registry_.add_artifact_type({std::move(name), std::move(doc), info_.name});
}

}  // namespace caulk
