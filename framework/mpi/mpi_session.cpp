// libcaulk_mpi: DistributedSession over Open MPI, through Boost.MPI. Loaded by the CLI only under
// mpirun (caulk/distributed.hpp).
//
// Rank 0 keeps one queue of units (every running node's, in the order the nodes asked). Its own
// --jobs threads take units from the front, and a communication thread, the only thread that
// calls MPI on rank 0, deals the next unit to any worker slot that is free: a worker announces
// --jobs slots and each result frees one, so a slow model never holds up the rest (no static
// split). What a batch's units share (node type, id, params, datasets: unit_batch_header) goes
// to a worker once, with the first unit of that batch it takes; its later units carry only their
// payload, and the worker forgets the batch when rank 0 says it is done. Messages are CBOR (exact doubles) over point-to-point sends; nobody busy-waits (an idle
// loop sleeps between probes), so MPI takes no core from the computation.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/mpi.hpp>
#include <fmt/format.h>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "caulk/distributed.hpp"
#include "caulk/error.hpp"
#include "caulk/io/access_log.hpp"
#include "caulk/parallel.hpp"
#include "caulk/registry.hpp"
#include "end_reporter.hpp"

namespace caulk {
namespace {

namespace bmpi = boost::mpi;

enum Tag : int { kReady = 1, kUnit = 2, kResult = 3, kStop = 4, kHeartbeat = 5, kBatchDone = 6 };
constexpr auto kIdlePoll = std::chrono::microseconds(500);
constexpr auto kHeartbeatEvery = std::chrono::seconds(1);

// How long rank 0 waits for a sign of life from a worker (busy or idle: workers send a heartbeat
// every second) before it declares the worker lost (a frozen or unreachable process that mpirun
// did not end). CAULK_MPI_WORKER_TIMEOUT seconds, default 20.
std::chrono::milliseconds worker_timeout() {
  if (const char* v = std::getenv("CAULK_MPI_WORKER_TIMEOUT")) {
    const double s = std::atof(v);
    if (s > 0) return std::chrono::milliseconds(static_cast<long long>(s * 1000));
  }
  return std::chrono::seconds(20);
}

using Bytes = std::vector<std::uint8_t>;

// Sends without blocking: both sides keep receiving while their messages go out, so two large
// messages crossing (a unit to a worker, a result from it) cannot wait on each other.
class Outgoing {
 public:
  explicit Outgoing(const bmpi::communicator& world) : world_(world) {}
  void send(int dest, int tag, Bytes bytes) {
    auto buffer = std::make_shared<Bytes>(std::move(bytes));
    pending_.push_back({world_.isend(dest, tag, buffer->data(), static_cast<int>(buffer->size())), buffer, dest});
  }
  // Drops the sends that completed.
  void progress() {
    for (auto it = pending_.begin(); it != pending_.end();) it = it->request.test() ? pending_.erase(it) : std::next(it);
  }
  // Waits for every send except those to the ranks in `skip` (lost: they would never complete).
  void wait_all(const std::vector<bool>& skip = {}) {
    for (auto& p : pending_)
      if (p.dest >= static_cast<int>(skip.size()) || !skip[p.dest]) p.request.wait();
    pending_.clear();
  }

 private:
  struct Pending {
    bmpi::request request;
    std::shared_ptr<Bytes> buffer;
    int dest;
  };
  const bmpi::communicator& world_;
  std::list<Pending> pending_;
};

// The next message from `source` (or anyone), if one has arrived.
std::optional<std::pair<bmpi::status, Bytes>> try_receive(const bmpi::communicator& world, int source) {
  boost::optional<bmpi::status> probe = world.iprobe(source, bmpi::any_tag);
  if (!probe) return std::nullopt;
  const int count = probe->count<std::uint8_t>().value_or(0);
  Bytes bytes(static_cast<std::size_t>(count));
  bmpi::status got = world.recv(probe->source(), probe->tag(), bytes.data(), count);
  return std::make_pair(got, std::move(bytes));
}

// ------------------------------------------------------------------ rank 0

class Coordinator : public UnitDispatcher {
 public:
  Coordinator(bmpi::communicator& world) : world_(world), free_slots_(world.size(), 0), units_done_(world.size(), 0), dealt_(world.size()) {
    comm_ = std::thread([this] { communicate(); });
  }
  ~Coordinator() override { finish(); }

