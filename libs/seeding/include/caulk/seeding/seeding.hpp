// Seeds and seeded generators: every random choice in caulk's algorithms draws from these, so the
// same seed gives the same numbers on every platform and with any --jobs (docs/architecture.md,
// "Determinism"). The generators are defined by their code, unlike std:: distributions.
//
// A node takes one user seed; each random stream it needs (a model's initialisation, a subsample,
// a repetition, a tensor's mask) gets its own seed from derive_seed(seed, tags...), where the tags
// name the stream (a constant for its purpose, an index, name_tag(a name)). Streams derived with
// different tags are independent of each other and of the order in which they are drawn.
#pragma once
#include <concepts>
#include <cstdint>
#include <string_view>
#include <vector>

#include "caulk/matrix.hpp"

namespace caulk::seeding {

// SplitMix64's output function (Steele, Lea and Flood, 2014): a bijection of 64-bit words with
// good avalanche, the finaliser of the generator below.
constexpr std::uint64_t splitmix64_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// SplitMix64's increment (the golden gamma): the generator's state advances by it per output.
inline constexpr std::uint64_t kSplitMix64Gamma = 0x9E3779B97F4A7C15ull;

// A tag from a name (a tensor's, a model's): the 64-bit FNV-1a hash of its bytes.
constexpr std::uint64_t name_tag(std::string_view name) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// The seed of the stream named by `tags` under the user's seed `base`:
//   h = splitmix64(base)
//   h = splitmix64(h ^ (tag * 0xD1B54A32D192ED03 + 0x8CB92BA72F3D8DD7))   for each tag, in order
// where splitmix64(x) is the first output of SplitMix64 seeded with x (splitmix64_mix(x + gamma)).
// Each step is a bijection of h for a fixed tag, and the odd multiplier spreads small tags (0, 1,
// 2...) over the whole word, so neighbouring tags and seeds give unrelated streams. derive_seed(b)
// with no tag is splitmix64(b). Tags are unsigned 64-bit words (integers convert; name_tag for
// names); their order matters.
template <std::convertible_to<std::uint64_t>... Tags>
constexpr std::uint64_t derive_seed(std::uint64_t base, Tags... tags) {
  std::uint64_t h = splitmix64_mix(base + kSplitMix64Gamma);
  ((h = splitmix64_mix((h ^ (static_cast<std::uint64_t>(tags) * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull)) + kSplitMix64Gamma)), ...);
  return h;
}

// SplitMix64: uniform 64-bit words, and from them uniform doubles, indices and shuffles.
class SeededUniform {
 public:
  explicit SeededUniform(std::uint64_t seed);
  double next(double bound);  // uniform in [-bound, bound)
  double uniform01();         // uniform in [0, 1): 0.5 (next(1) + 1)
  std::uint64_t next_u64();
  std::size_t below(std::size_t n);  // in [0, n)
  // Fisher-Yates over the whole vector, drawing from this generator.
  void shuffle(std::vector<std::size_t>& v);

 private:
  std::uint64_t state_;
};

// 0, 1, ..., n-1 in a seeded order: shuffled by SeededUniform(seed).shuffle. Subsets of rows are
// taken as its prefixes (first_of), so those of one order are nested.
std::vector<std::size_t> seeded_order(std::size_t n, std::uint64_t seed);
// The first k of `order` (at most all), in increasing order.
std::vector<std::size_t> first_of(const std::vector<std::size_t>& order, std::size_t k);

// Standard normals by Box-Muller over SeededUniform, both values of each pair used in turn.
class Normal {
 public:
  explicit Normal(std::uint64_t seed) : u_(seed) {}
  double next();
  // An r x c matrix of scale * next(), filled column by column.
  Matrix matrix(Eigen::Index r, Eigen::Index c, double scale);

 private:
  SeededUniform u_;
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace caulk::seeding
