#include "caulk/node_cache.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "caulk/artifact_store.hpp"
#include "caulk/artifacts.hpp"
#include "caulk/error.hpp"
#include "caulk/io/durable.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/json_text.hpp"
#include "caulk/run_folder.hpp"
#include "caulk/version.hpp"

namespace fs = std::filesystem;

namespace caulk {

namespace {

// Bumped whenever what an entry holds, or what a key covers, changes.
constexpr int kCacheFormat = 4;  // 2: Checkpoint entries name their module; 3: arrays carry their hashes; 4: what was handed

// Artifacts read back at once when a node is reused: JSON only, and run.json shows them.
bool light(const std::string& type) { return type == Table::kType || type == Figure::kType; }

std::string absolute_normal(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return (ec ? p : a).lexically_normal().string();
}

bool inside(const fs::path& path, const fs::path& folder) {
  const fs::path rel = fs::path(absolute_normal(path)).lexically_relative(absolute_normal(folder));
  return !rel.empty() && *rel.begin() != "..";
}

// The file libcaulk was loaded from: a rebuilt engine may restore or key things differently.
fs::path caulk_library_file() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&content_hash), &info) && info.dli_fname) return info.dli_fname;
  return {};
}

// The content identity of a file or folder a path parameter names ("absent" when there is none).
std::string identity_of(const std::string& path, FileHashCache& hashes) {
  auto h = output_hash(path, hashes);
  return h ? *h : std::string("absent");
}

// Path parameters' values, in name order (split tables in split order).
std::vector<std::string> declared_paths(const PipelineNode& node) {
  std::vector<std::string> out;
  for (const auto& [name, value] : node.params.values()) {
    const ParamSpec* spec = node.type->spec.find_param(name);
    if (!spec || (spec->kind != ParamKind::Path && spec->kind != ParamKind::SplitPaths)) continue;
    if (value.is_string()) out.push_back(value.as_string());
    if (value.is_table())
      for (const auto& [split, p] : value.as_table())
        if (p.is_string()) out.push_back(p.as_string());
  }
  return out;
}

bool safe_name(const std::string& name) { return !name.empty() && name[0] != '.' && name.find('/') == std::string::npos; }

}  // namespace

NodeCache::NodeCache(const Pipeline& pipeline, const RunInvocation* invocation, fs::path out_dir, FileHashCache& hashes, bool reuse)
    : pipeline_(pipeline), out_dir_(std::move(out_dir)), hashes_(hashes), reuse_(reuse), keys_(pipeline.nodes.size()) {
  // What the previous run pruned, deleted while this one runs.
  try {
    remover_ = std::thread([dir = out_dir_] { remove_what_was_set_aside(dir); });
  } catch (const std::exception&) {
    remove_what_was_set_aside(out_dir_);
  }
  if (!invocation) return;
  const fs::path engine = caulk_library_file();
  const auto engine_hash = engine.empty() ? std::nullopt : hashes_.hash(engine);
  if (!engine_hash) return;
  for (std::size_t i : pipeline.order) {
    const PipelineNode& node = pipeline.nodes[i];
    const NodeSpec& spec = node.type->spec;
    bool keyable = spec.cacheable;
    for (const auto& port : spec.outputs) keyable = keyable && (port.type == kAnyArtifact || artifact_storable(port.type));
    for (std::size_t d : node.depends_on) keyable = keyable && !keys_[d].empty();
    const auto plugin =
        std::find_if(invocation->plugins.begin(), invocation->plugins.end(), [&](const auto& p) { return p.name == node.type->plugin; });
    std::optional<std::string> plugin_hash;
    if (plugin != invocation->plugins.end()) plugin_hash = hashes_.hash(plugin->file);
    if (!keyable || !plugin_hash) continue;
    // Each field preceded by its length, so no two lists of fields give the same text.
    std::string text;
    auto field = [&](const std::string& s) { text.append(std::to_string(s.size())).append(1, ':').append(s); };
    field("caulk-node-cache " + std::to_string(kCacheFormat));
    field(CAULK_VERSION_STRING);
    field(*engine_hash);
    field(node.config.id);
    field(node.config.type);
    field(plugin->name);
    field(plugin->version);
    field(*plugin_hash);
    field(json_text(effective_params_json(node, fs::path())));
    for (const auto& in : node.inputs) {
      field("input " + in.port);
      for (const auto& s : in.sources) field(keys_[s.node] + "." + s.port);
    }
    // Files inside the run folder that a path parameter names are outputs of this run (a node's
    // own output, say): their identity is checked as the entry's outputs and reads are.
    for (const auto& path : declared_paths(node)) field(path + "=" + (inside(path, out_dir_) ? "run folder" : identity_of(path, hashes_)));
    keys_[i] = content_hash(text);
  }
}

