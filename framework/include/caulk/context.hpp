// What a running node sees: its validated inputs and parameters, and where to publish.
#pragma once
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "caulk/artifact.hpp"
#include "caulk/error.hpp"
#include "caulk/json.hpp"
#include "caulk/node.hpp"
#include "caulk/units.hpp"

namespace caulk {

class RunEnvironment;  // the executor's shared state (progress, output, options)

// A progress counter for a long loop inside a node: a bar on a terminal, sparse lines otherwise.
class Progress {
 public:
  Progress(const RunEnvironment* env, std::string node_id, std::string what, std::size_t total);
  ~Progress();
  void advance(std::size_t n = 1);

 private:
  const RunEnvironment* env_;
  std::string node_id_, what_;
  std::size_t total_, done_ = 0;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point started_, last_draw_;
  std::mutex mutex_;
};

// Sizes for --memory-limit: a number of bytes with an optional binary suffix K, M, G or T (also
// KB, KiB, ...; case-insensitive; a fraction is allowed: "1.5G"). Throws Error for anything else.
std::size_t parse_memory_size(std::string_view text);
// Half of MemAvailable in /proc/meminfo: the default budget; 0 (no limit) when it cannot be read.
std::size_t default_memory_limit();
// "512 B", "3.2 MiB", "74.5 GiB": for messages.
std::string format_bytes(double bytes);

class NodeContext {
 public:
  struct Input {
    std::string port;
    std::vector<std::shared_ptr<const Artifact>> artifacts;
  };

  // `node_type` is the registry's (null in tests that run a node by hand: run_units then refuses).
  NodeContext(std::string id, std::string type, const Params& params, std::vector<Input> inputs, const RunEnvironment* env,
              const NodeType* node_type = nullptr);

  const std::string& id() const { return id_; }
  const std::string& type() const { return type_; }
  const Params& params() const { return params_; }

  // --- inputs
  bool has_input(const std::string& port) const;
  const std::vector<std::shared_ptr<const Artifact>>& raw_inputs(const std::string& port) const;
  // The single artifact on a port, as T (throws Error when absent or of another type).
  template <class T>
  std::shared_ptr<const T> input(const std::string& port) const {
    const auto& all = raw_inputs(port);
    if (all.size() != 1) throw Error(fmt_input_count(port, all.size()));
    return cast<T>(all.front(), port);
  }
  // Every artifact on a port (a port that takes several), as T.
  template <class T>
  std::vector<std::shared_ptr<const T>> inputs(const std::string& port) const {
    std::vector<std::shared_ptr<const T>> out;
    for (const auto& a : raw_inputs(port)) out.push_back(cast<T>(a, port));
    return out;
  }

  // --- outputs
  void publish(const std::string& port, std::shared_ptr<Artifact> artifact);
  // Headline numbers for run.json ("summary" of this node).
  Json& summary() { return summary_; }

  // --- environment
  // The run's output folder (created before the first node runs).
  const std::filesystem::path& out_dir() const;
  // Text for stdout; a node's output is written as one block when the node ends.
  void print(const std::string& text);
  // A line on stderr, prefixed with the node id.
  void log(const std::string& message) const;
  Progress progress(std::string what, std::size_t total) const;
  unsigned jobs() const;

  // --- memory
  // The run's memory budget in bytes (`caulk run --memory-limit`): what one node may plan to hold
  // at once. 0 means no limit (and is what a context without a run sees).
  std::size_t memory_limit() const;
  // Call before a large allocation with the node's estimate of its peak: when it exceeds the
  // budget, throws Error naming this node, `what` needs the memory, the estimate, the budget and
  // `advice` (what the user can do: reduce the input, lower a parameter, raise the budget).
  void check_memory(std::size_t bytes, const std::string& what, const std::string& advice) const;

  // Runs fn(i) for every unit (one per model, fold, shard...) concurrently, bounded by --jobs.
  // Units must be independent and write only their own slot. When units fail, every failure is
  // collected and one Error is thrown naming each failing unit with its message.
  void for_each_unit(const std::string& what, const std::vector<std::string>& unit_names, const std::function<void(std::size_t)>& fn) const;

  // Distributable units (caulk/units.hpp): runs the node type's run_unit on payloads[i] for each
  // unit i. The engine attaches the node's type, id, Params and Dataset inputs (the unit reads them
  // from its UnitContext). The run's dispatcher runs the units (this process's pool, or every rank
  // under mpirun); the results come back in index order. When units fail, every failure is
  // collected and one Error is thrown naming each failing unit (and, in a distributed run, the
  // rank that ran it).
  std::vector<Json> run_units(const std::string& what, const std::vector<std::string>& unit_names,
                              const std::vector<Json>& payloads) const {
    return run_units(what, unit_names, payloads, nullptr, nullptr);
  }
  // The same, lending `local` to the units that run in this process (UnitContext::local<L>()),
  // e.g. a finer progress bar; units on other ranks get null, so results must not depend on it.
  template <class L>
  std::vector<Json> run_units(const std::string& what, const std::vector<std::string>& unit_names, const std::vector<Json>& payloads,
                              L& local) const {
    return run_units(what, unit_names, payloads, &local, &typeid(L));
  }
  // True when run_units may run units in other processes (under mpirun). Nodes whose in-process
  // path is cheaper (no copies of in-memory data into descriptions, finer progress) keep it for a
  // single process and describe units only then; their results must not depend on the choice.
  bool distributed() const;

 private:
  // The engine takes what a node published and printed once it has run (framework/src/
  // node_context_access.hpp); a node never does.
  friend class NodeContextEngineAccess;
  std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>> take_outputs();
  std::string take_printed();

  template <class T>
  static std::shared_ptr<const T> cast(const std::shared_ptr<const Artifact>& a, const std::string& port) {
    auto t = std::dynamic_pointer_cast<const T>(a);
    if (!t) throw Error(fmt_type_mismatch(port, T::kType, a->type_name()));
    return t;
  }
  std::vector<Json> run_units(const std::string& what, const std::vector<std::string>& unit_names, const std::vector<Json>& payloads,
                              const void* local, const std::type_info* local_type) const;
  std::string fmt_input_count(const std::string& port, std::size_t n) const;
  static std::string fmt_type_mismatch(const std::string& port, std::string_view want, std::string_view got);

  std::string id_, type_;
  const Params& params_;
  std::vector<Input> inputs_;
  std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>> outputs_;
  Json summary_ = Json::object();
  std::string printed_;
  mutable std::mutex mutex_;
  const RunEnvironment* env_;
  const NodeType* node_type_;
};

}  // namespace caulk
