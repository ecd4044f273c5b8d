#include "mergers/algorithms/tensor_rules.hpp"

#include <fmt/format.h>

#include <cmath>

#include "caulk/glob.hpp"

namespace caulk::merge {

NamePattern NamePattern::parse(const std::string& text) {
  NamePattern p;
  p.text_ = text;
  if (text.rfind("re:", 0) == 0) {
    try {
      p.regex_ = std::make_shared<const std::regex>(text.substr(3), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw Error(fmt::format("pattern '{}' is not a valid regular expression: {}", text, e.what()));
    }
    return p;
  }
  for (std::size_t i = 0; i < text.size(); ++i)
    if (text[i] == '[') {
      const std::size_t end = glob_bracket_end(text, i);
      if (end == std::string::npos) throw Error(fmt::format("glob '{}': the '[' at position {} is never closed", text, i + 1));
      i = end - 1;
    }
  p.glob_ = text;
  return p;
}

bool NamePattern::matches(const std::string& name) const {
  if (regex_) return std::regex_match(name, *regex_);
  return glob_matches(glob_, name);
}

double TensorParameter::at(const std::string& tensor) const {
  for (const TensorRule& r : rules_)
    if (!r.pattern || r.pattern->matches(tensor)) return r.value;
  return fallback_;
}

namespace {

std::string range_problem(double x, double lo, double hi) {
  if (!std::isfinite(x)) return fmt::format("{} is not a finite number", x);
  if (x < lo || x > hi) return fmt::format("{} is outside [{}, {}]", x, lo, hi);
  return {};
}

// "" when fine; otherwise the problem. Fills `out` when given.
std::string read_rules(const Value& v, double lo, double hi, std::vector<TensorRule>* out) {
  if (v.is_number()) return range_problem(v.as_number(), lo, hi);
  if (!v.is_array()) return "expected a number or a list of { match = \"pattern\", value = number } rules, got a " + v.kind_name();
  std::size_t index = 0;
  for (const Value& rule : v.as_array()) {
    ++index;
    if (!rule.is_table())
      return fmt::format("rule {} is a {}, not a table {{ match = \"pattern\", value = number }}", index, rule.kind_name());
    TensorRule r;
    bool has_value = false;
    for (const auto& [key, field] : rule.as_table()) {
      if (key == "match") {
        if (!field.is_string()) return fmt::format("rule {}: `match` must be a string", index);
        try {
          r.pattern = NamePattern::parse(field.as_string());
        } catch (const Error& e) {
          return fmt::format("rule {}: {}", index, e.what());
        }
      } else if (key == "value") {
        if (!field.is_number()) return fmt::format("rule {}: `value` must be a number", index);
        if (auto problem = range_problem(field.as_number(), lo, hi); !problem.empty()) return fmt::format("rule {}: {}", index, problem);
        r.value = field.as_number();
        has_value = true;
      } else {
        return fmt::format("rule {}: unknown key '{}' (a rule has `match` and `value`)", index, key);
      }
    }
    if (!has_value) return fmt::format("rule {} has no `value`", index);
    if (out) out->push_back(std::move(r));
  }
  return {};
}

}  // namespace

std::string check_tensor_parameter(const Value& v, double lo, double hi) { return read_rules(v, lo, hi, nullptr); }

TensorParameter parse_tensor_parameter(const Value& v, const std::string& what, double fallback, double lo, double hi) {
  std::vector<TensorRule> rules;
  if (auto problem = read_rules(v, lo, hi, &rules); !problem.empty()) {
    const std::string where = v.where().str();
    throw Error(fmt::format("{}{}`{}`: {}", where, where.empty() ? "" : ": ", what, problem));
  }
  if (v.is_number()) return TensorParameter(v.as_number());
  return TensorParameter(std::move(rules), fallback);
}

}  // namespace caulk::merge