  // Stops the workers once every dealt unit came back, and joins the communication thread.
  void finish() {
    if (!comm_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      ending_ = true;
    }
    comm_.join();
  }

  bool distributed() const override { return true; }
  // True once a worker was declared lost (the session must then abort, not wait for it).
  bool lost_a_worker() const { return any_lost_.load(); }

  Json ranks() const override {
    std::lock_guard lock(mutex_);
    Json j = Json::object();
    j["processes"] = world_.size();
    j["units"] = units_done_;
    j["bytes_to_workers"] = bytes_out_.load();
    j["bytes_from_workers"] = bytes_in_.load();
    return j;
  }

  std::vector<UnitOutcome> run(const UnitBatch& batch) override {
    const std::size_t n = batch.payloads->size();
    std::vector<UnitOutcome> outcomes(n);
    if (n == 0) return outcomes;
    Batch state{&batch, &outcomes, {}, n, {}, std::nullopt};
    for (std::size_t i = 0; i < n; ++i) state.queue.push_back(i);
    std::uint64_t id;
    {
      std::lock_guard lock(mutex_);
      id = next_id_++;
      batches_[id] = &state;
      order_.push_back(id);
    }
    // Rank 0 computes too: its --jobs threads take units from the front, as the workers do.
    parallel_for(parallel_width(), [&](std::size_t) {
      for (;;) {
        std::size_t index;
        {
          std::lock_guard lock(mutex_);
          if (state.queue.empty()) return;
          index = state.queue.front();
          state.queue.pop_front();
        }
        complete(state, index, run_unit_caught(batch, index, 0));
      }
    });
    std::unique_lock lock(mutex_);
    state.done.wait(lock, [&] { return state.remaining == 0; });
    batches_.erase(id);
    finished_.push_back(id);
    return outcomes;
  }

 private:
  struct Batch {
    const UnitBatch* batch;
    std::vector<UnitOutcome>* outcomes;
    std::deque<std::size_t> queue;  // units not yet taken
    std::size_t remaining;          // units not yet finished
    std::condition_variable done;
    std::optional<Bytes> header;  // unit_batch_header in CBOR, made when a worker first needs it
  };

  void complete(Batch& state, std::size_t index, UnitOutcome outcome) {
    const int rank = outcome.rank;
    {
      std::lock_guard lock(mutex_);
      (*state.outcomes)[index] = std::move(outcome);
      ++units_done_[rank];
    }
    if (state.batch->on_unit_done) state.batch->on_unit_done();
    std::lock_guard lock(mutex_);
    if (--state.remaining == 0) state.done.notify_all();
  }

  // The next unit of the oldest batch that has one; false when none is queued. Holds mutex_.
  bool take(std::uint64_t& id, std::size_t& index) {
    while (!order_.empty()) {
      auto it = batches_.find(order_.front());
      if (it == batches_.end() || it->second->queue.empty()) {
        order_.pop_front();
        continue;
      }
      id = it->first;
      index = it->second->queue.front();
      it->second->queue.pop_front();
      return true;
    }
    return false;
  }

  void publish_ranks_with_units() {
    for (std::size_t r = 0; r < dealt_.size(); ++r) mpi_end::set_rank_has_units(static_cast<int>(r), !dealt_[r].empty());
  }

