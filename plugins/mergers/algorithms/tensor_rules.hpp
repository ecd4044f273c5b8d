// Per-tensor parameter values: a number, or a list of rules { match = "pattern", value = x } of
// which the first whose pattern matches a tensor's name wins (a rule without `match` matches
// every tensor), with a fallback when none does.
//
// A pattern is a glob unless it starts with "re:", in which case the rest is an ECMAScript regular
// expression. Both must match the whole tensor name. Globs: `*` any run of characters (dots
// included), `?` one character, `[abc]`, `[a-z]`, `[!abc]` one character of (or not of) a set;
// every other character stands for itself.
#pragma once
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "caulk/value.hpp"

#include "caulk/glob.hpp"

namespace caulk::merge {

class NamePattern {
 public:
  // Throws Error naming the pattern when the regex (or a glob's bracket) is malformed.
  static NamePattern parse(const std::string& text);
  bool matches(const std::string& name) const;
  const std::string& text() const { return text_; }
  bool is_regex() const { return regex_ != nullptr; }

 private:
  std::string text_;
  std::string glob_;
  std::shared_ptr<const std::regex> regex_;
};

// Glob matching on its own (whole string): caulk/glob.hpp.
using caulk::glob_matches;

struct TensorRule {
  std::optional<NamePattern> pattern;  // absent: matches every tensor
  double value = 0;
};

class TensorParameter {
 public:
  TensorParameter() = default;
  explicit TensorParameter(double constant) : fallback_(constant) {}
  TensorParameter(std::vector<TensorRule> rules, double fallback) : rules_(std::move(rules)), fallback_(fallback) {}

  // The value of the first rule that matches `tensor`, else the fallback.
  double at(const std::string& tensor) const;
  bool is_constant() const { return rules_.empty(); }
  const std::vector<TensorRule>& rules() const { return rules_; }

 private:
  std::vector<TensorRule> rules_;
  double fallback_ = 0;
};

// Reads a pipeline value: a number, or an array of tables { match = "...", value = number }.
// `what` names the parameter in errors (e.g. "lambda", "weights.alpha"). Values must lie in
// [lo, hi]. Throws Error with the value's location.
TensorParameter parse_tensor_parameter(const Value& v, const std::string& what, double fallback, double lo, double hi);
// The same check without building it: "" when fine, else the problem (for ParamSpec::validate).
std::string check_tensor_parameter(const Value& v, double lo, double hi);

}  // namespace caulk::merge
