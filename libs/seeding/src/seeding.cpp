#include "caulk/seeding/seeding.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace caulk::seeding {

SeededUniform::SeededUniform(std::uint64_t seed) : state_(seed) {}
std::uint64_t SeededUniform::next_u64() { return splitmix64_mix(state_ += kSplitMix64Gamma); }
double SeededUniform::next(double bound) {
  const double u = double(next_u64() >> 11) * 0x1.0p-53;  // [0, 1)
  return (2 * u - 1) * bound;
}
double SeededUniform::uniform01() { return 0.5 * (next(1.0) + 1.0); }
std::size_t SeededUniform::below(std::size_t n) { return static_cast<std::size_t>(next_u64() % n); }
void SeededUniform::shuffle(std::vector<std::size_t>& v) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
}

std::vector<std::size_t> seeded_order(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  SeededUniform(seed).shuffle(order);
  return order;
}

std::vector<std::size_t> first_of(const std::vector<std::size_t>& order, std::size_t k) {
  std::vector<std::size_t> rows(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(std::min(k, order.size())));
  std::sort(rows.begin(), rows.end());
  return rows;
}

double Normal::next() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double a = 0;
  while (a <= 0) a = u_.uniform01();
  const double b = u_.uniform01();
  const double r = std::sqrt(-2 * std::log(a));
  spare_ = r * std::sin(2 * M_PI * b);
  has_spare_ = true;
  return r * std::cos(2 * M_PI * b);
}

Matrix Normal::matrix(Eigen::Index r, Eigen::Index c, double scale) {
  Matrix m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = scale * next();
  return m;
}

}  // namespace caulk::seeding
