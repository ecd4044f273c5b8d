#include "caulk/context.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "caulk/artifacts.hpp"
#include "caulk/cancel.hpp"
#include "caulk/failures.hpp"
#include "caulk/file_hash.hpp"
#include "caulk/io/access_log.hpp"
#include "caulk/parallel.hpp"
#include "run_environment.hpp"

namespace caulk {

// ------------------------------------------------------------------------------ RunEnvironment

void RunEnvironment::log_line(const std::string& line) const {
  std::lock_guard lock(mutex_);
  if (bar_drawn_) {
    *err << "\r\033[K";
    bar_drawn_ = false;
  }
  *err << line << "\n" << std::flush;
}

void RunEnvironment::draw_bar(const std::string& line) const {
  std::lock_guard lock(mutex_);
  *err << "\r\033[K" << line << std::flush;
  bar_drawn_ = true;
}

void RunEnvironment::write_out(const std::string& text) const {
  std::lock_guard lock(mutex_);
  if (bar_drawn_) {
    *err << "\r\033[K" << std::flush;
    bar_drawn_ = false;
  }
  *out << text << std::flush;
}

// ------------------------------------------------------------------------------ Progress

Progress::Progress(const RunEnvironment* env, std::string node_id, std::string what, std::size_t total)
    : env_(env),
      node_id_(std::move(node_id)),
      what_(std::move(what)),
      total_(total),
      started_(std::chrono::steady_clock::now()),
      last_draw_(started_) {}

Progress::~Progress() {
  if (env_ && env_->progress_bars && done_ > 0) env_->log_line(fmt::format("[{}] {}: {}/{}", node_id_, what_, done_, total_));
}

void Progress::advance(std::size_t n) {
  throw_if_cancelled();  // the cooperative stop point of long loops (caulk/cancel.hpp)
  if (!env_) return;
  std::lock_guard lock(mutex_);
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - started_).count();
  if (env_->progress_bars) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_draw_ = now;
    constexpr int kWidth = 30;
    int filled = total_ ? static_cast<int>(kWidth * done_ / total_) : kWidth;
    double rate = elapsed > 0 ? done_ / elapsed : 0;
    env_->draw_bar(fmt::format("[{}] {} [{}{}] {}/{} ({:.1f}/s)", node_id_, what_, std::string(filled, '#'),
                               std::string(kWidth - filled, '.'), done_, total_, rate));
  } else {
    // Plain lines for logs: one at each tenth of the way.
    int decile = total_ ? static_cast<int>(10 * done_ / total_) : 10;
    if (decile == last_decile_ || (decile < 10 && elapsed < 2.0)) return;
    last_decile_ = decile;
    env_->log_line(fmt::format("[{}] {}: {}/{} after {:.1f} s", node_id_, what_, done_, total_, elapsed));
  }
}

// ------------------------------------------------------------------------------ memory sizes

std::size_t parse_memory_size(std::string_view text) {
  auto bad = [&] {
    return Error(fmt::format("'{}' is not a memory size: give bytes or a number with K, M, G or T (e.g. 512M, 8G)", text));
  };
  std::size_t at = 0;
  while (at < text.size() && (std::isdigit(static_cast<unsigned char>(text[at])) || text[at] == '.')) ++at;
  if (at == 0) throw bad();
  double number = 0;
  std::istringstream in{std::string(text.substr(0, at))};
  in.imbue(std::locale::classic());
  if (!(in >> number) || !in.eof()) throw bad();
  std::string unit;
  for (char c : text.substr(at))
    if (!std::isspace(static_cast<unsigned char>(c))) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();  // KB, MB, GB, TB, KIB, ...
  if (unit.size() == 2 && unit.back() == 'I') unit.pop_back();
  double scale = 1;
  if (unit == "K")
    scale = 1024.0;
  else if (unit == "M")
    scale = 1024.0 * 1024;
  else if (unit == "G")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "T")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty() && unit != "B")
    throw bad();
  const double bytes = number * scale;
  if (!(bytes < static_cast<double>(std::numeric_limits<std::size_t>::max()))) throw bad();
  return static_cast<std::size_t>(bytes);
}

