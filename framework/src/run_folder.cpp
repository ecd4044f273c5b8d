#include "caulk/run_folder.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <atomic>
#include <set>
#include <thread>

#include "caulk/io/atomic_file.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/json_text.hpp"
#include "caulk/provenance.hpp"

namespace fs = std::filesystem;

namespace caulk {

namespace {

fs::path state_dir(const fs::path& folder) { return folder / kRunStateFolder; }

long read_pid(int fd) {
  char buffer[32] = {};
  const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
  if (n <= 0) return 0;
  return std::strtol(buffer, nullptr, 10);
}

// The files the executor itself writes into every run folder (not in the ledger: always rewritten).
const char* const kRunRecordFiles[] = {"run.json", "pipeline.dot", "pipeline.toml"};

}  // namespace

void write_record_file(const fs::path& path, std::string_view text) {
  std::error_code ec;
  if (fs::is_regular_file(fs::symlink_status(path, ec)) && fs::file_size(path, ec) == text.size() && !ec) {
    try {
      if (io::read_text_file(path) == text) return;
    } catch (const std::exception&) {
      // Unreadable: written again below.
    }
  }
  io::write_file_atomic(path, text);
}

bool remove_later(const fs::path& out_dir, const fs::path& folder) {
  const fs::path aside = state_dir(out_dir) / "removed";
  std::error_code ec;
  fs::create_directories(aside, ec);
  // A name of its own: what an earlier run moved aside may still be there.
  static std::atomic<unsigned> count{0};
  const fs::path to = aside / fmt::format("{}-{}-{}", folder.filename().string(), ::getpid(), count++);
  if (!ec) {
    fs::rename(folder, to, ec);  // caulk's own state moved, no output committed
    if (!ec) return true;
  }
  fs::remove_all(folder, ec);
  return false;
}

void remove_what_was_set_aside(const fs::path& out_dir) {
  const fs::path aside = state_dir(out_dir) / "removed";
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(aside, ec))) return;
  for (fs::directory_iterator it(aside, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code rm;
    fs::remove_all(it->path(), rm);
  }
}

RunFolderBusy::RunFolderBusy(const fs::path& folder, long pid)
    : Error(fmt::format("the output folder {} is in use by another caulk run ({}); wait for it to end, or choose "
                        "another folder with --out",
                        folder.string(), pid > 0 ? "PID " + std::to_string(pid) : std::string("PID not known yet"))),
      pid_(pid) {}

RunFolderLock::RunFolderLock(const fs::path& folder) {
  std::error_code ec;
  fs::create_directories(state_dir(folder), ec);
  const fs::path file = state_dir(folder) / "lock";
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd_ < 0) throw Error(fmt::format("cannot create the lock file {}: {}", file.string(), std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    long pid = 0;
    // The holder writes its PID right after taking the lock; give it a moment.
    for (int attempt = 0; attempt < 20 && pid == 0; ++attempt) {
      pid = read_pid(fd_);
      if (pid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK) throw RunFolderBusy(folder, pid);
    throw Error(fmt::format("cannot lock {}: {}", file.string(), std::strerror(error)));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock holds without the PID; a second run then says the PID is not known.
  }
}

RunFolderLock::~RunFolderLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock; the file stays (removing it would race a newcomer)
}

RunFolderLedger::RunFolderLedger(fs::path folder) : folder_(std::move(folder)) {
  std::string text;
  try {
    text = io::read_text_file(state_dir(folder_) / "outputs.json");
  } catch (const std::exception&) {
    return;
  }
  on_disk_ = text;
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return;
  try {
    pipeline_id_ = j.at("pipeline").get<std::string>();
    for (const auto& [rel, e] : j.at("outputs").items()) {
      const fs::path p(rel);
      // Only plain relative paths inside the folder: a damaged or crafted ledger cannot reach outside.
      if (p.is_absolute() || rel.empty() || p.lexically_normal().string().rfind("..", 0) == 0) continue;
      previous_[rel] = Entry{e.at("size").get<std::uintmax_t>(), e.at("xxh3_128").get<std::string>(), e.value("folder", false)};
    }
  } catch (const std::exception&) {
    previous_.clear();
  }
}