  void communicate() {
    Outgoing out(world_);
    for (;;) {
      bool active = false;
      out.progress();
      while (auto message = try_receive(world_, bmpi::any_source)) {
        active = true;
        const int source = message->first.source();
        bytes_in_ += message->second.size();
        last_heard_[source] = std::chrono::steady_clock::now();
        if (lost_[source]) continue;  // declared lost: its late results are not trusted
        const Json j = Json::from_cbor(message->second);
        if (message->first.tag() == kReady) {
          free_slots_[source] = j.at("slots").get<int>();
          ready_[source] = true;
          continue;
        }
        if (message->first.tag() != kResult) continue;
        ++free_slots_[source];
        const auto id = j.at("b").get<std::uint64_t>();
        const auto index = j.at("i").get<std::size_t>();
        auto& mine = dealt_[source];
        auto it = std::find(mine.begin(), mine.end(), std::make_pair(id, index));
        if (it == mine.end()) continue;
        mine.erase(it);
        publish_ranks_with_units();
        UnitOutcome outcome;
        outcome.rank = source;
        if (j.contains("e"))
          outcome.error = j.at("e").get<std::string>();
        else
          outcome.result = j.at("r");
        if (j.contains("w"))
          for (const auto& w : j.at("w")) outcome.written.emplace_back(w.at(0).get<std::string>(), w.at(1).get<bool>());
        if (j.contains("rd"))
          for (const auto& r : j.at("rd")) outcome.read.push_back(r.get<std::string>());
        outcome.files_incomplete = j.value("fi", false);
        Batch* state;
        {
          std::lock_guard lock(mutex_);
          state = batches_.at(id);
        }
        complete(*state, index, std::move(outcome));
      }
      declare_silent_workers_lost();
      // Deal to every free slot while units are queued.
      for (int w = 1; w < world_.size(); ++w) {
        while (free_slots_[w] > 0 && !lost_[w]) {
          std::uint64_t id;
          std::size_t index;
          Batch* state;
          {
            std::lock_guard lock(mutex_);
            if (!take(id, index)) break;
            state = batches_.at(id);  // alive until its unit `index` completes
          }
          Json message = Json::object();
          message["b"] = id;
          message["i"] = index;
          auto& sent = header_sent_[id];
          if (sent.empty()) sent.assign(world_.size(), false);
          if (!sent[w]) {
            if (!state->header) state->header = Json::to_cbor(unit_batch_header(*state->batch));
            message["h"] = Json::binary(*state->header);
            sent[w] = true;
          }
          message["p"] = (*state->batch->payloads)[index];
          Bytes bytes = Json::to_cbor(message);
          bytes_out_ += bytes.size();
          out.send(w, kUnit, std::move(bytes));
          --free_slots_[w];
          dealt_[w].emplace_back(id, index);
          publish_ranks_with_units();
          active = true;
        }
      }
      forget_finished_batches(out);
      bool idle_workers = true;
      for (const auto& d : dealt_) idle_workers = idle_workers && d.empty();
      {
        std::lock_guard lock(mutex_);
        if (ending_ && idle_workers) break;
      }
      if (!active) std::this_thread::sleep_for(kIdlePoll);
    }
    for (int w = 1; w < world_.size(); ++w)
      if (!lost_[w]) out.send(w, kStop, Json::to_cbor(Json::object()));
    out.wait_all(lost_);
  }

  // Tells each worker that received a finished batch's header to drop it. Communication thread only.
  void forget_finished_batches(Outgoing& out) {
    std::vector<std::uint64_t> finished;
    {
      std::lock_guard lock(mutex_);
      finished.swap(finished_);
    }
    for (std::uint64_t id : finished) {
      auto it = header_sent_.find(id);
      if (it == header_sent_.end()) continue;
      for (int w = 1; w < world_.size(); ++w)
        if (it->second[w] && !lost_[w]) {
          Bytes bytes = Json::to_cbor(Json{{"b", id}});
          bytes_out_ += bytes.size();
          out.send(w, kBatchDone, std::move(bytes));
        }
      header_sent_.erase(it);
    }
  }

  // A worker that gave no sign of life (results or heartbeats) for the timeout is lost: its units
  // fail, naming it, and it gets no more; one that held none is reported. Workers are judged once
  // they said they were ready (loading the plugins may take a while). Communication thread only.
  void declare_silent_workers_lost() {
    const auto now = std::chrono::steady_clock::now();
    for (int w = 1; w < world_.size(); ++w) {
      if (lost_[w] || !ready_[w] || now - last_heard_[w] < timeout_) continue;
      lost_[w] = true;
      any_lost_ = true;
      free_slots_[w] = 0;
      const double seconds = std::chrono::duration<double>(timeout_).count();
      if (dealt_[w].empty())
        std::fprintf(stderr, "caulk: rank %d was lost while it held no unit: it gave no sign of life for %.2f s; it gets no more units\n",
                     w, seconds);
      for (const auto& [id, index] : dealt_[w]) {
        UnitOutcome outcome;
        outcome.rank = w;
        outcome.error = "rank " + std::to_string(w) + " was lost: it gave no sign of life for " + std::to_string(seconds).substr(0, 4) +
                        " s while running this unit (frozen, unreachable or dead)";
        Batch* state;
        {
          std::lock_guard lock(mutex_);
          state = batches_.at(id);
        }
        complete(*state, index, std::move(outcome));
      }
      dealt_[w].clear();
      publish_ranks_with_units();
    }
  }

