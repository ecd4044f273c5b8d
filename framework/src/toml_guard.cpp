#include "toml_guard.hpp"

#include "caulk/toml_nesting.hpp"

namespace caulk::detail {

toml::table parse_toml(std::string_view text, const std::string& file) {
  if (auto excess = find_toml_nesting_excess(text, kMaxTomlNesting))
    throw TomlTextError({file, excess->line, excess->column},
                        "nests more than " + std::to_string(kMaxTomlNesting) +
                            " levels deep ([table] headers, dotted keys, arrays and inline tables together); "
                            "caulk refuses such files before parsing them");
  try {
    return toml::parse(text, std::string_view(file));
  } catch (const toml::parse_error& e) {
    const auto& s = e.source();
    throw TomlTextError({file, static_cast<int>(s.begin.line), static_cast<int>(s.begin.column)}, std::string(e.description()));
  }
}

}  // namespace caulk::detail
