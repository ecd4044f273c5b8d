// The demo pipelines' recorded outputs (tests/golden/<pipeline>.json): run.json without what
// measures time, and a fingerprint of every other file the run wrote. A change that must keep
// behaviour and numbers (a refactoring) proves it by leaving these untouched; a change that
// means to alter numbers re-records them and says why (tests/golden/README.md).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli.hpp"
#include "caulk/io/atomic_file.hpp"
#include "run_json.hpp"

namespace caulk::testing {

// Files a run writes whose bytes depend on time: they are listed (they must exist) but not compared.
// report.html shows each node's duration; run.json is compared as JSON, without its timings.
inline bool golden_ignores_content(const std::string& relative) { return relative == "report.html" || relative == "run.json"; }

// 64-bit FNV-1a of a file's bytes: a fingerprint for equality, not a defence against tampering.
// The checkout's absolute path, wherever it occurs (a report that names its ground-truth file),
// counts as "<source>", so a record made in one checkout compares equal in another (CI clones
// elsewhere).
inline std::string file_fingerprint(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string source = source_dir().string();
  for (std::size_t at = bytes.find(source); at != std::string::npos; at = bytes.find(source, at + 8))
    bytes.replace(at, source.size(), "<source>");
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// Every string with the checkout's absolute path written as "<source>", so a record made in one
// checkout compares equal in another (CI clones elsewhere).
inline void replace_source_dir(nlohmann::json& j, const std::string& source) {
  if (j.is_string()) {
    std::string s = j.get<std::string>();
    for (std::size_t at = s.find(source); at != std::string::npos; at = s.find(source, at + 8)) s.replace(at, source.size(), "<source>");
    j = s;
  } else if (j.is_structured()) {
    for (auto& v : j) replace_source_dir(v, source);
  }
}

// What is recorded of a run's output folder: {"run": run.json without timings, "files": {path: fingerprint}}.
inline nlohmann::json golden_record(const std::filesystem::path& out) {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& e : std::filesystem::recursive_directory_iterator(out)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = e.path().lexically_relative(out).generic_string();
    if (rel.rfind(".caulk/", 0) == 0) continue;  // caulk's own state (lock, hashes, ledger), not the run's outputs
    files[rel] = golden_ignores_content(rel) ? std::string("(exists; content not compared)") : file_fingerprint(e.path());
  }
  nlohmann::json run = comparable_run_json(nlohmann::json::parse(read_file(out / "run.json")));
  replace_source_dir(run, source_dir().string());
  return {{"run", run}, {"files", files}};
}

// A key as a JSON pointer step (RFC 6901: "~" and "/" escaped).
inline std::string pointer_step(const std::string& key) {
  std::string out;
  for (char c : key) out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
  return out;
}

// Every place where `now` differs from `recorded`, as JSON pointers with both values.
inline void golden_differences(const nlohmann::json& recorded, const nlohmann::json& now, const std::string& at,
                               std::vector<std::string>& out) {
  if (recorded.is_object() && now.is_object()) {
    for (const auto& [k, v] : recorded.items()) {
      const std::string path = at + "/" + pointer_step(k);
      if (!now.contains(k))
        out.push_back(path + ": recorded " + v.dump() + ", now missing");
      else
        golden_differences(v, now.at(k), path, out);
    }
    for (const auto& [k, v] : now.items())
      if (!recorded.contains(k)) out.push_back(at + "/" + pointer_step(k) + ": not recorded, now " + v.dump());
    return;
  }
  if (recorded.is_array() && now.is_array() && recorded.size() == now.size()) {
    for (std::size_t i = 0; i < recorded.size(); ++i) golden_differences(recorded[i], now[i], at + "/" + std::to_string(i), out);
    return;
  }
  if (recorded != now) out.push_back((at.empty() ? "/" : at) + ": recorded " + recorded.dump() + ", now " + now.dump());
}

inline std::filesystem::path golden_file(const std::string& pipeline) { return source_dir() / "tests" / "golden" / (pipeline + ".json"); }

// Compares the run in `out` with the recorded one, naming every differing file and JSON path.
// With CAULK_RECORD_GOLDEN=1 in the environment it records the run instead.
inline void expect_matches_golden(const std::string& pipeline, const std::filesystem::path& out) {
  const nlohmann::json now = golden_record(out);
  const std::filesystem::path file = golden_file(pipeline);
  if (const char* record = std::getenv("CAULK_RECORD_GOLDEN"); record && std::string(record) == "1") {
    io::write_file_atomic(file, now.dump(1) + "\n");
    return;
  }
  if (!std::filesystem::exists(file)) {
    ADD_FAILURE() << "no recorded outputs for pipeline '" << pipeline << "' (" << file.string()
                  << "): record them as tests/golden/README.md says";
    return;
  }
  const nlohmann::json recorded = nlohmann::json::parse(read_file(file));
  std::vector<std::string> differences;
  golden_differences(recorded.at("run"), now.at("run"), "", differences);
  for (auto& d : differences) d = "run.json " + d;
  for (const auto& [rel, hash] : recorded.at("files").items()) {
    if (!now.at("files").contains(rel))
      differences.push_back("file " + rel + ": recorded, now not written");
    else if (now.at("files").at(rel) != hash)
      differences.push_back("file " + rel + ": content differs (recorded fingerprint " + hash.get<std::string>() + ", now " +
                            now.at("files").at(rel).get<std::string>() + ")");
  }
  for (const auto& [rel, hash] : now.at("files").items())
    if (!recorded.at("files").contains(rel)) differences.push_back("file " + rel + ": not recorded, now written");
  if (differences.empty()) return;
  std::string message =
      "pipeline '" + pipeline + "' differs from " + file.string() + " in " + std::to_string(differences.size()) + " place(s):\n";
  const std::size_t shown = std::min<std::size_t>(differences.size(), 40);
  for (std::size_t i = 0; i < shown; ++i) message += "  " + differences[i] + "\n";
  if (shown < differences.size()) message += "  ... and " + std::to_string(differences.size() - shown) + " more\n";
  ADD_FAILURE() << message;
}

}  // namespace caulk::testing