fs::path NodeCache::folder() const { return out_dir_ / kRunStateFolder / "cache"; }

std::optional<CachedResult> NodeCache::lookup(std::size_t i, std::string* why_not) {
  if (!reuse_ || keys_[i].empty()) return std::nullopt;
  const auto started = std::chrono::steady_clock::now();
  const fs::path dir = folder() / keys_[i];
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  // The engine's own reads: not the node's.
  io::ScopedAccessLog not_the_nodes(nullptr);
  try {
    const Json entry = Json::parse(io::read_text_file(dir / "entry.json"));
    if (entry.at("format").get<int>() != kCacheFormat || entry.at("key").get<std::string>() != keys_[i])
      throw Error("the entry is of another format or key");
    CachedResult r;
    for (const auto& f : entry.at("reads")) {
      const std::string path = f.at("path").get<std::string>();
      io::FileStat st;
      const auto h = hashes_.hash(path, &st);
      if (!h) throw Error(path + ", which it read, is gone or unreadable");
      if (*h != f.at("xxh3_128").get<std::string>()) throw Error(path + ", which it read, changed");
      r.files->note_read(path, st);
      r.checked[path] = KnownFile{st, *h};
    }
    for (const auto& f : entry.at("outputs")) {
      const fs::path rel = f.at("path").get<std::string>();
      const fs::path path = rel.is_absolute() ? rel : out_dir_ / rel;
      const bool folder = f.at("folder").get<bool>();
      KnownFile checked;
      if (!folder) {
        const auto st = stat_file(path);
        if (!st) throw Error("its output " + path.string() + " is missing");
        if (st->size != f.at("size").get<std::uintmax_t>()) throw Error("its output " + path.string() + " changed");
        checked.stat.size = st->size;
      }
      const auto h = output_hash(path, hashes_);
      if (!h) throw Error("its output " + path.string() + " is missing");
      if (*h != f.at("xxh3_128").get<std::string>()) throw Error("its output " + path.string() + " changed");
      checked.hash = *h;
      const std::string written = absolute_normal(path);
      r.files->note_written(written, folder);
      r.checked[written] = std::move(checked);
    }
    for (const auto& f : entry.at("outputs_read")) {
      const std::string path = f.at("path").get<std::string>();
      io::FileStat seen;
      seen.size = f.at("size").get<std::uintmax_t>();
      seen.mtime_ns = f.at("mtime_ns").get<std::int64_t>();
      r.files->note_read(path, stat_file(path).value_or(seen));
    }
    std::map<std::string, std::string> types;  // port -> artifact type
    for (const auto& a : entry.at("artifacts")) {
      const std::string port = a.at("port").get<std::string>();
      const Json& header = a.at("artifact");
      const std::string type = header.at("type").get<std::string>();
      if (!types.emplace(port, type).second) throw Error("the entry has output " + port + " twice");
      if (light(type))
        r.published.emplace_back(port, load_artifact(header, dir, hashes_));
      else
        r.not_read_back.emplace_back(port, header);
    }
    // The node's contract, as when it runs: its declared outputs (the optional ones if published).
    const NodeSpec& spec = pipeline_.nodes[i].type->spec;
    for (const auto& port : spec.outputs) {
      auto it = types.find(port.name);
      if (it == types.end() && port.optional) continue;
      if (it == types.end() || (port.type != kAnyArtifact && it->second != port.type)) throw Error("the entry lacks output " + port.name);
    }
    for (const auto& [port, type] : types)
      if (!spec.find_output(port)) throw Error("the entry has outputs the node does not declare");
    r.entry = dir;
    r.handed = entry.at("handed").get<std::vector<std::string>>();
    r.summary = entry.at("summary");
    r.printed = entry.at("printed").get<std::string>();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return r;
  } catch (const std::exception& e) {
    if (why_not) *why_not = e.what();
    return std::nullopt;
  }
}

void NodeCache::read_back(CachedResult& hit) {
  // The engine's own reads: not the node's.
  io::ScopedAccessLog not_the_nodes(nullptr);
  for (const auto& [port, header] : hit.not_read_back) hit.published.emplace_back(port, load_artifact(header, hit.entry, hashes_));
  hit.not_read_back.clear();
}

