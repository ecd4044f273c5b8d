// Defect 2 of issue 18: a dotted key 35,000 levels deep overflowed toml++'s stack (SIGSEGV) in a
// pipeline, a hub, checkpoint or predictions manifest, and in `caulk check`. The nesting scanner
// (caulk/toml_nesting.hpp) must count what toml++ builds, skip strings and comments exactly, and
// every TOML reader must go through it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <random>
#include <string>

#include "caulk/manifest.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/toml_nesting.hpp"
#include "cli.hpp"
#include "io_test_support.hpp"
#include "npy_bytes.hpp"

using caulk::find_toml_nesting_excess;
using caulk::test::data_error_message;
using namespace caulk::testing;
using ::testing::HasSubstr;

namespace {

// The depth the scanner finds: the smallest limit it accepts.
int scanned_depth(const std::string& text) {
  for (int limit = 0; limit < 1000; ++limit)
    if (!find_toml_nesting_excess(text, limit)) return limit;
  return 1000;
}

// The deepest node toml++ builds (the root's values are at depth 1): the independent reference.
int tree_depth(const toml::node& n, int depth) {
  int deepest = depth;
  if (auto t = n.as_table())
    for (const auto& [k, v] : *t) deepest = std::max(deepest, tree_depth(v, depth + 1));
  if (auto a = n.as_array())
    for (const auto& e : *a) deepest = std::max(deepest, tree_depth(e, depth + 1));
  return deepest;
}

int parsed_depth(const std::string& text) { return tree_depth(toml::parse(text), 0); }

std::string dotted_key(int levels) {
  std::string key = "a";
  for (int i = 1; i < levels; ++i) key += ".a";
  return key;
}

TEST(TomlNesting, CountsWhatTomlxxBuilds) {
  const char* cases[] = {
      "a = 1",
      "a.b.c = 1",
      "[a.b.c]\nd = 1",
      "[[a.b]]\nc = 1",
      "[[a]]\n[a.b]\nc = 1",
      "[[a]]\n[[a.b]]\n[[a.b.c]]\nd = 1",
      "[[ \"a\" ]]\n[ a . 'b' ]\nc = 1",
      "x = {a={b={c=1}}}",
      "x = {a.b.c = 1}",
      "a = [[[1]]]",
      "a = [[], [[]]]",
      "a = [{x = 1}, {y = [1, {z = 2}]}]",
      "a.b = {}",
      "a = [\n  1, # a comment with [[[ and a.b.c.d\n  [2, [3]],\n]",
      "[t]\nx = \"\"\"\nq\"\"\"\"\ny.z = 1",
      "\xEF\xBB\xBF[t.u]\nv = 'w'",
  };
  for (const char* text : cases) EXPECT_EQ(scanned_depth(text), parsed_depth(text)) << text;
}

TEST(TomlNesting, SkipsStringsAndComments) {
  const std::string deep = "[[[[{{{{" + dotted_key(500);
  for (const std::string& text : {
           "s = \"" + deep + "\"",
           "s = '" + deep + "'",
           "s = \"\"\"\n" + deep + "\n\"\"\"",
           "s = '''\n" + deep + "\n'''",
           "s = \"a \\\" " + deep + "\"",
           "# " + deep,
           "s = 1 # " + deep,
           "\"" + dotted_key(200) + "\" = 1",
       })
    EXPECT_EQ(find_toml_nesting_excess(text, 3), std::nullopt) << text.substr(0, 60);
}

TEST(TomlNesting, IsNotFooledIntoHidingDepth) {
  // Each prefix must end its string where TOML does, so the deep key after it is still seen.
  const std::string deep = "\n" + dotted_key(50) + " = 1\n";
  for (const std::string& prefix : {
           std::string("s = \"\"\"a\"\"\"\"\""),  // two quotes before the closing delimiter belong to the string
           std::string("s = '''a'''''"),
           std::string("s = \"a\\\\\""),       // an escaped backslash, then the closing quote
           std::string("s = 'a\\'"),           // no escapes in a literal string
           std::string("s = \"unterminated"),  // a string ends at the end of its line
           std::string("a = [ # ]\n]"),
       }) {
    auto excess = find_toml_nesting_excess(prefix + deep, 20);
    ASSERT_TRUE(excess) << prefix;
    EXPECT_EQ(excess->depth, 21) << prefix;
  }
}

TEST(TomlNesting, LocatesTheFirstLevelTooDeep) {
  auto excess = find_toml_nesting_excess("x = 1\n# \xC3\xA9\n  \xC3\xA9.b.c.d = 2\n", 3);
  ASSERT_TRUE(excess);
  EXPECT_EQ(excess->line, 3);
  EXPECT_EQ(excess->column, 9);  // é counts as one column
  EXPECT_EQ(excess->depth, 4);
  excess = find_toml_nesting_excess("a = " + std::string(300, '['), caulk::kMaxTomlNesting);
  ASSERT_TRUE(excess);
  EXPECT_EQ(excess->column, 5 + caulk::kMaxTomlNesting);
}

// Random documents toml++ accepts: headers, arrays of tables, dotted keys, inline tables, nested
// arrays, strings holding brackets, dots and quotes, comments. The scanner must find exactly the
// depth of the tree toml++ builds (no floats or dates, whose dots it counts as one more level).
class RandomToml {
 public:
  explicit RandomToml(unsigned seed) : rng_(seed) {}

