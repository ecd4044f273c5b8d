// One message per cause (caulk/failures.hpp): the units' errors of a node grouped into causes, and
// the failed nodes of a run grouped again. The node's error text is the record (run.json), so the
// run's grouping reads it back: the format written by unit_failures_message is parsed here only.
#include "caulk/failures.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>

namespace caulk {

namespace {

bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// `text` with each occurrence of `name` that stands on its own (not inside a longer word) replaced.
std::string replace_name(const std::string& text, const std::string& name, const std::string& with) {
  if (name.empty()) return text;
  std::string out;
  std::size_t pos = 0;
  while (true) {
    std::size_t at = text.find(name, pos);
    if (at == std::string::npos) break;
    const bool starts = at == 0 || !name_char(text[at - 1]) || !name_char(name.front());
    const std::size_t end = at + name.size();
    const bool ends = end == text.size() || !name_char(text[end]) || !name_char(name.back());
    out += text.substr(pos, at - pos);
    out += (starts && ends) ? with : name;
    pos = end;
  }
  return out + text.substr(pos);
}

// Names as shown ('a', or 'a' on rank 2), at most `limit` of them.
std::string listed(const std::vector<std::string>& names, std::size_t limit) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += fmt::format(" and {} more", names.size() - limit);
  return out;
}

}  // namespace

std::string unit_failures_message(const std::string& what, std::size_t total, const std::vector<UnitFailure>& failures) {
  struct Group {
    std::string cause, first_error;
    std::vector<std::string> names;
  };
  std::vector<Group> groups;
  const std::string placeholder = "<" + what + ">";
  for (const auto& f : failures) {
    std::string error = f.error;
    // "model 'a': ..." under the unit "model 'a'" would name it twice.
    const std::string own = fmt::format("{} '{}': ", what, f.name);
    if (error.rfind(own, 0) == 0) error = error.substr(own.size());
    const std::string cause = replace_name(error, f.name, placeholder);
    const std::string label = f.rank >= 0 ? fmt::format("{}' on rank {}", f.name, f.rank) : f.name + "'";
    auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) { return x.cause == cause; });
    if (g == groups.end()) {
      groups.push_back({cause, error, {}});
      g = groups.end() - 1;
    }
    g->names.push_back(label);
  }
  std::string out = fmt::format("{} of {} {}s failed:", failures.size(), total, what);
  for (const auto& g : groups) {
    if (g.names.size() == 1) {
      out += fmt::format("\n  {} '{}: {}", what, g.names.front(), g.first_error);
    } else {
      std::string names;
      for (std::size_t i = 0; i < g.names.size(); ++i) names += (i ? ", '" : "'") + g.names[i];
      out += fmt::format("\n  {} {}s ({}): {}", g.names.size(), what, names, g.cause);
    }
  }
  return out;
}

std::vector<FailureCause> group_failures(const std::vector<NodeFailure>& failed) {
  if (failed.empty()) return {};  // before the patterns below are compiled (a run that succeeded)
  static const std::regex header(R"(^(\d+) of (\d+) (\S+)s failed:$)");
  // A unit as unit_failures_message writes it: 'name', or 'name' on rank N (names are shown so).
  static const std::string unit = R"('[^']*'(?: on rank \d+)?)";
  static const std::regex one("^  (\\S+) (" + unit + "): (.*)$");
  static const std::regex many("^  (\\d+) (\\S+)s \\(((?:" + unit + ")(?:, " + unit + ")*)\\): (.*)$");
  static const std::regex each(unit);
  std::vector<FailureCause> causes;
  auto add = [&](const std::string& message, const std::string& node, const std::string& kind, std::size_t units,
                 const std::vector<std::string>& names) {
    auto c = std::find_if(causes.begin(), causes.end(), [&](const FailureCause& x) { return x.message == message && x.unit_kind == kind; });
    if (c == causes.end()) {
      causes.push_back({message, {}, kind, 0, {}});
      c = causes.end() - 1;
    }
    if (std::find(c->nodes.begin(), c->nodes.end(), node) == c->nodes.end()) c->nodes.push_back(node);
    c->units += units;
    for (const auto& n : names)
      if (std::find(c->unit_names.begin(), c->unit_names.end(), n) == c->unit_names.end()) c->unit_names.push_back(n);
  };
  for (const auto& f : failed) {
    const std::string node = fmt::format("'{}' ({})", f.id, f.type);
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start <= f.error.size()) {
      std::size_t end = f.error.find('\n', start);
      if (end == std::string::npos) end = f.error.size();
      lines.push_back(f.error.substr(start, end - start));
      start = end + 1;
    }
    std::smatch m;
    bool parsed = lines.size() > 1 && std::regex_match(lines.front(), m, header);
    struct Part {
      std::string message, kind;
      std::size_t units;
      std::vector<std::string> names;
    };
    std::vector<Part> parts;
    for (std::size_t i = 1; parsed && i < lines.size(); ++i) {
      std::smatch u;
      if (std::regex_match(lines[i], u, many)) {
        std::vector<std::string> names;
        const std::string list = u[3].str();
        for (std::sregex_iterator it(list.begin(), list.end(), each), end; it != end; ++it) names.push_back(it->str());
        parts.push_back({u[4].str(), u[2].str(), static_cast<std::size_t>(std::stoul(u[1].str())), names});
      } else if (std::regex_match(lines[i], u, one)) {
        // A cause hitting one unit names it; the same cause under another unit differs, and is kept apart.
        parts.push_back({u[3].str(), u[1].str(), 1, {u[2].str()}});
      } else {
        parsed = false;  // not the units' format after all (a message with several lines)
      }
    }
    if (!parsed) {
      add(f.error, node, "", 0, {});
      continue;
    }
    for (const auto& p : parts) add(p.message, node, p.kind, p.units, p.names);
  }
  return causes;
}

std::string FailureCause::str() const {
  std::string node_list;
  for (std::size_t i = 0; i < nodes.size(); ++i) node_list += (i ? (i + 1 == nodes.size() ? " and " : ", ") : "") + nodes[i];
  if (unit_kind.empty()) return fmt::format("node{} {} failed: {}", nodes.size() == 1 ? "" : "s", node_list, message);
  const std::string failed = fmt::format("node{} {} failed: ", nodes.size() == 1 ? "" : "s", node_list);
  if (units == 1 && nodes.size() == 1)
    return failed + fmt::format("{} {}: {}", unit_kind, unit_names.empty() ? "" : unit_names.front(), message);
  return failed + fmt::format("{} (in {} {}s of {} node{}; {}s {})", message, units, unit_kind, nodes.size(), nodes.size() == 1 ? "" : "s",
                              unit_kind, listed(unit_names, 8));
}

}  // namespace caulk
