// Mean and spread of repeated runs: rows of metrics (one per run) grouped by a key from which the
// part that tells the runs apart (e.g. a seed tag ":s2") has been removed.
#pragma once
#include <string>
#include <vector>

#include "caulk/matrix.hpp"

namespace caulk::tune {

struct GroupSummary {
  std::string group;
  std::size_t runs = 0;
  std::vector<double> mean;  // per column
  std::vector<double> std;   // per column: sample standard deviation (n - 1); NaN for one run
};

// The group of a key: the key with its first match of the ECMAScript regular expression `strip`
// removed ("" keeps keys as they are). Throws Error on a malformed expression.
std::string group_of(const std::string& key, const std::string& strip);

// Groups the rows of `values` (one row per key) in the order each group first appears. A NaN
// value is left out of its column's statistics (mean and std over the runs that have it).
std::vector<GroupSummary> summarize_groups(const std::vector<std::string>& keys, const Matrix& values, const std::string& strip);

}  // namespace caulk::tune
