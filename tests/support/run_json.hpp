// Comparing run.json files across runs that must agree (--jobs, number of MPI ranks).
#pragma once
#include <nlohmann/json.hpp>

namespace caulk::testing {

// run.json without what measures time (every `seconds` key) or says how the work was spread over
// processes (`ranks`): everything else must be identical for any --jobs and any number of ranks.
inline nlohmann::json comparable_run_json(const nlohmann::json& j) {
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j.items())
      if (k != "seconds" && k != "ranks") out[k] = comparable_run_json(v);
    return out;
  }
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) out.push_back(comparable_run_json(v));
    return out;
  }
  return j;
}

}  // namespace caulk::testing
