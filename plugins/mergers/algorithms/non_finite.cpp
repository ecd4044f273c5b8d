#include "mergers/algorithms/non_finite.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace caulk::merge {

namespace {

constexpr std::size_t kBlock = 1024;

template <class S>
std::size_t first_non_finite_any(const S* x, std::size_t n) {
  using Bits = std::conditional_t<sizeof(S) == 4, std::uint32_t, std::uint64_t>;
  for (std::size_t b = 0; b < n; b += kBlock) {
    const std::size_t e = std::min(n, b + kBlock);
    // x - x is +0 (no bit set) for every finite x and NaN for infinity and NaN.
    Bits any = 0;
    for (std::size_t j = b; j < e; ++j) any |= std::bit_cast<Bits>(static_cast<S>(x[j] - x[j]));
    if (any)
      for (std::size_t j = b; j < e; ++j)
        if (!std::isfinite(x[j])) return j;
  }
  return n;
}

template <class S>
std::size_t first_at_least_any(const S* x, std::size_t n, double threshold) {
  if (!(threshold < std::numeric_limits<double>::infinity())) return n;
  const S t = static_cast<S>(threshold);
  for (std::size_t b = 0; b < n; b += kBlock) {
    const std::size_t e = std::min(n, b + kBlock);
    int any = 0;
    for (std::size_t j = b; j < e; ++j) any |= std::fabs(x[j]) >= t;
    if (any)
      for (std::size_t j = b; j < e; ++j)
        if (std::fabs(x[j]) >= t) return j;
  }
  return n;
}

}  // namespace

std::size_t first_non_finite(const float* x, std::size_t n) { return first_non_finite_any(x, n); }
std::size_t first_non_finite(const double* x, std::size_t n) { return first_non_finite_any(x, n); }
std::size_t first_at_least(const float* x, std::size_t n, double threshold) { return first_at_least_any(x, n, threshold); }
std::size_t first_at_least(const double* x, std::size_t n, double threshold) { return first_at_least_any(x, n, threshold); }

double overflow_threshold(io::DType t) {
  // The largest finite value plus half a unit in its last place: from there on, round to nearest
  // even gives infinity (the largest finite value has an odd last bit, so the tie goes up too).
  switch (t) {
    case io::DType::F16:
      return 65520.0;  // 65504 + 16
    case io::DType::BF16:
      return std::ldexp(1.0, 128) - std::ldexp(1.0, 119);  // (2 - 2^-7) 2^127 + 2^119
    case io::DType::F32:
      return std::ldexp(1.0, 128) - std::ldexp(1.0, 103);  // (2 - 2^-23) 2^127 + 2^103
    default:
      return std::numeric_limits<double>::infinity();
  }
}

std::string element_text(std::size_t flat, const std::vector<std::size_t>& shape) {
  std::vector<std::size_t> index(shape.size());
  std::size_t rest = flat;
  for (std::size_t d = shape.size(); d-- > 0;) {
    const std::size_t extent = std::max<std::size_t>(shape[d], 1);
    index[d] = rest % extent;
    rest /= extent;
  }
  std::string text = fmt::format("{} (index [", flat);
  for (std::size_t d = 0; d < index.size(); ++d) text += fmt::format("{}{}", d ? ", " : "", index[d]);
  return text + "])";
}

std::string value_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:g}", v);
}

}  // namespace caulk::merge
