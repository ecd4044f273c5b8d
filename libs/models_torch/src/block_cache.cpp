#include "block_cache.hpp"

#include <cstdlib>
#include <new>

namespace caulk::models::torchscript {

namespace {

// Each block starts with a header of one alignment unit that records its capacity, so a release
// needs nothing but the pointer (libtorch's raw deleter gets only that).
constexpr std::size_t kHeader = BlockCache::kAlignment;

std::size_t& capacity_of(void* block) { return *reinterpret_cast<std::size_t*>(static_cast<std::byte*>(block) - kHeader); }

void* system_allocate(std::size_t capacity) {
  void* base = nullptr;
  if (capacity > SIZE_MAX - kHeader || posix_memalign(&base, BlockCache::kAlignment, capacity + kHeader) != 0) throw std::bad_alloc();
  void* block = static_cast<std::byte*>(base) + kHeader;
  capacity_of(block) = capacity;
  return block;
}

void system_free(void* block) { std::free(static_cast<std::byte*>(block) - kHeader); }

}  // namespace

BlockCache::~BlockCache() {
  for (const auto& [capacity, block] : free_) system_free(block);
}

void* BlockCache::allocate(std::size_t bytes) {
  if (bytes < min_block_) return system_allocate(bytes);
  {
    std::lock_guard lock(mutex_);
    // The smallest kept block that fits, unless it would waste more than an eighth of itself.
    const auto it = free_.lower_bound(bytes);
    if (it != free_.end() && it->first - bytes <= it->first / 8) {
      void* block = it->second;
      stats_.cached -= it->first;
      free_.erase(it);
      ++stats_.hits;
      return block;
    }
    ++stats_.misses;
  }
  return system_allocate(bytes);
}

void BlockCache::release(void* block) {
  if (!block) return;
  const std::size_t capacity = capacity_of(block);
  if (capacity >= min_block_) {
    std::lock_guard lock(mutex_);
    if (stats_.cached + capacity <= limit_) {
      free_.emplace(capacity, block);
      stats_.cached += capacity;
      if (stats_.cached > stats_.peak_cached) stats_.peak_cached = stats_.cached;
      return;
    }
  }
  system_free(block);
}

BlockCache::Stats BlockCache::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace caulk::models::torchscript
