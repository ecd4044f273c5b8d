// libtorch's CPU tensors through a BlockCache (block_cache.hpp): the memory of one batch's large
// activations is reused by the next instead of being unmapped and faulted in again.
#pragma once
#include <cstddef>

namespace caulk::models::torchscript {

// Makes the cache libtorch's CPU allocator, once per process, unless the environment sets
// CAULK_TORCH_CPU_CACHE=0 (how the benchmark measures what it gains). The cache keeps at most
// `limit_bytes`. Returns whether the cache is in use.
bool install_caching_cpu_allocator(std::size_t limit_bytes);

}  // namespace caulk::models::torchscript
