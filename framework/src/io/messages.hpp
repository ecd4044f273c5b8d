// Describing a bad file in an error message without echoing what it holds.
//
// A message may reach a terminal, run.json and the HTML report. A path mistyped onto a file that
// is not of the expected format (a system file, a key, a document) must not have its content
// copied there, so errors say what is wrong ("does not start with the .npy magic") and quote
// bytes only once the file is known to be of its format, and then only a short, escaped excerpt.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "caulk/json_text.hpp"

#include "sizes.hpp"

namespace caulk::io::detail {

inline constexpr std::size_t kMaxExcerpt = 40;

// At most kMaxExcerpt bytes of `text`, escaped (quote_bytes), with "..." when cut.
inline std::string excerpt(std::string_view text) {
  std::string out = quote_bytes(text.data(), std::min(text.size(), kMaxExcerpt));
  if (text.size() > kMaxExcerpt) out += "...";
  return out;
}

// A JSON value as a short excerpt of its text.
inline std::string json_excerpt(const nlohmann::json& value) { return excerpt(json_text(value)); }

// nlohmann's parse error without the "last read: '...'" part, which quotes the file.
inline std::string json_error_text(const nlohmann::json::exception& e) {
  std::string s = e.what();
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find("] ");
    if (close != std::string::npos) s.erase(0, close + 2);  // "[json.exception.parse_error.101] "
  }
  const auto quoted = s.find("; last read: ");
  if (quoted != std::string::npos) s.erase(quoted);
  return s;
}

}  // namespace caulk::io::detail
