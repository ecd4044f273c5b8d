// Comparing run.json files across runs that must agree (--jobs, number of MPI ranks).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace caulk::testing {

// What the provenance records of the moment, the machine and the checkout rather than of the
// computation: times, host, threads, the command line and folders, where files are (input paths,
// modification times, plugin files; their content hashes and sizes stay compared).
inline bool provenance_varies(const std::string& key) {
  static const char* const keys[] = {"started",          "ended",           "host",        "jobs",
                                     "hardware_threads", "command",         "working_dir", "pipeline_file",
                                     "plugin_paths",     "plugin_path_env", "mtime"};
  for (const char* k : keys)
    if (key == k) return true;
  return false;
}

// run.json without what measures time (every `seconds` key) or says how the work was spread over
// processes (`ranks`), nor what provenance_varies says inside "provenance" (and each plugin's
// `file` and `xxh3_128`, which differ between builds; each input's `path`): everything else must
// be identical for any --jobs and any number of ranks. Inputs found only by reading (`"via": "read"`)
// are left out too: other ranks' reads are not recorded.
inline nlohmann::json comparable_run_json(const nlohmann::json& j, int in_provenance = 0) {
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j.items()) {
      if (k == "seconds" || k == "ranks") continue;
      if (in_provenance && provenance_varies(k)) continue;
      if (in_provenance == 2 && (k == "file" || k == "xxh3_128")) continue;  // a plugin's file
      if (in_provenance == 3 && k == "path") continue;                       // an input file
      int inner = in_provenance;
      if (k == "provenance") inner = 1;
      if (in_provenance && k == "plugins") inner = 2;
      if (in_provenance && k == "inputs") inner = 3;
      out[k] = comparable_run_json(v, inner);
    }
    return out;
  }
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) {
      // A file a node read that no parameter or artifact names: under mpirun, units on other ranks
      // read such files out of rank 0's sight (docs/pipeline-format.md, "Provenance").
      if (in_provenance == 3 && v.is_object() && v.value("via", std::string()) == "read") continue;
      out.push_back(comparable_run_json(v, in_provenance));
    }
    return out;
  }
  return j;
}

}  // namespace caulk::testing
