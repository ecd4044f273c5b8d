#include "caulk/executor.hpp"

#include <fmt/format.h>

#include <iostream>
#include <mutex>

#include "caulk/cancel.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/json_text.hpp"
#include "caulk/node_cache.hpp"
#include "caulk/parallel.hpp"
#include "caulk/run_folder.hpp"
#include "observer_set.hpp"
#include "run_environment.hpp"
#include "run_record.hpp"
#include "scheduler.hpp"

namespace fs = std::filesystem;

namespace caulk {

namespace {

void write_run_record(const Json& record, const fs::path& out_dir) {
  io::write_file_atomic(out_dir / "run.json", json_text(record, 2) + "\n");
}

void write_run_record(const RunReport& report, const fs::path& out_dir) { write_run_record(report.to_json(), out_dir); }

}  // namespace

RunReport run_pipeline(const Pipeline& pipeline, const RunOptions& options) { return Executor(options.jobs).run(pipeline, options); }

Executor::Executor(unsigned jobs) : pool_(ThreadPool::with_workers(jobs == 0 ? 1 : jobs)) {}

Executor::~Executor() = default;

unsigned Executor::jobs() const { return pool_->width(); }

RunReport Executor::run(const Pipeline& pipeline, const RunOptions& options) {
  std::lock_guard one_run_at_a_time(running_);
  RunEnvironment env;
  env.out_dir = options.out_dir;
  env.jobs = jobs();
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
  // One run per folder at a time, before anything in it is touched.
  RunFolderLock lock(env.out_dir);
  // Nodes write at most a few levels down (OUT/node/name and its temporary beside it); the cache's
  // entries are staged folders, committed whole.
  for (const std::string& line : io::recover_stale_temporaries(env.out_dir, 3, {env.out_dir / kRunStateFolder / "cache"}))
    env.log_line("[caulk] " + line);

  // File hashes of earlier runs into this folder, so unchanged files are not read again.
  const fs::path hash_file_path = env.out_dir / kRunStateFolder / "hashes.json";
  FileHashCache hashes;
  try {
    hashes.load_json_text(io::read_text_file(hash_file_path));
  } catch (const std::exception&) {
  }
  RunFolderLedger ledger(env.out_dir);
  const std::string pipeline_id =
      pipeline.config.name + "\n" + (options.invocation ? options.invocation->pipeline_file.string() : pipeline.config.file.string());
  RunReport report;
  report.folder_notes = ledger.prepare(pipeline_id);
  for (const auto& line : report.folder_notes) env.log_line("[caulk] " + line);

  write_record_file(env.out_dir / "pipeline.dot", pipeline_to_dot(pipeline));  // not rewritten when unchanged
  // The pipeline as run, beside its record: `caulk rerun OUT` runs it again.
  if (options.invocation) write_record_file(env.out_dir / "pipeline.toml", options.invocation->pipeline_text);
  ProvenanceRecorder provenance(pipeline, options.invocation, env.out_dir, env.jobs, hashes);
  NodeCache cache(pipeline, options.invocation, env.out_dir, hashes, options.use_cache);
  report.pipeline = pipeline.config.name;
  for (const auto& n : pipeline.nodes) {
    NodeOutcome o;
    o.id = n.config.id;
    o.type = n.config.type;
    report.nodes.push_back(std::move(o));
  }
  report.provenance = provenance.to_json();
  // Replaces the record of an earlier run at once: if this one is killed, run.json says "running".
  write_run_record(report, env.out_dir);
  ObserverSet observers(pipeline, env);
  observers.run_started(report);
  {
    ScopedPool scoped(pool_.get());
    detail::SchedulerParts parts;
    parts.provenance = &provenance;
    parts.ledger = &ledger;
    parts.hashes = &hashes;
    parts.cache = &cache;
    parts.observers = observers.empty() ? nullptr : &observers;
    const bool cut_short = detail::run_nodes(pipeline, env, report, parts, *pool_);
    report.finished = true;
    // A stop request that came once every node had ended cut nothing short: the run is complete.
    if (cut_short) report.interrupted_by = cancel_signal();
    // Artifacts (some made by plugins) are released here, while every library is still loaded.
  }
  report.ranks = env.units->ranks();
  for (const auto& n : report.nodes)
    if (n.status == NodeStatus::Interrupted) report.interrupted_by = cancel_signal();
  report.ok = true;
  for (const auto& n : report.nodes)
    if (n.status != NodeStatus::Ok) report.ok = false;
  report.outputs_written = provenance.written().size();
  provenance.finish();
  report.provenance = provenance.to_json();
  Json record;  // what run.json holds, for the observers
  try {
    record = report.to_json();
    write_run_record(record, env.out_dir);
    report.record_error.clear();
  } catch (const std::exception& e) {
    // A full disk must not hide what happened to the nodes: the caller reports both.
    report.record_error = e.what();
  }
  // Observers see the final record, in memory and in run.json; not after a stop request (the user
  // asked to stop) nor when run.json could not be written (what they would read is stale).
  if (!observers.empty() && !report.interrupted_by && report.record_error.empty()) {
    io::AccessLog written;
    observers.run_finished(report, written, &record);
    try {
      ledger.add_all(detail::ledger_entries(written, hashes));  // their files are the run's outputs
    } catch (const std::exception& e) {
      env.log_line(std::string("[caulk] note: the observers' files could not be recorded: ") + e.what());
    }
    report.outputs_written += written.writes().size();
    report.observer_errors = observers.errors();
    if (!report.observer_errors.empty()) {
      report.ok = false;
      try {
        write_run_record(report, env.out_dir);
      } catch (const std::exception& e) {
        report.record_error = e.what();
      }
    }
  }
  // A run that succeeded leaves only its own outputs (and its inputs); a failed or interrupted one
  // leaves the previous run's as they were.
  if (report.ok && !report.interrupted_by) {
    cache.prune();
    try {
      for (const auto& line : ledger.clean_up(provenance.inputs(), hashes)) {
        env.log_line("[caulk] " + line);
        report.folder_notes.push_back(line);
      }
    } catch (const std::exception& e) {
      env.log_line(std::string("[caulk] note: the previous run's outputs could not be cleaned up: ") + e.what());
    }
  } else {
    try {
      ledger.save();  // flushed at the end, as clean_up does: the nodes' saves were not
    } catch (const std::exception& e) {
      env.log_line(std::string("[caulk] note: the record of this run's outputs could not be saved: ") + e.what());
    }
  }
  // What this run wrote, hashed again now that its modification times have settled, so that the
  // next run trusts the hashes instead of reading the files (caulk/file_hash.hpp); the files are
  // likely still in memory. Bounded: a run that wrote more leaves the rest to the next one.
  hashes.confirm_settled(std::uintmax_t{256} << 20);
  try {
    // Unflushed: a damaged one is forgotten and the files are hashed again (FileHashCache::load_json_text).
    io::write_file_atomic(hash_file_path, hashes.to_json_text(), io::OnExisting::Replace, io::Durability::Recomputable);
  } catch (const std::exception&) {
    // Only a speed-up for the next run.
  }
  return report;
}

}  // namespace caulk
