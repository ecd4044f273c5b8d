// Shell-style globs over names (tensor and parameter names): '*' any run of characters, dots
// included; '?' one character; '[abc]', '[a-z]' and '[!x]' one character of (or not of) a set.
// The whole name must match. One matcher for every node that picks names by pattern.
#pragma once
#include <cstddef>
#include <string>

namespace caulk {

bool glob_matches(const std::string& glob, const std::string& name);

// The index past the ']' closing the bracket at glob[i], or npos when it never closes (for
// checking a pattern before use; glob_matches treats an unclosed bracket as matching nothing).
std::size_t glob_bracket_end(const std::string& glob, std::size_t i);

}  // namespace caulk
