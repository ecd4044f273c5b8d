#include "caulk/executor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>

#include "caulk/graph.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/parallel.hpp"
#include "caulk/registry.hpp"
#include "run_environment.hpp"
#include "run_record.hpp"

namespace fs = std::filesystem;

namespace caulk {

Json RunReport::to_json() const {
  Json nodes_json = Json::object();
  for (const auto& n : nodes) {
    Json j = Json::object();
    j["type"] = n.type;
    j["status"] = n.status;
    j["seconds"] = n.seconds;
    if (!n.error.empty()) j["error"] = n.error;
    j["summary"] = n.summary;
    if (!n.tables.empty()) j["tables"] = n.tables;
    nodes_json[n.id] = std::move(j);
  }
  Json out = Json::object();
  out["pipeline"] = pipeline;
  out["status"] = ok ? "ok" : "failed";
  out["nodes"] = std::move(nodes_json);
  if (!ranks.is_null()) out["ranks"] = ranks;
  return out;
}

namespace {

enum class State { Pending, Running, Done };

struct Scheduler {
  const Pipeline& pipeline;
  RunEnvironment& env;
  RunReport& report;
  std::vector<State> state;
  std::vector<std::map<std::string, std::shared_ptr<const Artifact>>> outputs;
  std::mutex mutex;
  std::condition_variable changed;
  std::size_t running = 0;
  bool stop = false;
  std::vector<std::size_t> failed_nodes;

  Scheduler(const Pipeline& p, RunEnvironment& e, RunReport& r)
      : pipeline(p), env(e), report(r), state(p.nodes.size(), State::Pending), outputs(p.nodes.size()) {}

  bool runs_last(std::size_t i) const { return pipeline.nodes[i].type->spec.runs_last; }

  // The nodes that run last, one after another on this thread, whatever happened before.
  void run_last_nodes() {
    for (std::size_t i = 0; i < pipeline.nodes.size(); ++i) {
      if (!runs_last(i)) continue;
      {
        std::lock_guard lock(mutex);
        state[i] = State::Running;
        ++running;
      }
      execute(i);
    }
  }

  bool inputs_ready(std::size_t i) const {
    for (std::size_t d : pipeline.nodes[i].depends_on)
      if (state[d] != State::Done || report.nodes[d].status != "ok") return false;
    return true;
  }

