// The peak memory of each ranker on one model, from the shapes alone, so that a node can refuse
// before allocating (NodeContext::check_memory). Each estimate counts what the algorithm in this
// folder allocates at its peak (matrices, LAPACK workspaces, row buffers), not the memory-mapped
// features (page cache) nor decompositions that another ranker left in the shared cache. The
// formulas follow the code beside them; docs/rankers.md ("Memory") lists them.
#pragma once
#include <cstddef>
#include <string>

namespace caulk::rank {

struct MemoryEstimate {
  std::size_t bytes = 0;
  std::string what;    // the largest parts, e.g. "the 8000 x 8000 scatter matrix and its eigendecomposition"
  std::string advice;  // what lowers it
};

// The scatter (or F^T F) of D columns and its eigendecomposition: the larger of the accumulation
// (moments_peak_bytes) and the kept D x D matrix plus the copy LAPACK decomposes and its workspace.
std::size_t decomposition_peak_bytes(std::size_t D);

// N rows, D feature columns, T target columns (classes, or regression targets); `width` the
// threads a unit's own parallel loops may use (--jobs).
MemoryEstimate logme_memory(std::size_t N, std::size_t D, std::size_t T);
MemoryEstimate hscore_memory(std::size_t N, std::size_t D, std::size_t C);  // also the shrinkage H-score
MemoryEstimate transrate_memory(std::size_t N, std::size_t D, std::size_t C, unsigned width);
MemoryEstimate gbc_memory(std::size_t N, std::size_t D, std::size_t C);
MemoryEstimate sfda_memory(std::size_t N, std::size_t D, std::size_t C);
MemoryEstimate parc_memory(std::size_t N, std::size_t D, std::size_t C, std::size_t pca_dims, std::size_t max_samples);
// Before PCA: the decomposition and a one-dimensional mixture; nleep() checks the mixture again
// once it knows the PCA dimensions (nleep_mixture_bytes).
MemoryEstimate nleep_memory(std::size_t N, std::size_t D, std::size_t C, std::size_t components_per_class, unsigned width);
std::size_t nleep_mixture_bytes(std::size_t N, std::size_t dims, std::size_t components, unsigned width);
// LEEP and NCE: Cs source classes (probabilities or logits, streamed in row blocks).
MemoryEstimate source_probability_memory(std::size_t N, std::size_t Cs, std::size_t C);

}  // namespace caulk::rank
