// A cache of freed large memory blocks, for libtorch's CPU tensors (caching_cpu_allocator.hpp).
//
// Running a model batch after batch allocates the same large activations every time (the first
// convolution of a ResNet-18 on 64 images at 224 x 224 outputs 205 MB). glibc serves blocks that
// large with mmap and returns them with munmap, so every batch faults every page in again: about
// 40 % of a feature extraction's time went to the kernel (docs/performance.md, "TorchScript
// models"). Blocks of at least `min_block` bytes are kept when released and handed back for a
// request of the same size or up to an eighth smaller, while the bytes kept stay within `limit`;
// smaller blocks go straight to the system allocator. Every block is 64-byte aligned, as
// libtorch's own allocator aligns them. Plain C++, no libtorch: tested on its own.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>

namespace caulk::models::torchscript {

class BlockCache {
 public:
  static constexpr std::size_t kAlignment = 64;

  struct Stats {
    std::size_t hits = 0;    // large requests served from the cache
    std::size_t misses = 0;  // large requests that allocated
    std::size_t cached = 0;  // bytes kept now
    std::size_t peak_cached = 0;
  };

  BlockCache(std::size_t limit, std::size_t min_block) : limit_(limit), min_block_(min_block) {}
  ~BlockCache();  // frees what it keeps; blocks still in use must not be released afterwards
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // At least `bytes` bytes, 64-byte aligned; throws std::bad_alloc.
  void* allocate(std::size_t bytes);
  // Takes back a block `allocate` returned (nullptr is ignored).
  void release(void* block);
  Stats stats() const;

 private:
  std::size_t limit_, min_block_;
  mutable std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;  // kept blocks by capacity
  Stats stats_;
};

}  // namespace caulk::models::torchscript
