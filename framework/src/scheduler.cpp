#include "scheduler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

#include "caulk/cancel.hpp"
#include "caulk/graph.hpp"
#include "caulk/node_cache.hpp"
#include "caulk/parallel.hpp"
#include "caulk/registry.hpp"
#include "node_context_access.hpp"
#include "observer_set.hpp"
#include "run_record.hpp"

namespace fs = std::filesystem;

namespace caulk::detail {

std::vector<std::pair<fs::path, RunFolderLedger::Entry>> ledger_entries(const io::AccessLog& files, FileHashCache& hashes,
                                                                        const KnownFiles* checked) {
  std::vector<std::pair<fs::path, RunFolderLedger::Entry>> entries;
  for (const auto& [path, folder] : files.writes()) {
    RunFolderLedger::Entry e;
    e.folder = folder;
    if (const KnownFile* k = find_known(checked, path)) {
      e.size = k->stat.size;  // 0 for a folder
      e.hash = k->hash;
      entries.emplace_back(path, e);
      continue;
    }
    if (auto st = stat_file(path); st && !folder) e.size = st->size;
    if (auto h = output_hash(path, hashes)) {
      e.hash = *h;
      entries.emplace_back(path, e);
    }
  }
  return entries;
}

namespace {

enum class State { Pending, Running, Done };

struct Scheduler {
  const Pipeline& pipeline;
  RunEnvironment& env;
  RunReport& report;
  ProvenanceRecorder* provenance = nullptr;
  RunFolderLedger* ledger = nullptr;
  FileHashCache* hashes = nullptr;
  NodeCache* cache = nullptr;
  ObserverSet* observers = nullptr;  // told of each node's start and end, under `mutex`
  std::vector<State> state;
  std::vector<std::map<std::string, std::shared_ptr<const Artifact>>> outputs;
  std::mutex mutex;
  std::condition_variable changed;
  std::size_t running = 0;
  bool stop = false;
  bool cut_short = false;  // a stop request interrupted a node or kept one from starting
  std::vector<std::size_t> failed_nodes;

  Scheduler(const Pipeline& p, RunEnvironment& e, RunReport& r)
      : pipeline(p), env(e), report(r), state(p.nodes.size(), State::Pending), outputs(p.nodes.size()) {}

  bool inputs_ready(std::size_t i) const {
    for (std::size_t d : pipeline.nodes[i].depends_on)
      if (state[d] != State::Done || report.nodes[d].status != NodeStatus::Ok) return false;
    return true;
  }

  // The node's provenance, and its outputs into the folder's ledger; never throws (a record that
  // cannot be made must not fail a node that succeeded).
  void record_files(std::size_t i, const io::AccessLog& files, const std::vector<std::string>& handed,
                    const KnownFiles* checked = nullptr) {
    try {
      if (provenance) provenance->node_ran(i, files, handed, checked);
      if (ledger && hashes) ledger->add_all(ledger_entries(files, *hashes, checked));  // saved once per node
    } catch (const std::exception& e) {
      env.log_line(fmt::format("[caulk] note: the files of node '{}' could not be recorded: {}", pipeline.nodes[i].config.id, e.what()));
    }
  }

  // Which nodes this run reuses, decided before any node starts (caulk/node_cache.hpp): those whose
  // entry passes every check and all of whose dependencies are reused. Entries are checked in
  // parallel; a reused node's arrays are read back only when a node that runs reads them, and one
  // that cannot be read back runs again (and so does what depends on it).
  std::vector<std::optional<CachedResult>> reusable;
  std::vector<std::string> why_not_reused;  // a node's entry that did not pass, and why

  void plan_reuse(ThreadPool& pool) {
    const std::size_t n = pipeline.nodes.size();
    reusable.clear();
    reusable.resize(n);
    why_not_reused.assign(n, "");
    if (!cache) return;
    pool.parallel_for(n, [&](std::size_t i) {
      if (cache->keyed(i)) reusable[i] = cache->lookup(i, &why_not_reused[i]);
    });
    std::vector<std::vector<std::size_t>> consumers(n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t d : pipeline.nodes[i].depends_on) consumers[d].push_back(i);
    for (;;) {
      for (std::size_t i : pipeline.order)  // dependencies first
        for (std::size_t d : pipeline.nodes[i].depends_on)
          if (!reusable[d]) reusable[i].reset();
      std::vector<std::size_t> read_back;
      for (std::size_t i = 0; i < n; ++i)
        if (reusable[i] && !reusable[i]->not_read_back.empty() &&
            std::any_of(consumers[i].begin(), consumers[i].end(), [&](std::size_t c) { return !reusable[c]; }))
          read_back.push_back(i);
      std::vector<std::string> failed(read_back.size());
      pool.parallel_for(read_back.size(), [&](std::size_t k) {
        try {
          cache->read_back(*reusable[read_back[k]]);
        } catch (const std::exception& e) {
          failed[k] = std::string("its stored outputs cannot be read back: ") + e.what();
        }
      });
      bool again = false;
      for (std::size_t k = 0; k < read_back.size(); ++k)
        if (!failed[k].empty()) {
          reusable[read_back[k]].reset();
          why_not_reused[read_back[k]] = failed[k];
          again = true;  // what depends on it runs too, and may need other arrays
        }
      if (!again) break;
    }
  }

