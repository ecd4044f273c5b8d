#include "caching_cpu_allocator.hpp"

#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "block_cache.hpp"

namespace caulk::models::torchscript {

namespace {

// Never destroyed: tensors may be freed during static destruction, after any destructor of ours.
BlockCache* g_cache = nullptr;

void release_block(void* block) { g_cache->release(block); }

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t bytes) const override {
    void* block = g_cache->allocate(bytes);
    return {block, block, &release_block, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release_block; }
};

}  // namespace

bool install_caching_cpu_allocator(std::size_t limit_bytes) {
  static std::once_flag once;
  static bool installed = false;
  std::call_once(once, [&] {
    const char* env = std::getenv("CAULK_TORCH_CPU_CACHE");
    if (env && std::strcmp(env, "0") == 0) return;
    g_cache = new BlockCache(limit_bytes, std::size_t{1} << 20);
    // Priority 1 is above libtorch's default CPU allocator (0). c10 keeps the pointer for the
    // life of the process.
    c10::SetCPUAllocator(new CachingCpuAllocator, /*priority=*/1);
    installed = true;
  });
  return installed;
}

}  // namespace caulk::models::torchscript