  // Runs one node on a worker thread; never throws.
  void execute(std::size_t i) {
    const PipelineNode& node = pipeline.nodes[i];
    NodeOutcome& outcome = report.nodes[i];
    std::vector<NodeContext::Input> inputs;
    {
      std::lock_guard lock(mutex);
      for (const auto& in : node.inputs) {
        NodeContext::Input input{in.port, {}};
        for (const auto& s : in.sources) input.artifacts.push_back(outputs[s.node].at(s.port));
        inputs.push_back(std::move(input));
      }
    }
    env.log_line(fmt::format("[caulk] start {} ({})", node.config.id, node.config.type));
    auto started = std::chrono::steady_clock::now();
    NodeContext ctx(node.config.id, node.config.type, node.params, std::move(inputs), &env);
    std::string error;
    std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>> published;
    try {
      std::unique_ptr<Node> instance = node.type->make();
      instance->run(ctx);
      published = ctx.take_outputs();
      // The contract: every declared output, of its declared type.
      for (const auto& port : node.type->spec.outputs) {
        auto it = std::find_if(published.begin(), published.end(), [&](const auto& p) { return p.first == port.name; });
        if (it == published.end()) throw Error("the node did not publish its output '" + port.name + "'");
        if (port.type != kAnyArtifact && it->second->type_name() != port.type)
          throw Error("output '" + port.name + "' should be " + port.type + " but the node published " +
                      std::string(it->second->type_name()));
      }
      for (const auto& [port, artifact] : published)
        if (!node.type->spec.find_output(port)) throw Error("the node published an undeclared output '" + port + "'");
    } catch (const std::bad_alloc&) {
      error = "out of memory";
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "failed without a message";
    } catch (...) {
      error = "failed with an exception that is not a std::exception";
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::string printed = ctx.take_printed();
    if (!printed.empty()) env.write_out(printed);
    if (error.empty())
      env.log_line(fmt::format("[caulk] done  {} in {:.2f} s", node.config.id, seconds));
    else
      env.log_line(fmt::format("[caulk] FAILED {} after {:.2f} s: {}", node.config.id, seconds, error));

    std::lock_guard lock(mutex);
    outcome.seconds = seconds;
    outcome.summary = std::move(ctx.summary());
    if (error.empty()) {
      outcome.status = "ok";
      outcome.tables = tables_to_json(published);
      for (auto& [port, artifact] : published) outputs[i][port] = std::move(artifact);
    } else {
      outcome.status = "failed";
      outcome.error = error;
      stop = true;
      failed_nodes.push_back(i);
    }
    state[i] = State::Done;
    --running;
    changed.notify_all();
  }

  void run(ThreadPool& pool) {
    std::unique_lock lock(mutex);
    for (;;) {
      if (!stop) {
        // No more nodes in flight than workers: a queued node would still start after a
        // failure, and the run must stop starting nodes as soon as one fails.
        for (std::size_t i : pipeline.order) {
          // `stop` again: a node submitted in this loop may already have failed while the lock
          // was released.
          if (stop || running >= pool.width()) break;
          if (state[i] != State::Pending || !inputs_ready(i) || runs_last(i)) continue;
          state[i] = State::Running;
          ++running;
          lock.unlock();
          pool.submit([this, i] { execute(i); });
          lock.lock();
        }
      }
      if (running == 0) break;
      changed.wait(lock);
    }
    // Whatever did not run is skipped, with the reason.
    PipelineGraph graph(pipeline);
    std::map<std::size_t, std::size_t> blocked_by;
    for (std::size_t f : failed_nodes)
      for (std::size_t d : graph.descendants(f)) blocked_by.emplace(d, f);
    for (std::size_t i = 0; i < pipeline.nodes.size(); ++i) {
      if (state[i] != State::Pending || runs_last(i)) continue;
      NodeOutcome& o = report.nodes[i];
      o.status = "skipped";
      auto it = blocked_by.find(i);
      if (it != blocked_by.end())
        o.error = "not run: it depends on node '" + pipeline.nodes[it->second].config.id + "', which failed";
      else if (!failed_nodes.empty())
        o.error = "not run: the run stopped after node '" + pipeline.nodes[failed_nodes.front()].config.id + "' failed";
    }
  }
};

}  // namespace

RunReport run_pipeline(const Pipeline& pipeline, const RunOptions& options) {
  RunEnvironment env;
  env.out_dir = options.out_dir;
  env.jobs = options.jobs == 0 ? 1 : options.jobs;
  env.out = options.out ? options.out : &std::cout;
  env.err = options.err ? options.err : &std::cerr;
  env.progress_bars = options.progress_bars;
  env.memory_limit = options.memory_limit;
  LocalUnitDispatcher local_units;
  env.units = options.units ? options.units : &local_units;

  std::error_code ec;
  fs::create_directories(env.out_dir, ec);
  if (ec || !fs::is_directory(env.out_dir))
    throw Error("cannot create the output folder " + env.out_dir.string() + (ec ? ": " + ec.message() : ""));

  write_pipeline_graph(pipeline, env.out_dir);
  RunReport report;
  report.pipeline = pipeline.config.name;
  for (const auto& n : pipeline.nodes) {
    NodeOutcome o;
    o.id = n.config.id;
    o.type = n.config.type;
    report.nodes.push_back(std::move(o));
  }
  {
    auto pool = ThreadPool::with_workers(env.jobs);
    ScopedPool scoped(pool.get());
    Scheduler scheduler(pipeline, env, report);
    scheduler.run(*pool);
    // Nodes that report on the run read run.json as it stands, their own entries "running".
    bool any_last = false;
    for (std::size_t i = 0; i < report.nodes.size(); ++i)
      if (scheduler.runs_last(i)) {
        report.nodes[i].status = "running";
        any_last = true;
      }
    if (any_last) {
      report.ok = std::all_of(report.nodes.begin(), report.nodes.end(), [](const auto& n) { return n.status != "failed" && n.status != "skipped"; });
      io::write_file_atomic(env.out_dir / "run.json", report.to_json().dump(2) + "\n");
      scheduler.run_last_nodes();
    }
    // Artifacts (some made by plugins) are released here, while every library is still loaded.
  }
  report.ranks = env.units->ranks();
  report.ok = true;
  for (const auto& n : report.nodes)
    if (n.status != "ok") report.ok = false;
  io::write_file_atomic(env.out_dir / "run.json", report.to_json().dump(2) + "\n");
  return report;
}

}  // namespace caulk