  // Ends node `i` with what it published when it last ran.
  void reuse(std::size_t i, CachedResult hit) {
    record_files(i, *hit.files, hit.handed, &hit.checked);
    if (!hit.printed.empty()) env.write_out(hit.printed);
    env.log_line(fmt::format("[caulk] reused {} ({})", pipeline.nodes[i].config.id, pipeline.nodes[i].config.type));
    std::lock_guard lock(mutex);
    NodeOutcome& outcome = report.nodes[i];
    outcome.status = NodeStatus::Ok;
    outcome.cached = true;
    outcome.seconds = hit.seconds;  // checking its entry
    outcome.summary = std::move(hit.summary);
    outcome.tables = tables_to_json(hit.published);
    outcome.figures = figures_to_json(hit.published);
    for (auto& [port, artifact] : hit.published) outputs[i][port] = std::move(artifact);
    state[i] = State::Done;
    if (observers) observers->node_finished(report, i);
    --running;
    changed.notify_all();
  }

  // Runs one node on a worker thread (or, on the scheduler's thread, reuses its cached result);
  // never throws.
  void execute(std::size_t i) {
    const PipelineNode& node = pipeline.nodes[i];
    NodeOutcome& outcome = report.nodes[i];
    std::vector<NodeContext::Input> inputs;
    {
      std::lock_guard lock(mutex);
      outcome.status = NodeStatus::Running;
      if (observers) observers->node_started(report, i);
    }
    if (i < reusable.size() && reusable[i]) {
      CachedResult hit = std::move(*reusable[i]);
      reusable[i].reset();
      return reuse(i, std::move(hit));
    }
    {
      std::lock_guard lock(mutex);
      for (const auto& in : node.inputs) {
        NodeContext::Input input{in.port, {}};
        for (const auto& s : in.sources) {
          // An optional output its node did not publish (it feeds optional inputs only) is left out.
          const auto found = outputs[s.node].find(s.port);
          if (found != outputs[s.node].end()) input.artifacts.push_back(found->second);
        }
        inputs.push_back(std::move(input));
      }
    }
    std::vector<std::string> handed;  // files its input artifacts name, for its provenance
    for (const auto& in : inputs)
      for (const auto& a : in.artifacts)
        for (auto& f : files_named_by(*a)) handed.push_back(std::move(f));
    // An entry that did not pass is said when it would have been used: every dependency reused.
    if (i < why_not_reused.size() && !why_not_reused[i].empty() &&
        std::all_of(node.depends_on.begin(), node.depends_on.end(), [&](std::size_t d) { return report.nodes[d].cached; }))
      env.log_line(fmt::format("[caulk] {} runs again: {}", node.config.id, why_not_reused[i]));
    env.log_line(fmt::format("[caulk] start {} ({})", node.config.id, node.config.type));
    const auto started = std::chrono::steady_clock::now();
    NodeContext ctx(node.config.id, node.config.type, node.params, std::move(inputs), &env, node.type);
    std::string error;
    bool interrupted = false;
    std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>> published;
    io::AccessLog files;  // what the node reads and writes, for its provenance
    try {
      std::unique_ptr<Node> instance = node.type->make();
      io::ScopedAccessLog scope(&files);
      instance->run(ctx);
      published = NodeContextEngineAccess::take_outputs(ctx);
      // The contract: every declared output, of its declared type.
      for (const auto& port : node.type->spec.outputs) {
        auto it = std::find_if(published.begin(), published.end(), [&](const auto& p) { return p.first == port.name; });
        if (it == published.end()) {
          if (port.optional) continue;
          throw Error("the node did not publish its output '" + port.name + "'");
        }
        if (port.type != kAnyArtifact && it->second->type_name() != port.type)
          throw Error("output '" + port.name + "' should be " + port.type + " but the node published " +
                      std::string(it->second->type_name()));
      }
      for (const auto& [port, artifact] : published)
        if (!node.type->spec.find_output(port)) throw Error("the node published an undeclared output '" + port + "'");
    } catch (const Interrupted& e) {
      error = e.what();
      interrupted = true;
    } catch (const std::bad_alloc&) {
      error = "out of memory";
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "failed without a message";
    } catch (...) {
      error = "failed with an exception that is not a std::exception";
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::string printed = NodeContextEngineAccess::take_printed(ctx);
    if (!printed.empty()) env.write_out(printed);
    if (error.empty())
      env.log_line(fmt::format("[caulk] done  {} in {:.2f} s", node.config.id, seconds));
    else if (interrupted)
      env.log_line(fmt::format("[caulk] stopped {} after {:.2f} s: {}", node.config.id, seconds, error));
    else
      // The first line only: the causes are said once, in the run's summary (caulk/failures.hpp).
      env.log_line(fmt::format("[caulk] FAILED {} after {:.2f} s: {}", node.config.id, seconds, error.substr(0, error.find('\n'))));
    // What its cache entry is made of, kept for after the node is marked done.
    const bool keep = cache && error.empty();
    const Json summary = keep ? ctx.summary() : Json();
    const auto stored = keep ? published : decltype(published){};

    {
      std::lock_guard lock(mutex);
      outcome.seconds = seconds;
      outcome.summary = std::move(ctx.summary());
      if (error.empty()) {
        outcome.status = NodeStatus::Ok;
        outcome.tables = tables_to_json(published);
        outcome.figures = figures_to_json(published);
        for (auto& [port, artifact] : published) outputs[i][port] = std::move(artifact);
      } else if (interrupted) {
        outcome.status = NodeStatus::Interrupted;
        outcome.error = error;
        stop = true;
        cut_short = true;
      } else {
        outcome.status = NodeStatus::Failed;
        outcome.error = error;
        stop = true;
        failed_nodes.push_back(i);
      }
      state[i] = State::Done;
      if (observers) observers->node_finished(report, i);
    }
    changed.notify_all();
    // Its records and cache entry (fsyncs) while the nodes that depend on it may already run. Its
    // slot stays taken until they are made, so no more nodes are in flight than workers, and the
    // run ends only once every record is made. (A kill before its ledger record leaves its files
    // unrecorded: the next run leaves them alone, caulk/run_folder.hpp.)
    record_files(i, files, handed);
    if (keep)
      if (const std::string why = cache->store(i, stored, summary, printed, files, handed); !why.empty())
        env.log_line(fmt::format("[caulk] note: the result of {} is not kept for the next run: {}", node.config.id, why));
    {
      std::lock_guard lock(mutex);
      --running;
    }
    changed.notify_all();
  }

  void run(ThreadPool& pool) {
    std::unique_lock lock(mutex);
    for (;;) {
      if (cancel_requested()) stop = true;  // a SIGINT/SIGTERM: start nothing more
      bool submitted = false;
      if (!stop) {
        // No more nodes in flight than workers: a queued node would still start after a
        // failure, and the run must stop starting nodes as soon as one fails.
        for (std::size_t i : pipeline.order) {
          // `stop` again: a node submitted in this loop may already have failed while the lock
          // was released.
          if (stop) break;
          if (state[i] != State::Pending || !inputs_ready(i)) continue;
          // A reused node takes no worker: it ends in microseconds, here, where a worker would
          // cost two thread hand-offs (one to start it, one to say it ended).
          const bool reused = i < reusable.size() && reusable[i];
          if (!reused && running >= pool.width()) continue;
          state[i] = State::Running;
          ++running;
          submitted = true;
          lock.unlock();
          if (reused)
            execute(i);
          else
            pool.submit([this, i] { execute(i); });
          lock.lock();
        }
      }
      // Nodes that ended while the lock was released (a reused node ends in microseconds) may
      // have readied nodes earlier in the order: look again before concluding or waiting.
      if (submitted) continue;
      if (running == 0) break;
      changed.wait(lock);
    }
    // Whatever did not run is skipped, with the reason.
    PipelineGraph graph(pipeline);
    std::map<std::size_t, std::size_t> blocked_by;
    for (std::size_t f : failed_nodes)
      for (std::size_t d : graph.descendants(f)) blocked_by.emplace(d, f);
    for (std::size_t i = 0; i < pipeline.nodes.size(); ++i) {
      if (state[i] != State::Pending) continue;
      NodeOutcome& o = report.nodes[i];
      o.status = NodeStatus::Skipped;
      auto it = blocked_by.find(i);
      if (it != blocked_by.end())
        o.error = "not run: it depends on node '" + pipeline.nodes[it->second].config.id + "', which failed";
      else if (cancel_requested()) {
        o.error = "not run: the run was interrupted by " + signal_name(cancel_signal());
        cut_short = true;
      } else if (!failed_nodes.empty())
        o.error = "not run: the run stopped after node '" + pipeline.nodes[failed_nodes.front()].config.id + "' failed";
    }
  }
};

}  // namespace

bool run_nodes(const Pipeline& pipeline, RunEnvironment& env, RunReport& report, const SchedulerParts& parts, ThreadPool& pool) {
  Scheduler scheduler(pipeline, env, report);
  scheduler.provenance = parts.provenance;
  scheduler.ledger = parts.ledger;
  scheduler.hashes = parts.hashes;
  scheduler.cache = parts.cache;
  scheduler.observers = parts.observers;
  scheduler.plan_reuse(pool);
  scheduler.run(pool);
  // The workers outlive the scheduler: each has left its node's task before the scheduler goes.
  pool.wait_idle();
  return scheduler.cut_short;
}

}  // namespace caulk::detail
