#include <gtest/gtest.h>

#include <chrono>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "caulk/parallel.hpp"

using namespace caulk;

TEST(ThreadPool, EveryIterationRunsOnceAtAnyWidth) {
  for (unsigned width : {1u, 2u, 4u}) {
    ThreadPool pool(width);
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(hits.size(), [&](std::size_t i) { hits[i]++; });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1) << "width " << width;
  }
}

TEST(ThreadPool, NestedLoopsDoNotDeadlock) {
  ThreadPool pool(2);
  ScopedPool scoped(&pool);
  std::atomic<int> total{0};
  parallel_for(8, [&](std::size_t) { parallel_for(50, [&](std::size_t) { total++; }); });
  EXPECT_EQ(total.load(), 400);
}

TEST(ThreadPool, RethrowsTheLowestFailingIndexAfterAllFinish) {
  ThreadPool pool(3);
  std::atomic<int> done{0};
  try {
    pool.parallel_for(100, [&](std::size_t i) {
      done++;
      if (i == 7 || i == 60) throw std::runtime_error("fail " + std::to_string(i));
    });
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "fail 7");
  }
  EXPECT_EQ(done.load(), 100);
}

TEST(ThreadPool, SerialWithoutAPool) {
  EXPECT_EQ(current_pool(), nullptr);
  EXPECT_EQ(parallel_width(), 1u);
  std::vector<int> order;
  parallel_for(5, [&](std::size_t i) { order.push_back(static_cast<int>(i)); });
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

// Two runs in one process (two threads, each with its own pool) keep to their own widths: the
// pool is found per thread, so neither installs its pool for the other.
TEST(ThreadPool, EachThreadAndEachPoolsWorkersUseTheirOwnPool) {
  ThreadPool narrow(2), wide(4);
  std::atomic<int> ready{0};
  unsigned seen_narrow = 0, seen_wide = 0, nested_narrow = 0, nested_wide = 0;
  auto run = [&](ThreadPool& pool, unsigned& seen, unsigned& nested) {
    ScopedPool scoped(&pool);
    ready++;
    while (ready.load() < 2) std::this_thread::yield();  // both installed before either looks
    seen = parallel_width();
    // On the pool's own workers too (a node's loop inside its unit).
    std::vector<unsigned> widths(16);
    parallel_for(widths.size(), [&](std::size_t i) { widths[i] = parallel_width(); });
    nested = *std::min_element(widths.begin(), widths.end());
    EXPECT_EQ(nested, *std::max_element(widths.begin(), widths.end()));
  };
  std::thread a([&] { run(narrow, seen_narrow, nested_narrow); });
  std::thread b([&] { run(wide, seen_wide, nested_wide); });
  a.join();
  b.join();
  EXPECT_EQ(seen_narrow, 2u);
  EXPECT_EQ(seen_wide, 4u);
  EXPECT_EQ(nested_narrow, 2u);
  EXPECT_EQ(nested_wide, 4u);
  EXPECT_EQ(current_pool(), nullptr);  // this thread installed none
}

TEST(ThreadPool, WaitIdleReturnsOnceEveryTaskHasEndedAndLetGoOfWhatItHeld) {
  auto pool = ThreadPool::with_workers(2);
  auto held = std::make_shared<int>(0);
  std::atomic<int> done{0};
  for (int i = 0; i < 6; ++i)
    pool->submit([held, &done] {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ++done;
    });
  pool->wait_idle();
  EXPECT_EQ(done.load(), 6);
  EXPECT_EQ(held.use_count(), 1) << "every task's copy is released";
  pool->wait_idle();  // already idle: returns at once
}
