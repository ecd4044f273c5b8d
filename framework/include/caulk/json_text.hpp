// Every JSON text caulk writes (run.json, reports, sharded indexes, weight files) is
// made here, so no string can make the writer throw: invalid UTF-8 (a label read from a CSV, a
// file name in an error, a Latin-1 folder name) becomes U+FFFD rather than an exception that
// would lose the record and the real error. A test fails on any other call of nlohmann's dump in
// the sources.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace caulk {

// The JSON text of `j`, compact (indent < 0) or indented; never throws for a string's content.
std::string json_text(const nlohmann::ordered_json& j, int indent = -1);
std::string json_text(const nlohmann::json& j, int indent = -1);

// For data formats where a changed string would change what the file means (tensor names in a
// safetensors header): the compact text, or nothing when a string is not valid UTF-8.
std::optional<std::string> json_text_if_valid(const nlohmann::ordered_json& j);

}  // namespace caulk
