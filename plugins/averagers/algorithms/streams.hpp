// The random streams of the averagers' algorithms, one tag each, so one user seed given to several
// of them (the simulation, the folds, the basis, the weight network) gives independent streams:
// each is derive_seed(seed, tag[, index]) (docs/architecture.md, "Determinism").
#pragma once
#include <cstdint>

namespace caulk::avg {

enum StreamTag : std::uint64_t {
  kSimulatedSplit = 1,  // then the split's index: train 1, validation 2, test 3
  kFourierFrequencies = 2,
  kFoldShuffle = 3,
  kWeightNetInit = 4,
};

}  // namespace caulk::avg
