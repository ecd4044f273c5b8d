// Parallel loops bounded by --jobs, for algorithms that know nothing of the graph.
//
// Each executor (caulk/executor.hpp) owns a pool of `--jobs` workers for its lifetime;
// caulk::parallel_for on one of its workers (a node, a unit) uses that pool, on a thread where a ScopedPool installed one uses that, and runs
// serially otherwise (tests, tools). The pool is found per thread, never process-wide, so runs in
// one process keep to their own widths. The calling thread always takes part,
// and only ever waits for work it or an idle worker has already started, so nested loops (a node's
// loop over models, inside it a model's loop over row blocks) cannot deadlock.
//
// Determinism is the caller's part: fn(i) must write only to slot i of its results, and any
// reduction must combine the slots in index order, so the numbers do not depend on the width.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace caulk {

class ThreadPool {
 public:
  // `threads` is the total width including the calling thread; width 1 starts no worker.
  explicit ThreadPool(unsigned threads);
  // A pool of `workers` threads whose callers only wait (the executor's scheduler): the width
  // is the number of workers, all of which compute.
  static std::unique_ptr<ThreadPool> with_workers(unsigned workers);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned width() const { return width_; }
  // Queues a task for a worker (or runs it inline when the pool has no worker).
  void submit(std::function<void()> task);
  // Runs fn(i) for every i in [0, n); rethrows the exception of the lowest failing index after
  // every started iteration has finished.
  void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn);
  // Runs one queued task on the calling thread, if there is one: a thread that must wait for
  // work another thread is doing can help the pool instead of idling.
  bool run_one_queued();
  // Waits until no task is queued or running (with what it held released): what a caller that
  // submitted tasks touching its own objects does before they go. Never call it from a task.
  void wait_idle();

 private:
  ThreadPool(unsigned workers, unsigned width);
  void worker_loop();
  void task_done();
  unsigned width_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::function<void()>> queue_;
  std::size_t active_ = 0;  // tasks running
  bool stopping_ = false;
};

// The pool of the calling thread: the pool it works for, or the one a ScopedPool installed on it
// (nullptr otherwise).
ThreadPool* current_pool();
// Installs `pool` as the calling thread's for the lifetime of the guard (its workers have it anyway).
class ScopedPool {
 public:
  explicit ScopedPool(ThreadPool* pool);
  ~ScopedPool();

 private:
  ThreadPool* previous_;
};

// fn(i) for i in [0, n) on the current pool, serially when there is none.
void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn);
// The width of the current pool (1 when there is none).
unsigned parallel_width();
// Runs one queued task of the current pool on the calling thread; false when there was none.
bool help_current_pool();

}  // namespace caulk
