#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
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