std::size_t default_memory_limit() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::size_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024 / 2;
  return 0;
}

std::string format_bytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 6) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, kUnits[unit]);
}

// ------------------------------------------------------------------------------ NodeContext

NodeContext::NodeContext(std::string id, std::string type, const Params& params, std::vector<Input> inputs, const RunEnvironment* env,
                         const NodeType* node_type)
    : id_(std::move(id)), type_(std::move(type)), params_(params), inputs_(std::move(inputs)), env_(env), node_type_(node_type) {}

bool NodeContext::has_input(const std::string& port) const {
  for (const auto& in : inputs_)
    if (in.port == port) return !in.artifacts.empty();
  return false;
}

const std::vector<std::shared_ptr<const Artifact>>& NodeContext::raw_inputs(const std::string& port) const {
  static const std::vector<std::shared_ptr<const Artifact>> kNone;
  for (const auto& in : inputs_)
    if (in.port == port) return in.artifacts;
  return kNone;
}

std::string NodeContext::fmt_input_count(const std::string& port, std::size_t n) const {
  return fmt::format("node '{}': input '{}' has {} artifacts where one was expected", id_, port, n);
}

std::string NodeContext::fmt_type_mismatch(const std::string& port, std::string_view want, std::string_view got) {
  return fmt::format("input '{}' expects {} but received {}", port, want, got);
}

void NodeContext::publish(const std::string& port, std::shared_ptr<Artifact> artifact) {
  if (!artifact) throw Error("node '" + id_ + "' published nothing on output '" + port + "'");
  artifact->producer_node = id_;
  artifact->producer_port = port;
  std::lock_guard lock(mutex_);
  for (auto& [p, a] : outputs_)
    if (p == port) throw Error("node '" + id_ + "' published output '" + port + "' twice");
  outputs_.emplace_back(port, std::move(artifact));
}

std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>> NodeContext::take_outputs() {
  std::lock_guard lock(mutex_);
  return std::move(outputs_);
}

const std::filesystem::path& NodeContext::out_dir() const {
  static const std::filesystem::path kHere = ".";
  return env_ ? env_->out_dir : kHere;
}

void NodeContext::print(const std::string& text) {
  std::lock_guard lock(mutex_);
  printed_ += text;
}

std::string NodeContext::take_printed() {
  std::lock_guard lock(mutex_);
  return std::move(printed_);
}

void NodeContext::log(const std::string& message) const {
  if (env_) env_->log_line("[" + id_ + "] " + message);
}

Progress NodeContext::progress(std::string what, std::size_t total) const { return Progress(env_, id_, std::move(what), total); }

unsigned NodeContext::jobs() const { return env_ ? env_->jobs : parallel_width(); }

std::size_t NodeContext::memory_limit() const { return env_ ? env_->memory_limit : 0; }

void NodeContext::check_memory(std::size_t bytes, const std::string& what, const std::string& advice) const {
  const std::size_t limit = memory_limit();
  if (limit == 0 || bytes <= limit) return;
  throw Error(
      fmt::format("node '{}' ({}) would need about {} for {}, more than the memory budget of {} (--memory-limit; "
                  "the default is half of the available memory). {}",
                  id_, type_, format_bytes(static_cast<double>(bytes)), what, format_bytes(static_cast<double>(limit)), advice));
}
namespace {
// Progress from inside the engine's own loops, which check for a stop themselves.
void advance_quietly(Progress& bar) {
  try {
    bar.advance();
  } catch (const Interrupted&) {
  }
}
}  // namespace