std::string NodeCache::store(std::size_t i, const std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>>& published,
                             const Json& summary, const std::string& printed, const io::AccessLog& files,
                             const std::vector<std::string>& handed) {
  if (keys_[i].empty()) return "";
  if (files.incomplete()) return "the list of files it read is incomplete";
  if (!files.changed_while_read().empty()) return *files.changed_while_read().begin() + " changed while it was read";
  for (const auto& [port, artifact] : published)
    if (!artifact_storable(artifact->type_name())) return "its output '" + port + "' is of a type the cache cannot store";
  io::ScopedAccessLog not_the_nodes(nullptr);
  try {
    const auto writes = files.writes();
    // What it read (and what its inputs named, read here or on another rank), with content hashes.
    std::map<std::string, io::FileStat> reads = files.reads();
    for (const auto& path : handed)
      if (auto st = stat_file(path)) reads.emplace(path, *st);
    const std::string own_record = absolute_normal(out_dir_ / "run.json");
    Json read_list = Json::array(), outputs_read = Json::array();
    for (const auto& [path, stat] : reads) {
      if (path == own_record) continue;
      if (writes.count(path)) {
        // Its own output, or a scratch file it removed again: checked as an output, listed (with
        // what the node saw) so its provenance says what a fresh run's says.
        outputs_read.push_back(Json{{"path", path}, {"size", stat.size}, {"mtime_ns", stat.mtime_ns}});
        continue;
      }
      const auto h = hashes_.hash_if_unchanged(path, stat);
      if (!h) return path + " changed after it was read";
      read_list.push_back(Json{{"path", path}, {"xxh3_128", *h}});
    }
    Json outputs = Json::array();
    for (const auto& [path, folder] : writes) {
      std::error_code ec;
      if (!fs::exists(fs::symlink_status(path, ec))) continue;  // a scratch file the node removed again
      const auto h = output_hash(path, hashes_);
      if (!h) return "its output " + path + " cannot be hashed";
      Json o = Json::object();
      o["path"] = inside(path, out_dir_) ? fs::path(path).lexically_relative(absolute_normal(out_dir_)).string() : path;
      o["folder"] = folder;
      o["size"] = folder ? 0 : stat_file(path).value_or(io::FileStat{}).size;
      o["xxh3_128"] = *h;
      outputs.push_back(std::move(o));
    }
    io::StagedOutput staged(folder() / keys_[i], io::StagedOutput::Kind::Folder);
    Json artifacts = Json::array();
    for (std::size_t n = 0; n < published.size(); ++n) {
      const auto& [port, artifact] = published[n];
      artifacts.push_back(Json{{"port", port}, {"artifact", save_artifact(*artifact, staged.path(), "a" + std::to_string(n), hashes_)}});
    }
    Json entry = Json::object();
    entry["format"] = kCacheFormat;
    entry["key"] = keys_[i];
    entry["node"] = pipeline_.nodes[i].config.id;
    entry["reads"] = std::move(read_list);
    entry["outputs"] = std::move(outputs);
    entry["outputs_read"] = std::move(outputs_read);
    entry["artifacts"] = std::move(artifacts);
    entry["handed"] = handed;
    entry["summary"] = summary;
    entry["printed"] = printed;
    // Text that would not read back the same (a string that is not UTF-8) is not stored.
    const auto text = json_text_if_valid(entry);
    if (!text) return "a text it published is not valid UTF-8";
    // Unflushed: an entry lost or damaged by a power loss is found so (unreadable, or its arrays'
    // hashes differ) and its node runs again (caulk/io/durable.hpp, Durability::Recomputable).
    io::write_file_in_staged_folder(staged.path() / "entry.json", {*text, "\n"});
    staged.commit(io::OnExisting::Replace, io::Durability::Recomputable);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

NodeCache::~NodeCache() {
  if (remover_.joinable()) remover_.join();
}

void NodeCache::prune() {
  if (remover_.joinable()) remover_.join();  // never two deleters on one folder
  std::set<std::string> keep(keys_.begin(), keys_.end());
  std::vector<fs::path> stale;
  std::error_code ec;
  for (fs::directory_iterator it(folder(), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (keep.count(name) || !safe_name(name) || io::is_temporary_name(name)) continue;
    stale.push_back(it->path());
  }
  for (const auto& entry : stale) remove_later(out_dir_, entry);
}

}  // namespace caulk
