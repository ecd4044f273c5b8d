// The one way caulk parses TOML text (pipelines, manifests, --set values): nesting is bounded
// before toml++ sees the text (caulk/toml_nesting.hpp), so no file can overflow the parser's stack.
#pragma once
#include <toml++/toml.h>

#include <string>
#include <string_view>

#include "caulk/error.hpp"

namespace caulk::detail {

// A TOML text that cannot be parsed: where, and what is wrong.
class TomlTextError : public Error {
 public:
  TomlTextError(SourceLocation where, std::string problem)
      : Error(where.str() + ": " + problem), where_(std::move(where)), problem_(std::move(problem)) {}
  const SourceLocation& where() const { return where_; }
  const std::string& problem() const { return problem_; }

 private:
  SourceLocation where_;
  std::string problem_;
};

// Parses `text`; `file` names it in locations. Throws TomlTextError.
toml::table parse_toml(std::string_view text, const std::string& file);

}  // namespace caulk::detail
