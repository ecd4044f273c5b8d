// libs/seeding against independent values: SplitMix64's published outputs, the FNV-1a test
// vectors, and derive_seed and Box-Muller as computed by a separate Python implementation
// (arbitrary-precision integers masked to 64 bits; Python's math on the same libm).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <map>
#include <set>

#include "caulk/seeding/seeding.hpp"

using namespace caulk::seeding;

TEST(Seeding, SplitMix64GivesThePublishedOutputs) {
  SeededUniform zero(0);
  EXPECT_EQ(zero.next_u64(), 0xe220a8397b1dcdafull);
  EXPECT_EQ(zero.next_u64(), 0x6e789e6aa1b965f4ull);
  EXPECT_EQ(zero.next_u64(), 0x06c45d188009454full);
  SeededUniform other(1234567);
  EXPECT_EQ(other.next_u64(), 6457827717110365317ull);
  EXPECT_EQ(other.next_u64(), 3203168211198807973ull);
}

TEST(Seeding, NameTagIsFnv1a) {
  EXPECT_EQ(name_tag(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(name_tag("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(name_tag("layers.0.weight"), 0x718a5d75ec8bf0d9ull);
}

TEST(Seeding, DeriveSeedMatchesAnIndependentImplementation) {
  EXPECT_EQ(derive_seed(0), 0xe220a8397b1dcdafull);  // no tag: SplitMix64's first output
  EXPECT_EQ(derive_seed(42, 1, 7), 0xce0ca154a34abaddull);
  EXPECT_EQ(derive_seed(42, 7, 1), 0x36002cb4a77affb0ull);  // the order of tags matters
  EXPECT_EQ(derive_seed(7, 2, 0, 50, 3), 0x4bf50203f3c2f37aull);
  static_assert(derive_seed(3, 1) == derive_seed(3, 1u), "tags of any unsigned width name the same stream");
}

TEST(Seeding, NeighbouringSeedsAndTagsGiveDistinctStreams) {
  std::set<std::uint64_t> seen;
  for (std::uint64_t base = 0; base < 32; ++base)
    for (std::uint64_t a = 0; a < 32; ++a)
      for (std::uint64_t b = 0; b < 4; ++b) seen.insert(derive_seed(base, a, b));
  EXPECT_EQ(seen.size(), 32u * 32u * 4u);
  // Appending a tag always moves the seed (tag 0 included).
  EXPECT_NE(derive_seed(5), derive_seed(5, 0));
  EXPECT_NE(derive_seed(5, 0), derive_seed(5, 0, 0));
}

TEST(Seeding, UniformsLieInTheirRanges) {
  SeededUniform u(11);
  for (int i = 0; i < 10000; ++i) {
    const double x = u.next(2.5), y = u.uniform01();
    EXPECT_GE(x, -2.5);
    EXPECT_LT(x, 2.5);
    EXPECT_GE(y, 0.0);
    EXPECT_LT(y, 1.0);
    EXPECT_LT(u.below(7), 7u);
  }
  std::vector<std::size_t> v(50);
  std::iota(v.begin(), v.end(), 0);
  u.shuffle(v);
  std::vector<std::size_t> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) EXPECT_EQ(sorted[i], i);  // a permutation
  EXPECT_FALSE(std::is_sorted(v.begin(), v.end()));
}

TEST(Seeding, NormalIsBoxMullerOverTheUniforms) {
  Normal n(99);
  // Both values of the first pair, then the first of the second (Python, same libm).
  EXPECT_DOUBLE_EQ(n.next(), 1.6055122603257697);
  EXPECT_DOUBLE_EQ(n.next(), 0.3236345691042968);
  EXPECT_DOUBLE_EQ(n.next(), 0.4810341034331658);
  // And they are standard normal: mean 0 and variance 1 within 4 standard errors over 200000 draws.
  Normal m(5);
  const int count = 200000;
  double sum = 0, squares = 0;
  for (int i = 0; i < count; ++i) {
    const double x = m.next();
    sum += x;
    squares += x * x;
  }
  const double mean = sum / count, variance = squares / count - mean * mean;
  EXPECT_NEAR(mean, 0.0, 4.0 / std::sqrt(double(count)));
  EXPECT_NEAR(variance, 1.0, 4.0 * std::sqrt(2.0 / count));
}

TEST(Seeding, SeededOrdersAreUniformPermutationsAndTheirPrefixesNest) {
  // Every order of 3 rows equally likely: 60000 seeds, each of the 6 about 10000 times (4 standard
  // deviations: 4 * sqrt(60000 * 1/6 * 5/6) = 365).
  std::map<std::vector<std::size_t>, int> seen;
  for (std::uint64_t s = 0; s < 60000; ++s) ++seen[seeded_order(3, derive_seed(s))];
  ASSERT_EQ(seen.size(), 6u);
  for (const auto& [order, count] : seen) EXPECT_NEAR(count, 10000, 365);
  // Each row in each place of an order of 10 about as often (4 standard deviations of 1/10).
  std::vector<std::vector<int>> at(10, std::vector<int>(10, 0));
  for (std::uint64_t s = 0; s < 20000; ++s) {
    const auto order = seeded_order(10, derive_seed(s, 1));
    for (std::size_t i = 0; i < 10; ++i) ++at[i][order[i]];
  }
  for (const auto& place : at)
    for (int count : place) EXPECT_NEAR(count, 2000, 4 * std::sqrt(20000 * 0.1 * 0.9));
  // The same seed, the same order; subsets are the order's sorted prefixes, so nested.
  const auto order = seeded_order(100, 42);
  EXPECT_EQ(order, seeded_order(100, 42));
  EXPECT_NE(order, seeded_order(100, 43));
  std::vector<std::size_t> previous;
  for (std::size_t k : {0u, 1u, 10u, 57u, 100u, 150u}) {
    const auto rows = first_of(order, k);
    EXPECT_EQ(rows.size(), std::min<std::size_t>(k, 100));
    EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end()));
    EXPECT_EQ(std::set<std::size_t>(rows.begin(), rows.end()), std::set<std::size_t>(order.begin(), order.begin() + rows.size()));
    EXPECT_TRUE(std::includes(rows.begin(), rows.end(), previous.begin(), previous.end()));
    previous = rows;
  }
}
