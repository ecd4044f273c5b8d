#include "reports/algorithms/html_text.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "caulk/error.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/json_text.hpp"

namespace caulk::report {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  // Runs of plain characters are copied whole (a report escapes the licences' 100 kB each time).
  std::size_t from = 0;
  for (std::size_t at = text.find_first_of("&<>\"'"); at != std::string_view::npos; at = text.find_first_of("&<>\"'", from)) {
    out.append(text.substr(from, at - from));
    switch (text[at]) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += "&#39;";
    }
    from = at + 1;
  }
  out.append(text.substr(from));
  return out;
}

std::string json_for_script(const Json& value) {
  // Invalid UTF-8 in a name is replaced rather than thrown on: a report must still be written.
  const std::string text = json_text(value);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    // These characters only occur inside JSON strings, where the \u form means the same.
    if (c == '<')
      out += "\\u003c";
    else if (c == '>')
      out += "\\u003e";
    else if (c == '&')
      out += "\\u0026";
    else
      out += c;
  }
  return out;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out((bytes.size() / 3) * 4, '\0');  // the whole groups, written in place; the tail appended
  char* to = out.data();
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3, to += 4) {
    const std::uint32_t v = (std::uint32_t(std::uint8_t(bytes[i])) << 16) | (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) |
                            std::uint32_t(std::uint8_t(bytes[i + 2]));
    to[0] = kAlphabet[(v >> 18) & 63];
    to[1] = kAlphabet[(v >> 12) & 63];
    to[2] = kAlphabet[(v >> 6) & 63];
    to[3] = kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const std::uint32_t v = (std::uint32_t(std::uint8_t(bytes[i])) << 16) | (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

namespace {
std::string latin1_to_utf8(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      out += c;
    } else {
      out += static_cast<char>(0xC0 | (u >> 6));
      out += static_cast<char>(0x80 | (u & 0x3F));
    }
  }
  return out;
}
}  // namespace

std::map<std::string, std::string> png_text_chunks(std::string_view bytes) {
  static constexpr std::string_view kSignature("\x89PNG\r\n\x1a\n", 8);
  std::map<std::string, std::string> out;
  if (bytes.substr(0, 8) != kSignature) return out;
  std::size_t at = 8;
  while (at + 12 <= bytes.size()) {
    const auto byte = [&](std::size_t k) { return std::uint32_t(std::uint8_t(bytes[at + k])); };
    const std::uint32_t length = (byte(0) << 24) | (byte(1) << 16) | (byte(2) << 8) | byte(3);
    const std::string_view type = bytes.substr(at + 4, 4);
    if (length > bytes.size() - at - 12) break;  // truncated: keep what was read
    const std::string_view data = bytes.substr(at + 8, length);
    if (type == "tEXt") {
      const std::size_t nul = data.find('\0');
      if (nul != std::string_view::npos) out[latin1_to_utf8(data.substr(0, nul))] = latin1_to_utf8(data.substr(nul + 1));
    }
    if (type == "IEND") break;
    at += 12 + length;
  }
  return out;
}

bool read_file_bytes(const std::filesystem::path& path, std::string& out) {
  try {
    out = io::read_text_file(path);  // a FIFO or a device in the run folder is refused, not waited on
    return true;
  } catch (const DataError&) {
    return false;
  }
}

}  // namespace caulk::report