bool RunFolderLedger::unchanged(const std::string& rel, const Entry& e, FileHashCache& hashes) const {
  const fs::path p = folder_ / rel;
  std::error_code ec;
  // Never through a symbolic link: a folder on the way that is one now leads outside the run folder.
  fs::path on_the_way = folder_;
  for (const auto& part : fs::path(rel).parent_path()) {
    on_the_way /= part;
    if (fs::is_symlink(fs::symlink_status(on_the_way, ec)) || ec) return false;
  }
  const auto status = fs::symlink_status(p, ec);
  if (ec || (e.folder ? !fs::is_directory(status) : !fs::is_regular_file(status))) return false;
  if (!e.folder && fs::file_size(p, ec) != e.size) return false;
  const auto h = output_hash(p, hashes);
  return h && *h == e.hash;
}

std::vector<std::string> RunFolderLedger::prepare(const std::string& pipeline_id) {
  std::lock_guard lock(mutex_);
  new_pipeline_id_ = pipeline_id;
  if (pipeline_id_.empty()) pipeline_id_ = pipeline_id;
  std::vector<std::string> lines;
  if (pipeline_id_ == pipeline_id) return lines;
  // The new run rewrites these at once: their copies go aside now, the outputs once it has succeeded.
  const fs::path aside = state_dir(folder_) / "previous-run";
  std::error_code ec;
  fs::remove_all(aside, ec);  // caulk's own folder: what an earlier change of pipeline put there
  for (const char* name : kRunRecordFiles) {
    if (!fs::is_regular_file(fs::symlink_status(folder_ / name, ec))) continue;
    try {
      io::write_file_atomic(aside / name, io::read_text_file(folder_ / name));
    } catch (const std::exception&) {
    }
  }
  lines.push_back(
      fmt::format("{} holds the run of another pipeline: its run.json is kept in {}; its outputs move there once "
                  "this run has succeeded",
                  folder_.string(), aside.string()));
  return lines;
}

bool RunFolderLedger::record_locked(const fs::path& path, const Entry& entry) {
  const fs::path rel = path.lexically_relative(fs::absolute(folder_).lexically_normal());
  if (rel.empty() || rel.is_absolute() || *rel.begin() == ".." || *rel.begin() == kRunStateFolder) return false;
  const std::string key = rel.string();
  // What the folder's ledger says of it now: this run's entry, else the previous run's.
  const Entry* before = nullptr;
  if (auto c = current_.find(key); c != current_.end())
    before = &c->second;
  else if (auto p = previous_.find(key); p != previous_.end())
    before = &p->second;
  const bool same = before && before->size == entry.size && before->hash == entry.hash && before->folder == entry.folder;
  current_[key] = entry;
  if (!same) dirty_ = true;
  return !same;
}

void RunFolderLedger::add(const fs::path& path, const Entry& entry) { add_all({{path, entry}}); }

void RunFolderLedger::add_all(const std::vector<std::pair<fs::path, Entry>>& outputs) {
  std::lock_guard lock(mutex_);
  bool any = false;  // changed what the ledger says (a reused node's outputs do not)
  for (const auto& [path, entry] : outputs) any = record_locked(path, entry) || any;
  // Unflushed while the run goes: a kill loses nothing of it, and a power loss that loses the last
  // records only leaves those files alone next time, as a kill before its record would. The run's
  // end (clean_up) flushes it.
  if (any) save_locked(io::Durability::Recomputable);
}

std::vector<std::string> RunFolderLedger::stale() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [rel, e] : previous_)
    if (!current_.count(rel)) out.push_back(rel);
  return out;
}

