#include <gtest/gtest.h>

#include "caulk/error.hpp"
#include "mergers/algorithms/tensor_rules.hpp"

namespace caulk::merge {
namespace {

TEST(Glob, StarQuestionAndBrackets) {
  EXPECT_TRUE(glob_matches("layers.*.weight", "layers.0.weight"));
  EXPECT_TRUE(glob_matches("layers.*.weight", "layers.10.attn.weight"));  // * crosses dots
  EXPECT_FALSE(glob_matches("layers.*.weight", "layers.0.bias"));
  EXPECT_TRUE(glob_matches("*", ""));
  EXPECT_TRUE(glob_matches("*bias", "layers.1.bias"));
  EXPECT_FALSE(glob_matches("bias", "layers.1.bias"));  // whole name only
  EXPECT_TRUE(glob_matches("layers.?.bias", "layers.3.bias"));
  EXPECT_FALSE(glob_matches("layers.?.bias", "layers.12.bias"));
  EXPECT_TRUE(glob_matches("layers.[0-2].*", "layers.2.weight"));
  EXPECT_FALSE(glob_matches("layers.[0-2].*", "layers.3.weight"));
  EXPECT_TRUE(glob_matches("layers.[!0-2].*", "layers.3.weight"));
  EXPECT_FALSE(glob_matches("layers.[!0-2].*", "layers.1.weight"));
  EXPECT_TRUE(glob_matches("a[]]b", "a]b"));  // a leading ] is a member
  EXPECT_TRUE(glob_matches("*a*a*a*", "xaxxaxa"));
  EXPECT_FALSE(glob_matches("*a*a*a*", "xaxxax"));
  EXPECT_TRUE(glob_matches("layers.0.weight", "layers.0.weight"));
}

TEST(NamePattern, RegexIsMarkedByThePrefix) {
  const NamePattern re = NamePattern::parse("re:layers\\.[0-9]+\\.(weight|bias)");
  EXPECT_TRUE(re.is_regex());
  EXPECT_TRUE(re.matches("layers.12.bias"));
  EXPECT_FALSE(re.matches("layers.12.bias.extra"));  // whole name
  const NamePattern glob = NamePattern::parse("layers.*");
  EXPECT_FALSE(glob.is_regex());
  EXPECT_TRUE(glob.matches("layers.1.weight"));
  // Without the prefix, regex syntax is taken literally by the glob.
  EXPECT_FALSE(NamePattern::parse("layers\\..*").matches("layers.1"));
}

TEST(NamePattern, MalformedPatternsAreErrors) {
  EXPECT_THROW(NamePattern::parse("re:layers.(0"), Error);
  EXPECT_THROW(NamePattern::parse("layers.[0-2"), Error);
  try {
    NamePattern::parse("re:(");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("re:("), std::string::npos) << e.what();
  }
}

Value rule(const std::string& match, double value) {
  Value::Table t;
  if (!match.empty()) t.emplace_back("match", Value(match));
  t.emplace_back("value", Value(value));
  return Value(std::move(t));
}

TEST(TensorParameter, FirstMatchWinsThenTheCatchAllThenTheFallback) {
  const Value rules(Value::Array{rule("layers.0.*", 0.1), rule("re:layers\\.[01]\\..*", 0.2), rule("", 0.9)});
  const TensorParameter p = parse_tensor_parameter(rules, "lambda", 1.0, 0, 10);
  EXPECT_EQ(p.at("layers.0.weight"), 0.1);  // both of the first two match: the first wins
  EXPECT_EQ(p.at("layers.1.weight"), 0.2);
  EXPECT_EQ(p.at("head.weight"), 0.9);  // the rule without match
  const TensorParameter q = parse_tensor_parameter(Value(Value::Array{rule("layers.*", 0.5)}), "lambda", 1.0, 0, 10);
  EXPECT_EQ(q.at("layers.3.bias"), 0.5);
  EXPECT_EQ(q.at("head.bias"), 1.0);  // no rule matches: the fallback
  const TensorParameter c = parse_tensor_parameter(Value(0.25), "lambda", 1.0, 0, 10);
  EXPECT_TRUE(c.is_constant());
  EXPECT_EQ(c.at("anything"), 0.25);
}

TEST(TensorParameter, BadRulesAreNamed) {
  EXPECT_NE(check_tensor_parameter(Value("x"), 0, 1), "");
  EXPECT_NE(check_tensor_parameter(Value(2.0), 0, 1).find("outside"), std::string::npos);
  Value::Table no_value{{"match", Value("a*")}};
  EXPECT_NE(check_tensor_parameter(Value(Value::Array{Value(no_value)}), 0, 1).find("no `value`"), std::string::npos);
  Value::Table unknown{{"value", Value(0.5)}, {"filter", Value("a")}};
  EXPECT_NE(check_tensor_parameter(Value(Value::Array{Value(unknown)}), 0, 1).find("'filter'"), std::string::npos);
  EXPECT_NE(check_tensor_parameter(Value(Value::Array{rule("re:(", 0.5)}), 0, 1).find("regular expression"), std::string::npos);
  EXPECT_EQ(check_tensor_parameter(Value(Value::Array{rule("a*", 0.5), rule("", 1.0)}), 0, 1), "");
  EXPECT_THROW(parse_tensor_parameter(Value(Value::Array{rule("a*", 5)}), "t", 0.5, 0, 1), Error);
}

}  // namespace
}  // namespace caulk::merge