  bmpi::communicator& world_;
  mutable std::mutex mutex_;
  std::map<std::uint64_t, Batch*> batches_;
  std::deque<std::uint64_t> order_;      // batches in the order they were queued
  std::vector<std::uint64_t> finished_;  // batches whose units all came back (workers may forget them)
  std::uint64_t next_id_ = 0;
  bool ending_ = false;
  std::atomic<bool> any_lost_{false};
  std::atomic<std::uint64_t> bytes_out_{0}, bytes_in_{0};  // unit messages, both ways
  // Touched by the communication thread only:
  std::vector<int> free_slots_;
  std::vector<std::size_t> units_done_;  // (under mutex_: ranks() reads it)
  std::vector<std::vector<std::pair<std::uint64_t, std::size_t>>> dealt_;
  std::map<std::uint64_t, std::vector<bool>> header_sent_;  // batch -> the workers that have its header
  std::vector<bool> lost_ = std::vector<bool>(world_.size(), false);
  std::vector<bool> ready_ = std::vector<bool>(world_.size(), false);  // the worker's kReady arrived
  std::vector<std::chrono::steady_clock::time_point> last_heard_ =
      std::vector<std::chrono::steady_clock::time_point>(world_.size(), std::chrono::steady_clock::now());
  const std::chrono::milliseconds timeout_ = worker_timeout();
  std::thread comm_;
};

// ------------------------------------------------------------------ the session

class MpiSession : public DistributedSession {
 public:
  MpiSession(int* argc, char*** argv) : env_(*argc, *argv, bmpi::threading::serialized, true) {
    if (env_.thread_level() < bmpi::threading::serialized)
      throw Error("this MPI library does not allow threads to take turns calling it (MPI_THREAD_SERIALIZED)");
    set_current_rank(world_.rank());
    if (world_.size() > mpi_end::kMaxRanks) throw Error(fmt::format("caulk runs on at most {} MPI ranks", mpi_end::kMaxRanks));
    if (world_.rank() == 0) {
      coordinator_ = std::make_unique<Coordinator>(world_);
    }
  }
  ~MpiSession() override {
    if (coordinator_) {
      coordinator_->finish();
      // A lost worker would never reach MPI_Finalize, and mpirun would wait for it forever:
      // end the whole job instead (run.json and every message are out by now).
      if (coordinator_->lost_a_worker()) {
        std::fputs("caulk: error: a worker rank was lost; ending the MPI job\n", stderr);
        mpi_end::finished();  // reported above: the reporter stays quiet
        env_.abort(1);
      }
    }
    coordinator_.reset();
    mpi_end::finished();
    // env_ finalises MPI after every message is through.
  }

  int rank() const override { return world_.rank(); }
  int size() const override { return world_.size(); }
  UnitDispatcher& dispatcher() override {
    if (!coordinator_) throw Error("only rank 0 deals units");
    return *coordinator_;
  }

  // A batch as a worker holds it: rebuilt from its header, or why it could not be.
  struct WorkerBatch {
    std::shared_ptr<RemoteUnitBatch> remote;
    std::string error;
  };
  WorkerBatch receive_batch(const Registry& registry, const Json& header_cbor) const {
    WorkerBatch b;
    try {
      const Json header = Json::from_cbor(header_cbor.get_binary());
      const std::string type = unit_batch_type(header);
      const NodeType* node_type = registry.find_node(type);
      if (!node_type || !node_type->run_unit) {
        b.error =
            "no plugin loaded on this rank registers the distributable node type '" + type + "' (every rank must load the same plugins)";
        return b;
      }
      b.remote = unit_batch_from_header(header, node_type);
    } catch (const std::exception& e) {
      b.error = std::string("the batch's shared data could not be read on this rank: ") + e.what();
    }
    return b;
  }