  std::string document() {
    std::string text;
    for (int i = pick(0, 3); i > 0; --i) text += key_value(pick(1, 3));
    std::vector<std::string> arrays_of_tables;  // paths declared with [[...]]
    auto any_array = [&] { return arrays_of_tables[static_cast<std::size_t>(pick(0, static_cast<int>(arrays_of_tables.size()) - 1))]; };
    for (int i = pick(0, 6); i > 0; --i) {
      const int kind = arrays_of_tables.empty() ? pick(0, 1) : pick(0, 4);
      std::string header;
      if (kind == 0) header = "[" + dotted(pick(1, 4)) + "]";  // a new table
      if (kind == 1 || kind == 4) {                            // a new array of tables
        const std::string path = (kind == 4 ? any_array() + (pick(0, 1) ? " . " : ".") : "") + dotted(pick(1, 3));
        arrays_of_tables.push_back(path);
        header = "[[" + path + "]]";
      }
      if (kind == 2) header = "[[" + any_array() + "]]";                           // another element
      if (kind == 3) header = "[" + any_array() + "." + dotted(pick(1, 2)) + "]";  // a table in the last element
      text += (pick(0, 1) ? "  " : "") + header + (pick(0, 1) ? " # [x.y.z] \"" : "") + "\n";
      for (int j = pick(0, 3); j > 0; --j) text += key_value(pick(1, 3));
    }
    return text;
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::string name() {
    const int n = counter_++;
    switch (pick(0, 2)) {
      case 0:
        return "k" + std::to_string(n);
      case 1:
        return "\"q.#[" + std::to_string(n) + "\"";
      default:
        return "'l]" + std::to_string(n) + "'";
    }
  }
  std::string dotted(int segments) {
    std::string key = name();
    for (int i = 1; i < segments; ++i) key += (pick(0, 1) ? " . " : ".") + name();
    return key;
  }
  std::string scalar() {
    switch (pick(0, 5)) {
      case 0:
        return std::to_string(pick(-5, 5));
      case 1:
        return "true";
      case 2:
        return "\"s # [ { . \\\" '\"";
      case 3:
        return "'lit \" [[ {{ a.b'";
      case 4:
        return "\"\"\"\nmulti \"\" [[\n.a.b \"\"\"";
      default:
        return "'''\nraw ' '' {{ '''";
    }
  }
  std::string value(int budget) {
    const int kind = budget > 0 ? pick(0, 2) : 0;
    if (kind == 0) return scalar();
    if (kind == 1) {
      std::string a = "[";
      for (int i = pick(0, 3); i > 0; --i) a += (pick(0, 1) ? "\n  " : " ") + value(budget - 1) + ",";
      return a + (pick(0, 1) ? " # ] }\n" : " ") + "]";
    }
    std::string t = "{";
    for (int i = pick(0, 3); i > 0; --i) t += std::string(t.size() > 1 ? ", " : " ") + dotted(pick(1, 2)) + " = " + value(budget - 1);
    return t + " }";
  }
  std::string key_value(int segments) { return dotted(segments) + " = " + value(pick(0, 4)) + (pick(0, 1) ? " # a.b.c [[" : "") + "\n"; }

  std::mt19937 rng_;
  int counter_ = 0;
};

TEST(TomlNesting, FindsTheDepthTomlxxBuildsOnRandomDocuments) {
  int checked = 0;
  for (unsigned seed = 1; seed <= 3000; ++seed) {
    const std::string text = RandomToml(seed).document();
    toml::table tree;
    try {
      tree = toml::parse(text);
    } catch (const toml::parse_error&) {
      continue;  // the generator may define a table twice
    }
    ASSERT_EQ(scanned_depth(text), tree_depth(tree, 0)) << "seed " << seed << ":\n" << text;
    ++checked;
  }
  EXPECT_GT(checked, 2000);
}

TEST(TomlNesting, TheRepositorysFilesAreFarBelowTheLimit) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(source_dir())) {
    const auto& p = entry.path();
    const std::string name = p.string();
    // Not the fuzz seeds: some nest deeply on purpose, and raw toml++ would overflow on them.
    if (p.extension() != ".toml" || name.find("/build") != std::string::npos || name.find("/fuzz/") != std::string::npos) continue;
    const std::string text = read_file(p);
    try {
      EXPECT_EQ(scanned_depth(text), parsed_depth(text)) << p;
      EXPECT_LE(scanned_depth(text), 10) << p;
    } catch (const toml::parse_error&) {
      // an intentionally malformed file
    }
  }
}

