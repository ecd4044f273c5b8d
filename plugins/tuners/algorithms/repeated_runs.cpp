#include "tuners/algorithms/repeated_runs.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <map>
#include <regex>

#include "caulk/error.hpp"

namespace caulk::tune {

namespace {
std::regex compile(const std::string& strip) {
  try {
    return std::regex(strip, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error(fmt::format("the regular expression '{}' is malformed: {}", strip, e.what()));
  }
}
}  // namespace

std::string group_of(const std::string& key, const std::string& strip) {
  if (strip.empty()) return key;
  return std::regex_replace(key, compile(strip), "", std::regex_constants::format_first_only);
}

std::vector<GroupSummary> summarize_groups(const std::vector<std::string>& keys, const Matrix& values, const std::string& strip) {
  if (static_cast<Eigen::Index>(keys.size()) != values.rows())
    throw Error(fmt::format("{} keys for {} rows of values", keys.size(), values.rows()));
  if (!strip.empty()) compile(strip);  // a malformed expression fails even without rows
  std::vector<GroupSummary> out;
  std::vector<std::vector<Eigen::Index>> members;
  std::map<std::string, std::size_t> position;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::string g = group_of(keys[i], strip);
    auto [it, fresh] = position.emplace(g, out.size());
    if (fresh) {
      out.push_back({g, 0, {}, {}});
      members.emplace_back();
    }
    members[it->second].push_back(static_cast<Eigen::Index>(i));
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (std::size_t g = 0; g < out.size(); ++g) {
    out[g].runs = members[g].size();
    for (Eigen::Index c = 0; c < values.cols(); ++c) {
      double sum = 0;
      std::size_t n = 0;
      for (Eigen::Index r : members[g])
        if (!std::isnan(values(r, c))) sum += values(r, c), ++n;
      const double mean = n ? sum / double(n) : nan;
      double squares = 0;
      for (Eigen::Index r : members[g])
        if (!std::isnan(values(r, c))) squares += (values(r, c) - mean) * (values(r, c) - mean);
      out[g].mean.push_back(mean);
      out[g].std.push_back(n > 1 ? std::sqrt(squares / double(n - 1)) : nan);
    }
  }
  return out;
}

}  // namespace caulk::tune
