#include "caulk/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <utility>

#include "caulk/io/access_log.hpp"

namespace caulk {

ThreadPool::ThreadPool(unsigned threads) : ThreadPool(threads == 0 ? 0 : threads - 1, threads == 0 ? 1 : threads) {}

ThreadPool::ThreadPool(unsigned workers, unsigned width) : width_(width) {
  for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

std::unique_ptr<ThreadPool> ThreadPool::with_workers(unsigned workers) {
  if (workers == 0) workers = 1;
  return std::unique_ptr<ThreadPool>(new ThreadPool(workers, workers));
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::submit(std::function<void()> task) {
  // A task reads and writes files on behalf of the node that submitted it (caulk/io/access_log.hpp).
  if (io::AccessLog* log = io::current_access_log())
    task = [log, inner = std::move(task)] {
      io::ScopedAccessLog scope(log);
      inner();
    };
  if (workers_.empty()) {
    task();
    return;
  }
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

namespace {
// The pool parallel_for uses on this thread: its own for a pool's worker, the one a ScopedPool
// installed for any other thread. Per thread, not per process, so two runs in one process (two
// executors, or a test beside a run) never share or swap each other's pool.
thread_local ThreadPool* t_current_pool = nullptr;
}  // namespace

void ThreadPool::worker_loop() {
  t_current_pool = this;
  for (;;) {
    {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        task = std::move(queue_.front());
        queue_.pop_front();
        ++active_;
      }
      task();
    }  // the task and what it holds are gone before the pool counts it done
    task_done();
  }
}

bool ThreadPool::run_one_queued() {
  // Counted done however the task ends (it may throw to this caller), once it is destroyed.
  struct Done {
    ThreadPool* pool = nullptr;
    ~Done() {
      if (pool) pool->task_done();
    }
  } done;
  std::function<void()> task;  // destroyed before `done`
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) return false;
    task = std::move(queue_.front());
    queue_.pop_front();
    ++active_;
    done.pool = this;
  }
  task();
  return true;
}

void ThreadPool::task_done() {
  std::lock_guard lock(mutex_);
  if (--active_ == 0 && queue_.empty()) idle_cv_.notify_all();
}

void ThreadPool::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_cv_.wait(lock, [this] { return active_ == 0 && queue_.empty(); });
}

namespace {
// Shared by the caller and the helpers of one parallel_for: iterations are claimed one at a time.
// The caller waits until every iteration has *completed*; it never waits for a helper that has not
// started (it may sit in the queue behind a long task), and such a helper, when it finally runs,
// claims nothing and leaves without touching `fn`.
struct LoopState {
  std::size_t n = 0;
  const std::function<void(std::size_t)>* fn = nullptr;
  std::atomic<std::size_t> next{0};
  std::mutex mutex;
  std::condition_variable done_cv;
  std::size_t completed = 0;
  std::size_t first_error_index = static_cast<std::size_t>(-1);
  std::exception_ptr first_error;

  void run() {
    for (;;) {
      std::size_t i = next.fetch_add(1);
      if (i >= n) return;
      std::exception_ptr error;
      try {
        (*fn)(i);
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard lock(mutex);
      if (error && i < first_error_index) {
        first_error_index = i;
        first_error = error;
      }
      if (++completed == n) done_cv.notify_all();
    }
  }
};
}  // namespace

void ThreadPool::parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (n == 0) return;
  auto state = std::make_shared<LoopState>();
  state->n = n;
  state->fn = &fn;
  std::size_t helpers = std::min<std::size_t>(workers_.size(), n - 1);
  for (std::size_t h = 0; h < helpers; ++h) submit([state] { state->run(); });
  state->run();
  std::unique_lock lock(state->mutex);
  state->done_cv.wait(lock, [&] { return state->completed == n; });
  if (state->first_error) std::rethrow_exception(state->first_error);
}

ThreadPool* current_pool() { return t_current_pool; }

ScopedPool::ScopedPool(ThreadPool* pool) : previous_(std::exchange(t_current_pool, pool)) {}
ScopedPool::~ScopedPool() { t_current_pool = previous_; }

void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (ThreadPool* pool = current_pool()) {
    pool->parallel_for(n, fn);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) fn(i);
}

bool help_current_pool() {
  ThreadPool* pool = current_pool();
  return pool && pool->run_one_queued();
}

unsigned parallel_width() {
  ThreadPool* pool = current_pool();
  return pool ? pool->width() : 1;
}

}  // namespace caulk
