// A bound on how deeply a TOML text nests, checked before toml++ sees the text.
//
// toml++ parses recursively, one stack frame (or several) per level of nesting, so a dotted key
// 35,000 levels deep (70 KB) overflows the stack and kills the process. Every TOML reader goes
// through parse_toml (framework/src/toml_guard.hpp), which calls this scanner first. The scanner
// skips strings and comments exactly as TOML defines them and counts the levels toml++ would build:
// [table] header segments (+1 for [[array of tables]]), dotted key segments, arrays and inline
// tables. It is conservative: a float or a date with a fractional second counts one level more
// than it is, and on malformed text it may count more, never unboundedly fewer.
#pragma once
#include <optional>
#include <string_view>

namespace caulk {

// Deeper than any hand-written pipeline or manifest, and far from a stack overflow in any build
// (ASan included) on any thread.
inline constexpr int kMaxTomlNesting = 100;

struct TomlNestingExcess {
  int line = 0, column = 0;  // 1-based; the column counts characters (UTF-8 code points)
  int depth = 0;             // the depth reached there (limit + 1)
};

// Where `text` first nests deeper than `limit`, or nothing when it never does.
std::optional<TomlNestingExcess> find_toml_nesting_excess(std::string_view text, int limit = kMaxTomlNesting);

}  // namespace caulk