// --------------------------------------------------------------------------- every TOML reader

const std::string kDeepKey = dotted_key(35000) + " = 1\n";  // 70 KB, the attack's file

TEST(TomlNesting, PipelineTextIsRefusedWithItsLocation) {
  try {
    caulk::parse_pipeline_text("[pipeline]\nname = \"x\"\n" + kDeepKey, "deep.toml");
    FAIL() << "no error";
  } catch (const caulk::PipelineError& e) {
    EXPECT_THAT(e.what(), HasSubstr("deep.toml:3:199: error: nests more than 100 levels deep"));
  }
}

TEST(TomlNesting, ManifestsOfEverySchemaAreRefusedWithTheirLocation) {
  for (const caulk::ManifestSchema* schema : {&caulk::hub_manifest_schema(), &caulk::checkpoint_hub_schema()}) {
    EXPECT_THAT(data_error_message([&] { caulk::parse_manifest_text("[hub]\n" + kDeepKey, "hub.toml", *schema); }),
                HasSubstr("hub.toml:2:199: nests more than 100 levels deep"));
    EXPECT_THAT(data_error_message([&] { caulk::parse_manifest_text("[" + dotted_key(35000) + "]\n", "hub.toml", *schema); }),
                HasSubstr("hub.toml:1:1: nests more than 100 levels deep"));
    EXPECT_THAT(data_error_message([&] { caulk::parse_manifest_text("x = " + std::string(35000, '[') + "\n", "hub.toml", *schema); }),
                HasSubstr("hub.toml:1:105: nests more than 100 levels deep"));
    EXPECT_THAT(data_error_message([&] {
                  std::string inline_tables = "x = ";
                  for (int i = 0; i < 20000; ++i) inline_tables += "{a=";
                  caulk::parse_manifest_text(inline_tables, "hub.toml", *schema);
                }),
                HasSubstr("hub.toml:1:303: nests more than 100 levels deep"));
  }
}

TEST(TomlNesting, ADeepOverrideIsReadAsPlainText) {
  auto config = caulk::parse_pipeline_text("[pipeline]\nname = \"x\"\n[[node]]\nid = \"n\"\ntype = \"t\"\n", "p.toml");
  const std::string deep = std::string(35000, '[');
  caulk::apply_overrides(config, {"n.p=" + deep});
  ASSERT_EQ(config.nodes.front().params.size(), 1u);
  EXPECT_EQ(config.nodes.front().params.front().second.as_string(), deep);
}

// Through the command line: each of these crashed with SIGSEGV before the bound.
class DeepTomlFiles : public ::testing::Test {
 protected:
  std::string pipeline(const std::string& nodes) { return "[pipeline]\nname = \"deep\"\n" + nodes; }
  TempDir dir_;
};

TEST_F(DeepTomlFiles, CheckRefusesADeepPipelineWithExitCode2) {
  dir_.write("deep.toml", pipeline(kDeepKey));
  const CliResult r = run_caulk({"check", (dir_ / "deep.toml").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("deep.toml:3:199: error: nests more than 100 levels deep"));
}

TEST_F(DeepTomlFiles, RunFailsCleanlyOnADeepManifestOfEachKind) {
  const std::string header = "[hub]\nname = \"h\"\n";
  dir_.write("labels.npy", npy_i64({0, 1, 0, 1}));
  struct Case {
    std::string node;
  } cases[] = {
      {"[[node]]\nid = \"m\"\ntype = \"adapter.precomputed\"\nparams = { manifest = \"hub.toml\" }\n"},
      {"[[node]]\nid = \"m\"\ntype = \"checkpoint.load\"\nparams = { manifest = \"hub.toml\" }\n"},
      {"[[node]]\nid = \"m\"\ntype = \"predictions.load\"\nparams = { manifest = \"hub.toml\" }\n"},
  };
  for (const auto& c : cases) {
    dir_.write("hub.toml", header + kDeepKey);
    dir_.write("p.toml", pipeline(c.node));
    // The data check reads the manifest before running (exit 2); the node itself as it runs (exit 1).
    CliResult r = run_caulk({"run", (dir_ / "p.toml").string(), "--out", (dir_ / "out").string()});
    EXPECT_EQ(r.exit_code, 2) << c.node << r.err;
    EXPECT_THAT(r.err, HasSubstr("hub.toml:3:199: nests more than 100 levels deep")) << c.node;
    r = run_caulk({"run", (dir_ / "p.toml").string(), "--out", (dir_ / "out").string(), "--no-data-check"});
    EXPECT_EQ(r.exit_code, 1) << c.node << r.err;
    EXPECT_THAT(r.err, HasSubstr("hub.toml:3:199: nests more than 100 levels deep")) << c.node;
  }
}

}  // namespace
