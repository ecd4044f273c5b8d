#include "caulk/glob.hpp"

namespace caulk {

namespace {

// Matches one bracket expression starting at glob[i] == '['; sets `end` past its ']'. Returns
// whether `c` is in the set. Assumes the bracket was validated (it closes).
bool bracket_matches(const std::string& glob, std::size_t i, char c, std::size_t& end) {
  std::size_t j = i + 1;
  bool negate = false;
  if (j < glob.size() && glob[j] == '!') negate = true, ++j;
  bool found = false, first = true;
  while (j < glob.size() && (glob[j] != ']' || first)) {
    first = false;
    if (j + 2 < glob.size() && glob[j + 1] == '-' && glob[j + 2] != ']') {
      if (glob[j] <= c && c <= glob[j + 2]) found = true;
      j += 3;
    } else {
      if (glob[j] == c) found = true;
      ++j;
    }
  }
  end = j + 1;
  return found != negate;
}

}  // namespace

// The index past the ']' closing the bracket at glob[i], or npos when it never closes.
std::size_t glob_bracket_end(const std::string& glob, std::size_t i) {
  std::size_t j = i + 1;
  if (j < glob.size() && glob[j] == '!') ++j;
  if (j < glob.size() && glob[j] == ']') ++j;  // a leading ']' is a member
  while (j < glob.size() && glob[j] != ']') ++j;
  return j < glob.size() ? j + 1 : std::string::npos;
}

bool glob_matches(const std::string& glob, const std::string& name) {
  // Greedy with backtracking to the last '*': linear in practice, no recursion.
  std::size_t g = 0, n = 0, star_g = std::string::npos, star_n = 0;
  while (n < name.size()) {
    if (g < glob.size() && glob[g] == '*') {
      star_g = g++;
      star_n = n;
      continue;
    }
    if (g < glob.size()) {
      if (glob[g] == '?') {
        ++g, ++n;
        continue;
      }
      if (glob[g] == '[') {
        std::size_t end = 0;
        if (bracket_matches(glob, g, name[n], end)) {
          g = end, ++n;
          continue;
        }
      } else if (glob[g] == name[n]) {
        ++g, ++n;
        continue;
      }
    }
    if (star_g == std::string::npos) return false;
    g = star_g + 1;
    n = ++star_n;
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

}  // namespace caulk