  int serve(const Registry& registry, unsigned jobs) override {
    jobs = std::max(1u, jobs);
    std::mutex outbox_mutex;
    std::deque<Bytes> outbox;  // results made by the pool, sent by this (the MPI) thread
    Outgoing out(world_);
    auto pool = ThreadPool::with_workers(jobs);
    ScopedPool scoped(pool.get());
    out.send(0, kReady, Json::to_cbor(Json{{"slots", jobs}}));
    auto last_beat = std::chrono::steady_clock::now();
    std::size_t running = 0;
    bool stopping = false;
    std::map<std::uint64_t, std::shared_ptr<const WorkerBatch>> batches;  // headers received, by batch
    for (;;) {
      bool active = false;
      out.progress();
      while (!stopping) {
        auto message = try_receive(world_, 0);
        if (!message) break;
        active = true;
        if (message->first.tag() == kStop) {
          stopping = true;
          break;
        }
        if (message->first.tag() == kBatchDone) {
          batches.erase(Json::from_cbor(message->second).at("b").get<std::uint64_t>());
          continue;
        }
        if (message->first.tag() != kUnit) continue;
        ++running;
        auto unit = std::make_shared<Json>(Json::from_cbor(message->second));
        const auto id = unit->at("b").get<std::uint64_t>();
        if (unit->contains("h")) batches[id] = std::make_shared<const WorkerBatch>(receive_batch(registry, unit->at("h")));
        auto found = batches.find(id);
        std::shared_ptr<const WorkerBatch> batch = found == batches.end() ? nullptr : found->second;
        pool->submit([&, unit, batch] {
          Json reply = Json::object();
          reply["b"] = unit->at("b");
          reply["i"] = unit->at("i");
          UnitOutcome o;
          if (!batch)
            o.error = "internal: this rank received a unit of a batch whose shared data never arrived";
          else if (!batch->error.empty())
            o.error = batch->error;
          else {
            // What the unit reads and writes here, for rank 0's record of the node (UnitOutcome).
            io::AccessLog files;
            io::ScopedAccessLog scope(&files);
            o = run_unit_caught(batch->remote->batch, unit->at("p"), world_.rank());
            if (!files.incomplete()) {
              Json written = Json::array(), read = Json::array();
              for (const auto& [path, folder] : files.writes()) written.push_back(Json::array({path, folder}));
              for (const auto& [path, st] : files.reads()) read.push_back(path);
              reply["w"] = std::move(written);
              reply["rd"] = std::move(read);
            } else {
              reply["fi"] = true;  // the lists are incomplete: rank 0's record of the node must say so
            }
          }
          if (o.error.empty())
            reply["r"] = std::move(o.result);
          else
            reply["e"] = o.error;
          Bytes bytes = Json::to_cbor(reply);
          std::lock_guard lock(outbox_mutex);
          outbox.push_back(std::move(bytes));
        });
      }
      std::deque<Bytes> ready;
      {
        std::lock_guard lock(outbox_mutex);
        ready.swap(outbox);
      }
      for (auto& bytes : ready) {
        out.send(0, kResult, std::move(bytes));
        --running;
        active = true;
      }
      if (stopping && running == 0) break;
      // A sign of life, busy or idle (long units send nothing else for a while, idle workers nothing at all).
      if (std::chrono::steady_clock::now() - last_beat >= kHeartbeatEvery) {
        out.send(0, kHeartbeat, Json::to_cbor(Json::object()));
        last_beat = std::chrono::steady_clock::now();
      }
      if (!active) std::this_thread::sleep_for(kIdlePoll);
    }
    out.wait_all();
    return 0;
  }

 private:
  bmpi::environment env_;
  bmpi::communicator world_;
  std::unique_ptr<Coordinator> coordinator_;
};

}  // namespace
}  // namespace caulk

extern "C" __attribute__((visibility("default"))) caulk::DistributedSession* caulk_mpi_open_session(int* argc, char*** argv,
                                                                                                    std::string* error) {
  try {
    caulk::mpi_end::start_reporter_if_rank0();  // before MPI starts (no fork under MPI)
    return new caulk::MpiSession(argc, argv);
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return nullptr;
  }
}
