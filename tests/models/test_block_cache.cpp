// The block cache behind libtorch's CPU tensors (libs/models_torch/src/block_cache.hpp): which
// requests it serves from kept blocks, its bound, alignment, and that concurrent use loses no block.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "block_cache.hpp"

using caulk::models::torchscript::BlockCache;

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

bool aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % BlockCache::kAlignment == 0; }

TEST(BlockCache, ALargeBlockReleasedIsTheNextOfTheSameSize) {
  BlockCache cache(64 * kMiB, kMiB);
  void* a = cache.allocate(3 * kMiB);
  std::memset(a, 1, 3 * kMiB);  // the whole block is usable (ASan checks the bounds)
  cache.release(a);
  EXPECT_EQ(cache.stats().cached, 3 * kMiB);
  void* b = cache.allocate(3 * kMiB);
  EXPECT_EQ(b, a);
  const auto s = cache.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.cached, 0u);
  EXPECT_EQ(s.peak_cached, 3 * kMiB);
  cache.release(b);
}

TEST(BlockCache, AKeptBlockServesRequestsUpToAnEighthSmallerOnly) {
  BlockCache cache(64 * kMiB, kMiB);
  void* a = cache.allocate(8 * kMiB);
  cache.release(a);
  // Half the size would waste half the block: a new block.
  void* half = cache.allocate(4 * kMiB);
  EXPECT_NE(half, a);
  // 7 MiB wastes exactly an eighth of 8 MiB: the kept block.
  void* seven = cache.allocate(7 * kMiB);
  EXPECT_EQ(seven, a);
  std::memset(seven, 2, 7 * kMiB);
  cache.release(seven);
  // Larger than every kept block: a new one.
  void* nine = cache.allocate(9 * kMiB);
  EXPECT_NE(nine, a);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 3u);
  cache.release(half);
  cache.release(nine);
}

TEST(BlockCache, SmallBlocksAreNeverKept) {
  BlockCache cache(64 * kMiB, kMiB);
  for (std::size_t bytes : {std::size_t{1}, std::size_t{100}, kMiB - 1}) {
    void* p = cache.allocate(bytes);
    EXPECT_TRUE(aligned(p)) << bytes;
    std::memset(p, 3, bytes);
    cache.release(p);
  }
  const auto s = cache.stats();
  EXPECT_EQ(s.cached, 0u);
  EXPECT_EQ(s.hits + s.misses, 0u);
  cache.release(nullptr);  // ignored, as free(nullptr) is
}

TEST(BlockCache, WhatItKeepsStaysWithinItsBound) {
  BlockCache cache(5 * kMiB, kMiB);
  void* a = cache.allocate(2 * kMiB);
  void* b = cache.allocate(2 * kMiB);
  void* c = cache.allocate(2 * kMiB);
  cache.release(a);
  cache.release(b);
  cache.release(c);  // 6 MiB would pass the 5 MiB bound: freed instead
  EXPECT_EQ(cache.stats().cached, 4 * kMiB);
  EXPECT_EQ(cache.stats().peak_cached, 4 * kMiB);
  // The two kept blocks come back, then a new one.
  std::vector<void*> again{cache.allocate(2 * kMiB), cache.allocate(2 * kMiB), cache.allocate(2 * kMiB)};
  EXPECT_EQ(cache.stats().hits, 2u);
  EXPECT_TRUE((again[0] == a || again[0] == b) && (again[1] == a || again[1] == b) && again[0] != again[1]);
  for (void* p : again) {
    EXPECT_TRUE(aligned(p));
    cache.release(p);
  }
}

TEST(BlockCache, ThreadsSharingItEachGetTheirOwnBlocks) {
  BlockCache cache(256 * kMiB, kMiB);
  constexpr int kThreads = 4, kRounds = 200;
  std::vector<std::thread> threads;
  std::vector<int> corrupted(kThreads, 0);
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        const std::size_t bytes = (1 + static_cast<std::size_t>((t + r) % 3)) * kMiB;
        auto* p = static_cast<unsigned char*>(cache.allocate(bytes));
        std::memset(p, t + 1, bytes);
        // Another thread holding the same block would have written its own byte meanwhile.
        std::this_thread::yield();
        if (p[0] != t + 1 || p[bytes - 1] != t + 1) ++corrupted[static_cast<std::size_t>(t)];
        cache.release(p);
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(corrupted[static_cast<std::size_t>(t)], 0) << "thread " << t;
  const auto s = cache.stats();
  EXPECT_EQ(s.hits + s.misses, static_cast<std::size_t>(kThreads * kRounds));
  EXPECT_GT(s.hits, 0u);
}

}  // namespace
