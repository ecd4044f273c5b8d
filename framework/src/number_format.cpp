#include "caulk/number_format.hpp"

#include <fmt/format.h>

#include <cmath>

namespace caulk {

std::string format_number(double value, int significant) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{}", static_cast<long long>(value));
  if (significant <= 0) return fmt::format("{}", value);
  return fmt::format("{:.{}g}", value, significant);
}

}  // namespace caulk