std::vector<std::string> RunFolderLedger::clean_up(const std::vector<std::string>& read, FileHashCache& hashes) {
  const std::vector<std::string> candidates = stale();
  std::lock_guard lock(mutex_);
  const bool other_pipeline = pipeline_id_ != new_pipeline_id_;
  const fs::path aside = state_dir(folder_) / "previous-run";
  const fs::path base = fs::absolute(folder_).lexically_normal();
  std::set<std::string> inputs;
  for (const auto& r : read) {
    const fs::path rel = fs::path(r).lexically_relative(base);
    if (!rel.empty() && *rel.begin() != "..") inputs.insert(rel.string());
  }
  std::map<std::string, Entry> kept;
  std::vector<std::string> lines, done, left;
  for (const std::string& rel : candidates) {
    const Entry& e = previous_.at(rel);
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(folder_ / rel, ec))) continue;
    // An input of this run (a hub another pipeline built here): it stays, and stays caulk's.
    bool is_input = inputs.count(rel) > 0;
    for (const auto& in : inputs) is_input = is_input || (e.folder && in.rfind(rel + "/", 0) == 0);
    if (is_input) {
      kept[rel] = e;
      continue;
    }
    if (!unchanged(rel, e, hashes)) {
      left.push_back(rel);
      continue;
    }
    if (other_pipeline) {
      // Moving a verified old output aside is not committing one: no StagedOutput here.
      fs::create_directories((aside / rel).parent_path(), ec);
      fs::rename(folder_ / rel, aside / rel, ec);
    } else if (e.folder) {
      fs::remove_all(folder_ / rel, ec);
    } else {
      fs::remove(folder_ / rel, ec);
    }
    if (ec) {
      left.push_back(rel);
      continue;
    }
    done.push_back(rel);
    // Folders this emptied, up to the run folder (never one that holds anything else).
    for (fs::path dir = (folder_ / rel).parent_path(); dir != folder_ && fs::is_empty(dir, ec) && !ec; dir = dir.parent_path())
      if (!fs::remove(dir, ec)) break;
  }
  if (kept.size() != candidates.size() || pipeline_id_ != new_pipeline_id_) dirty_ = true;
  previous_ = std::move(kept);
  pipeline_id_ = new_pipeline_id_;
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  if (!done.empty())
    lines.push_back(other_pipeline ? fmt::format("moved the {} output{} of the previous run (another pipeline) aside into {}: {}",
                                                 done.size(), done.size() == 1 ? "" : "s", aside.string(), list(done))
                                   : fmt::format("removed {} output{} of the previous run that this run no longer writes: {}", done.size(),
                                                 done.size() == 1 ? "" : "s", list(done)));
  if (!left.empty())
    lines.push_back(fmt::format("left {} file{} of the previous run in place, changed since caulk wrote them: {}", left.size(),
                                left.size() == 1 ? "" : "s", list(left)));
  save_locked(io::Durability::Flushed);
  return lines;
}

void RunFolderLedger::save() const {
  std::lock_guard lock(mutex_);
  save_locked(io::Durability::Flushed);
}

std::size_t RunFolderLedger::saves() const {
  std::lock_guard lock(mutex_);
  return saves_;
}

void RunFolderLedger::save_locked(io::Durability durability) const {
  const bool flush = durability == io::Durability::Flushed;
  // Nothing recorded since the last save changed it: not even the text is made again.
  if (!dirty_ && (on_disk_flushed_ || !flush)) return;
  nlohmann::ordered_json outputs = nlohmann::ordered_json::object();
  std::map<std::string, Entry> all = previous_;
  for (const auto& [rel, e] : current_) all[rel] = e;
  for (const auto& [rel, e] : all) {
    nlohmann::ordered_json j = {{"size", e.size}, {"xxh3_128", e.hash}};
    if (e.folder) j["folder"] = true;
    outputs[rel] = std::move(j);
  }
  nlohmann::ordered_json j = {{"pipeline", pipeline_id_}, {"outputs", std::move(outputs)}};
  std::string text = json_text(j, 1) + "\n";
  // Unchanged: the file already says this (each flushed save waits for the disk twice, the cost of a re-run).
  if (text == on_disk_ && (on_disk_flushed_ || !flush)) {
    dirty_ = false;
    return;
  }
  io::write_file_atomic(state_dir(folder_) / "outputs.json", text, io::OnExisting::Replace, durability);
  on_disk_ = std::move(text);
  dirty_ = false;
  on_disk_flushed_ = flush;
  ++saves_;
}

}  // namespace caulk
