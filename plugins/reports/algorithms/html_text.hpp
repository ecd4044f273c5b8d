// Text for a self-contained HTML page: escaping, JSON inside <script>, images as data URIs.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "caulk/context.hpp"

#include "caulk/number_format.hpp"

namespace caulk::report {

// Escapes & < > " ' for element text and attribute values.
std::string html_escape(std::string_view text);

// JSON for a <script type="application/json"> element: '<', '>' and '&' are written as \u003c,
// \u003e and \u0026 (still the same JSON), so no value can close the element or open a comment.
std::string json_for_script(const Json& value);

std::string base64(std::string_view bytes);

// The tEXt chunks of a PNG file's bytes (keyword -> text, from Latin-1 to UTF-8); empty when the bytes
// are not a PNG.
std::map<std::string, std::string> png_text_chunks(std::string_view bytes);

// A number as a table cell shows it: caulk's one formatter (caulk/number_format.hpp) with up to
// `digits` significant digits, integers whole.
inline std::string format_number(double value, int digits = 4) { return caulk::format_number(value, digits); }

// The whole file as bytes into `out`; false when it cannot be opened or read.
bool read_file_bytes(const std::filesystem::path& path, std::string& out);

}  // namespace caulk::report
