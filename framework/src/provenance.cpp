#include "caulk/provenance.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <set>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "caulk/artifacts.hpp"
#include "caulk/json.hpp"
#include "caulk/registry.hpp"
#include "caulk/version.hpp"

namespace fs = std::filesystem;

namespace caulk {

namespace {

std::string absolute_normal(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return (ec ? p : a).lexically_normal().string();
}

// `p` relative to `base` when it lies inside it, else absolute.
std::string path_within(const std::string& p, const fs::path& base) {
  const fs::path abs = absolute_normal(p);
  if (base.empty()) return abs.string();
  const fs::path rel = abs.lexically_relative(absolute_normal(base));
  if (rel.empty() || *rel.begin() == "..") return abs.string();
  return rel.string();
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

// The files a node's path parameters name (regular files only: a folder or a missing file is the
// node's business, which reports it).
std::vector<std::string> declared_files(const PipelineNode& node) {
  std::vector<std::string> out;
  for (const auto& spec : node.type->spec.params) {
    if (spec.kind != ParamKind::Path && spec.kind != ParamKind::SplitPaths) continue;
    if (!node.params.has(spec.name)) continue;
    const Value& v = node.params.get(spec.name);
    auto add = [&](const Value& p) {
      if (p.is_string() && stat_file(p.as_string())) out.push_back(absolute_normal(p.as_string()));
    };
    if (v.is_string()) add(v);
    if (v.is_table())
      for (const auto& [split, p] : v.as_table()) add(p);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

std::int64_t now_since_epoch_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string utc_timestamp(std::int64_t ns) {
  const std::time_t seconds = static_cast<std::time_t>(ns / 1000000000);
  long fraction = static_cast<long>(ns % 1000000000);
  std::time_t s = seconds;
  if (fraction < 0) {
    fraction += 1000000000;
    --s;
  }
  std::tm tm{};
  ::gmtime_r(&s, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, fraction);
}

Json effective_params_json(const PipelineNode& node, const fs::path& base) {
  Json out = Json::object();
  for (const auto& [name, value] : node.params.values()) {
    const ParamSpec* spec = node.type->spec.find_param(name);
    const bool is_path = spec && (spec->kind == ParamKind::Path || spec->kind == ParamKind::SplitPaths);
    if (is_path && value.is_string()) {
      out[name] = path_within(value.as_string(), base);
    } else if (is_path && value.is_table()) {
      Json t = Json::object();
      for (const auto& [split, p] : value.as_table())
        t[split] = p.is_string() ? Json(path_within(p.as_string(), base)) : value_to_json(p, NonFinite::AsText);
      out[name] = std::move(t);
    } else {
      out[name] = value_to_json(value, NonFinite::AsText);
    }
  }
  return out;
}

std::optional<std::string> output_hash(const fs::path& path, FileHashCache& cache) {
  std::error_code ec;
  const auto status = fs::symlink_status(path, ec);
  if (ec) return std::nullopt;
  if (fs::is_regular_file(status)) return cache.hash(path);
  if (!fs::is_directory(status)) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> files;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    auto h = cache.hash(it->path());
    if (!h) return std::nullopt;
    files.emplace_back(it->path().lexically_relative(path).generic_string(), *h);
  }
  if (ec) return std::nullopt;
  std::sort(files.begin(), files.end());
  std::string listing;
  for (const auto& [name, h] : files) listing.append(name).append(1, '\0').append(h).append(1, '\n');
  return content_hash(listing);
}

RunInvocation describe_invocation(const std::vector<std::string>& command, const std::vector<std::string>& overrides,
                                  const std::vector<std::string>& plugin_paths, const std::string& pipeline_text, const Pipeline& pipeline,
                                  const Registry& registry) {
  RunInvocation inv;
  inv.command = command;
  inv.overrides = overrides;
  for (const auto& p : plugin_paths) inv.plugin_paths.push_back(absolute_normal(p));
  if (const char* env = std::getenv("CAULK_PLUGIN_PATH")) inv.plugin_path_env = env;
  inv.pipeline_file = absolute_normal(pipeline.config.file);
  inv.pipeline_text = pipeline_text;
  std::set<std::string> used;
  for (const auto& n : pipeline.nodes) used.insert(n.type->plugin);
  for (const auto& o : pipeline.observers) used.insert(o.type->plugin);
  for (const auto& p : registry.plugins())
    if (p.loaded()) inv.plugins.push_back({p.name, p.version, absolute_normal(p.path), used.count(p.name) > 0});
  return inv;
}

ProvenanceRecorder::ProvenanceRecorder(const Pipeline& pipeline, const RunInvocation* invocation, fs::path out_dir, unsigned jobs,
                                       FileHashCache& hashes)
    : pipeline_(pipeline),
      invocation_(invocation),
      out_dir_(std::move(out_dir)),
      jobs_(jobs),
      hashes_(hashes),
      nodes_(pipeline.nodes.size()) {
  started_ns_ = now_since_epoch_ns();
  const fs::path base = pipeline.config.file.empty() ? fs::path() : fs::path(absolute_normal(pipeline.config.file)).parent_path();
  for (std::size_t i = 0; i < pipeline.nodes.size(); ++i) nodes_[i].params = effective_params_json(pipeline.nodes[i], base);
  if (invocation)
    for (const auto& p : invocation->plugins) {
      Json j = Json::object();
      j["name"] = p.name;
      j["version"] = p.version;
      j["file"] = p.file.string();
      const auto h = hashes_.hash(p.file);
      j["xxh3_128"] = h ? Json(*h) : Json(nullptr);
      j["used"] = p.used;
      plugins_.push_back(std::move(j));
    }
}

std::vector<std::string> files_named_by(const Artifact& artifact) {
  std::vector<std::string> out;
  auto add = [&](const fs::path& p) {
    if (!p.empty() && stat_file(p)) out.push_back(absolute_normal(p));
  };
  if (const auto* e = dynamic_cast<const Embeddings*>(&artifact)) {
    for (const auto& m : e->models) {
      for (const auto& [split, f] : m.features) add(f.path);
      for (const auto& [split, f] : m.source_probs) add(f.path);
    }
  } else if (const auto* c = dynamic_cast<const Checkpoint*>(&artifact)) {
    for (const auto& m : c->models) {
      add(m.path);
      add(m.fisher);
      add(m.module);
    }
  } else if (const auto* d = dynamic_cast<const Dataset*>(&artifact)) {
    for (const auto& s : d->splits) {
      add(s.labels_file);
      if (s.inputs) add(s.inputs->path);
      if (s.covariates) add(s.covariates->path);
    }
  } else if (const auto* w = dynamic_cast<const Weights*>(&artifact)) {
    add(w->function_file);
  }
  return out;
}

ProvenanceRecorder::FileRecord ProvenanceRecorder::describe_input(const std::string& path, const io::FileStat& stat, std::string via,
                                                                  const KnownFiles* checked) {
  FileRecord r;
  r.path = path;
  r.size = stat.size;
  r.mtime_ns = stat.mtime_ns;
  r.via = std::move(via);
  if (const KnownFile* k = find_known(checked, path); k && k->stat == stat) {
    r.hash = k->hash;
    return r;
  }
  if (auto h = hashes_.hash_if_unchanged(path, stat))
    r.hash = *h;
  else
    r.note = stat_file(path) ? "changed after the node read it" : "gone after the node read it";
  return r;
}

void ProvenanceRecorder::node_ran(std::size_t index, const io::AccessLog& log, const std::vector<std::string>& handed,
                                  const KnownFiles* checked) {
  NodeRecord record;
  const auto reads = log.reads();
  const auto changed = log.changed_while_read();
  // What the node depends on, whether or not this process saw it read: the files its path
  // parameters name (the contract), then those its input artifacts name; then what it read.
  std::map<std::string, std::string> via;
  for (const auto& path : declared_files(pipeline_.nodes[index])) via.emplace(path, "parameter");
  for (const auto& path : handed) via.emplace(path, "artifact");
  // run.json is the engine's record of this very run, which a node could read: not an
  // input with an identity of its own (its bytes hold this run's times).
  const std::string own_record = (fs::path(absolute_normal(out_dir_)) / "run.json").string();
  for (const auto& [path, stat] : reads) {
    if (path == own_record) continue;
    auto it = via.find(path);
    FileRecord r = describe_input(path, stat, it == via.end() ? "read" : it->second, checked);
    if (it != via.end()) via.erase(it);
    if (changed.count(path)) {
      r.hash.clear();
      r.note = "changed while the node read it";
    }
    record.inputs.push_back(std::move(r));
  }
  for (const auto& [path, how] : via)
    if (auto st = stat_file(path)) record.inputs.push_back(describe_input(path, *st, how, checked));
  std::sort(record.inputs.begin(), record.inputs.end(), [](const auto& a, const auto& b) {
    const std::string an = fs::path(a.path).filename().string(), bn = fs::path(b.path).filename().string();
    return std::tie(an, a.hash, a.size, a.path) < std::tie(bn, b.hash, b.size, b.path);
  });
  for (const auto& [path, folder] : log.writes()) {
    FileRecord r;
    r.path = path;
    r.folder = folder;
    if (const KnownFile* k = find_known(checked, path)) {
      r.size = k->stat.size;
      r.hash = k->hash;
      record.outputs.push_back(std::move(r));
      continue;
    }
    if (!folder)
      if (auto st = stat_file(path)) r.size = st->size;
    if (auto h = output_hash(path, hashes_))
      r.hash = *h;
    else
      r.note = "could not be hashed (changed or removed after it was written?)";
    record.outputs.push_back(std::move(r));
  }
  if (log.incomplete()) {
    FileRecord r;
    r.note = "the list of files is incomplete (out of memory)";
    record.inputs.push_back(std::move(r));
  }
  std::lock_guard lock(mutex_);
  record.params = std::move(nodes_[index].params);
  record.ran = true;
  nodes_[index] = std::move(record);
}

void ProvenanceRecorder::finish() {
  std::lock_guard lock(mutex_);
  ended_ns_ = now_since_epoch_ns();
}

std::vector<fs::path> ProvenanceRecorder::written() const {
  std::lock_guard lock(mutex_);
  std::vector<fs::path> out;
  for (const auto& n : nodes_)
    for (const auto& o : n.outputs) out.emplace_back(o.path);
  return out;
}

std::vector<std::string> ProvenanceRecorder::inputs() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& n : nodes_)
    for (const auto& i : n.inputs) out.push_back(i.path);
  return out;
}

Json ProvenanceRecorder::to_json() const {
  std::lock_guard lock(mutex_);
  Json p = Json::object();
  p["caulk"] = CAULK_VERSION_STRING;
  if (invocation_) {
    p["command"] = invocation_->command;
    p["working_dir"] = absolute_normal(fs::current_path());
    p["pipeline_file"] = invocation_->pipeline_file.string();
    p["pipeline_copy"] = "pipeline.toml";
    p["pipeline_xxh3_128"] = content_hash(invocation_->pipeline_text);
    p["overrides"] = invocation_->overrides;
    p["plugin_paths"] = invocation_->plugin_paths;
    p["plugin_path_env"] = invocation_->plugin_path_env;
    p["plugins"] = plugins_;
  }
  p["started"] = utc_timestamp(started_ns_);
  p["ended"] = ended_ns_ ? Json(utc_timestamp(ended_ns_)) : Json(nullptr);
  p["host"] = host_name();
  p["jobs"] = jobs_;
  p["hardware_threads"] = std::thread::hardware_concurrency();
  Json nodes = Json::object();
  const fs::path out_abs = absolute_normal(out_dir_);
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const NodeRecord& r = nodes_[i];
    Json n = Json::object();
    n["params"] = r.params;
    Json inputs = Json::array();
    for (const auto& f : r.inputs) {
      Json j = Json::object();
      j["path"] = f.path;
      j["size"] = f.size;
      j["mtime"] = utc_timestamp(f.mtime_ns);
      j["xxh3_128"] = f.hash.empty() ? Json(nullptr) : Json(f.hash);
      j["via"] = f.via;
      if (!f.note.empty()) j["note"] = f.note;
      inputs.push_back(std::move(j));
    }
    n["inputs"] = std::move(inputs);
    // The node's outputs are not listed here: under mpirun other ranks write some of them, out of
    // this process's sight, and run.json must not depend on that. The folder's ledger
    // (.caulk/outputs.json) lists those written here, with their hashes.
    nodes[pipeline_.nodes[i].config.id] = std::move(n);
  }
  p["nodes"] = std::move(nodes);
  return p;
}

}  // namespace caulk