void NodeContext::for_each_unit(const std::string& what, const std::vector<std::string>& unit_names,
                                const std::function<void(std::size_t)>& fn) const {
  std::vector<std::string> errors(unit_names.size());
  std::vector<char> cut_short(unit_names.size(), 0);
  Progress bar = progress(what + "s", unit_names.size());
  parallel_for(unit_names.size(), [&](std::size_t i) {
    if (cancel_requested()) {  // no unit starts after a stop was requested
      cut_short[i] = 1;
      return;
    }
    try {
      fn(i);
    } catch (const Interrupted&) {
      cut_short[i] = 1;
    } catch (const std::bad_alloc&) {
      errors[i] = "out of memory";
    } catch (const std::exception& e) {
      errors[i] = e.what();
    }
    advance_quietly(bar);
  });
  if (std::find(cut_short.begin(), cut_short.end(), 1) != cut_short.end()) throw Interrupted(cancel_signal());
  std::vector<UnitFailure> failures;
  for (std::size_t i = 0; i < errors.size(); ++i)
    if (!errors[i].empty()) failures.push_back({unit_names[i], errors[i]});
  if (!failures.empty()) throw Error(unit_failures_message(what, unit_names.size(), failures));
}

bool NodeContext::distributed() const { return env_ && env_->units && env_->units->distributed(); }

std::vector<Json> NodeContext::run_units(const std::string& what, const std::vector<std::string>& unit_names,
                                         const std::vector<Json>& payloads, const void* local, const std::type_info* local_type) const {
  if (unit_names.size() != payloads.size())
    throw Error(fmt::format("node '{}': {} {} names for {} unit payloads", id_, unit_names.size(), what, payloads.size()));
  if (!node_type_ || !node_type_->run_unit)
    throw Error(fmt::format("node '{}' ({}) calls run_units but its type declares no run_unit (docs/writing-plugins.md)", id_, type_));
  LocalUnitDispatcher in_this_process;
  UnitDispatcher* dispatcher = env_ && env_->units ? env_->units : &in_this_process;
  const bool distributed = dispatcher->distributed();
  std::string label = what + "s";
  if (distributed) label += fmt::format(" on {} ranks", dispatcher->ranks().value("processes", 1));
  Progress bar = progress(label, unit_names.size());
  UnitBatch batch;
  batch.node_type = node_type_;
  batch.node_id = id_;
  batch.params = &params_;
  // Every Dataset input, attached once for the whole batch (a port that takes several: none).
  for (const auto& in : inputs_)
    if (in.artifacts.size() == 1)
      if (auto d = std::dynamic_pointer_cast<const Dataset>(in.artifacts.front())) batch.datasets.emplace_back(in.port, std::move(d));
  batch.memory_limit = memory_limit();
  batch.payloads = &payloads;
  batch.on_unit_done = [&bar] { advance_quietly(bar); };
  batch.node = this;
  batch.local = local;
  batch.local_type = local_type;
  std::vector<UnitOutcome> outcomes = dispatcher->run(batch);
  // Files units read and wrote on other ranks, into this node's record (UnitOutcome).
  for (const auto& o : outcomes) {
    for (const auto& [path, folder] : o.written) io::note_written(path, folder);
    for (const auto& path : o.read)
      if (const auto stat = stat_file(path)) io::note_read(path, *stat);
    if (o.files_incomplete)
      if (io::AccessLog* log = io::current_access_log()) log->mark_incomplete();
  }
  // Units that a stop request skipped or cut short fail; the node is then interrupted, not failed.
  if (cancel_requested() && std::any_of(outcomes.begin(), outcomes.end(), [](const UnitOutcome& o) { return !o.error.empty(); }))
    throw Interrupted(cancel_signal());
  std::vector<Json> results(outcomes.size());
  std::vector<UnitFailure> failures;  // each cause once (caulk/failures.hpp)
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    if (outcomes[i].error.empty()) {
      results[i] = std::move(outcomes[i].result);
      continue;
    }
    failures.push_back({unit_names[i], outcomes[i].error, distributed ? outcomes[i].rank : -1});
  }
  if (!failures.empty()) throw Error(unit_failures_message(what, unit_names.size(), failures));
  return results;
}

}  // namespace caulk
