// Pipeline parsing and validation: every diagnostic, with its location and message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "caulk/pipeline.hpp"
#include "caulk/registry.hpp"
#include "fake_nodes.hpp"
#include "temp_dir.hpp"

using namespace caulk;
using ::testing::HasSubstr;

namespace {

class Validation : public ::testing::Test {
 protected:
  void SetUp() override { caulk::testing::register_fake_nodes(registry_); }

  // Every diagnostic's text for a pipeline written to a file called p.toml.
  std::vector<std::string> problems(const std::string& text, const std::vector<std::string>& sets = {}) {
    auto file = dir_.write("p.toml", text);
    try {
      PipelineConfig c = parse_pipeline_file(file);
      apply_overrides(c, sets);
      validate_pipeline(std::move(c), registry_);
    } catch (const PipelineError& e) {
      std::vector<std::string> out;
      for (const auto& d : e.diagnostics()) out.push_back(d.str());
      return out;
    }
    return {};
  }
  Pipeline valid(const std::string& text, const std::vector<std::string>& sets = {}) {
    auto file = dir_.write("p.toml", text);
    PipelineConfig c = parse_pipeline_file(file);
    apply_overrides(c, sets);
    return validate_pipeline(std::move(c), registry_);
  }
  std::string file() const { return (dir_ / "p.toml").string(); }

  Registry registry_;
  caulk::testing::TempDir dir_;
};

const char* kGood = R"([pipeline]
name = "good"

[[node]]
id = "task"
type = "test.source"
params = { rows = 5, file = "data/x.npy" }

[[node]]
id = "features"
type = "test.embed"

[[node]]
id = "rank"
type = "test.rank"
inputs = { features = "features", data = "task.data" }

[[node]]
id = "all"
type = "test.collect"
inputs = { scores = ["rank"] }
)";

TEST_F(Validation, AValidPipelineResolvesDefaultsPathsAndOrder) {
  Pipeline p = valid(kGood);
  ASSERT_EQ(p.nodes.size(), 4u);
  EXPECT_EQ(p.nodes[2].params.integer("max_iter"), 11);  // default filled in
  EXPECT_EQ(p.nodes[0].params.integer("rows"), 5);
  // Relative to the pipeline file, not the current directory.
  EXPECT_EQ(p.nodes[0].params.path("file"), (dir_.path() / "data/x.npy").lexically_normal());
  EXPECT_EQ(p.order, (std::vector<std::size_t>{0, 1, 2, 3}));
  EXPECT_EQ(p.nodes[2].depends_on, (std::vector<std::size_t>{0, 1}));
}

TEST_F(Validation, SyntaxErrorsCarryLineAndColumn) {
  auto ps = problems("[pipeline]\nname = \"x\"\n[[node]]\nid = \"a\ntype = 3\n");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_THAT(ps[0], HasSubstr(file() + ":4:"));
  EXPECT_THAT(ps[0], HasSubstr("error:"));
}

TEST_F(Validation, UnknownNodeTypeSuggestsTheClosest) {
  auto ps = problems("[pipeline]\nname = \"x\"\n[[node]]\nid = \"r\"\ntype = \"test.rnak\"\n");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0], file() +
                       ":5:8: error: node 'r': unknown node type 'test.rnak' (did you mean 'test.rank'?); "
                       "`caulk nodes` lists them");
}

TEST_F(Validation, ParameterProblemsAreEachReported) {
  auto ps = problems(R"([pipeline]
name = "x"
[[node]]
id = "task"
type = "test.source"
params = { rows = 0, fail = "yes", colour = 1 }
[[node]]
id = "f"
type = "test.embed"
params = { kind = "alpah" }
[[node]]
id = "r"
type = "test.rank"
inputs = { features = "f", data = "task" }
params = { max_iter = 2.5, eps = 2, mx_iter = 3 }
)");
  ASSERT_EQ(ps.size(), 7u) << ::testing::PrintToString(ps);
  EXPECT_EQ(ps[0], file() + ":6:19: error: node 'task': parameter 'rows' must be in [1, 100], found 0");
  EXPECT_EQ(ps[1], file() + ":6:29: error: node 'task': parameter 'fail' must be a boolean (true or false), found a string \"yes\"");
  EXPECT_THAT(ps[2],
              HasSubstr(":6:45: error: node 'task': unknown parameter 'colour' for test.source (it takes 'rows', 'fail' and 'file')"));
  EXPECT_EQ(
      ps[3],
      file() +
          ":10:19: error: node 'f': parameter 'kind' must be one of \"alpha\", \"beta\", \"a\", found \"alpah\" (did you mean 'alpha'?)");
  EXPECT_EQ(ps[4], file() + ":15:23: error: node 'r': parameter 'max_iter' must be an integer, found a float 2.5");
  EXPECT_EQ(ps[5], file() + ":15:34: error: node 'r': parameter 'eps' must be in [0, 1], found 2");
  EXPECT_THAT(ps[6], HasSubstr("node 'r': unknown parameter 'mx_iter' for test.rank (did you mean 'max_iter'?)"));
}

TEST_F(Validation, MissingRequiredParameterNamesTheNode) {
  registry_.add_node_type({NodeSpec("test.needs", "needs a path").output("t", "Table", "t").param(ParamSpec::path("labels", "labels file")),
                           [] { return std::unique_ptr<Node>(); },
                           "fake",
                           nullptr,
                           nullptr,
                           {}});
  auto ps = problems("[pipeline]\nname = \"x\"\n[[node]]\nid = \"n\"\ntype = \"test.needs\"\n");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0], file() + ":3:1: error: node 'n': missing required parameter 'labels' (path: labels file)");
}

TEST_F(Validation, TypeMismatchNamesBothSidesAndTypes) {
  auto ps = problems(R"([pipeline]
name = "x"
[[node]]
id = "task"
type = "test.source"
[[node]]
id = "logme"
type = "test.rank"
inputs = { features = "task", data = "task" }
)");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0], file() + ":9:23: error: input 'features' of node 'logme' expects Embeddings but 'task' produces Dataset");
}

TEST_F(Validation, PortProblems) {
  auto ps = problems(R"([pipeline]
name = "x"
[[node]]
id = "task"
type = "test.source"
[[node]]
id = "f"
type = "test.embed"
[[node]]
id = "r"
type = "test.rank"
inputs = { feature = "f", data = ["task", "task"] }
[[node]]
id = "r2"
type = "test.rank"
inputs = { features = "f.out", data = "tsak" }
)");
  // An input that names an unknown node is reported once, not also as "not connected".
  ASSERT_EQ(ps.size(), 5u) << ::testing::PrintToString(ps);
  EXPECT_THAT(ps[0], HasSubstr(":9:1: error: node 'r': input 'features' (Embeddings) is not connected"));
  EXPECT_THAT(ps[1], HasSubstr(":12:12: error: node 'r': unknown input port 'feature' for test.rank (did you mean 'features'?)"));
  EXPECT_THAT(ps[2], HasSubstr(":12:27: error: node 'r': input 'data' takes one source, found 2"));
  EXPECT_THAT(ps[3], HasSubstr(":16:23: error: node 'r2': input 'features': node 'f' (test.embed) has no output 'out'"));
  EXPECT_THAT(ps[4], HasSubstr(":16:39: error: node 'r2': input 'data' names unknown node 'tsak' (did you mean 'task'?)"));
}

TEST_F(Validation, DuplicateIdsPointAtBoth) {
  auto ps =
      problems("[pipeline]\nname = \"x\"\n[[node]]\nid = \"a\"\ntype = \"test.source\"\n[[node]]\nid = \"a\"\ntype = \"test.embed\"\n");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0], file() + ":7:6: error: duplicate node id 'a' (first defined at " + file() + ":4:6)");
}

TEST_F(Validation, CyclesNameTheirNodes) {
  auto ps = problems(R"([pipeline]
name = "x"
[[node]]
id = "src"
type = "test.source"
[[node]]
id = "a"
type = "test.collect"
inputs = { scores = ["c"], extra = "src" }
[[node]]
id = "b"
type = "test.rank"
inputs = { features = "e", data = "src" }
[[node]]
id = "c"
type = "test.rank"
inputs = { features = "e", data = "src" }
[[node]]
id = "e"
type = "test.embed"
[[node]]
id = "self"
type = "test.collect"
inputs = { scores = ["c"], extra = "self.table" }
)");
  // 'self' feeds itself (and Table is not Dataset: two problems there), and no cycle among a, b, c.
  bool self_cycle = false;
  for (const auto& p : ps) self_cycle |= p.find("node 'self': the inputs form a cycle: 'self' -> 'self'") != std::string::npos;
  EXPECT_FALSE(self_cycle) << "a type error drops the edge, so no cycle is reported for it";

  registry_.add_node_type({NodeSpec("test.pass", "pass a dataset").input("data", "Dataset", "in").output("out", "Dataset", "out"),
                           [] { return std::unique_ptr<Node>(); },
                           "fake",
                           nullptr,
                           nullptr,
                           {}});
  auto ps2 = problems(R"([pipeline]
name = "x"
[[node]]
id = "a"
type = "test.collect"
inputs = { scores = ["c"] }
[[node]]
id = "b"
type = "test.rank"
inputs = { features = "e", data = "d" }
[[node]]
id = "c"
type = "test.rank"
inputs = { features = "e", data = "d" }
[[node]]
id = "e"
type = "test.embed"
[[node]]
id = "d"
type = "test.pass"
inputs = { data = "d" }
)");
  ASSERT_EQ(ps2.size(), 1u) << ::testing::PrintToString(ps2);
  EXPECT_EQ(ps2[0], file() + ":18:1: error: node 'd': the inputs form a cycle: 'd' -> 'd'");
}

TEST_F(Validation, LongerCycleListsItsPath) {
  registry_.add_node_type({NodeSpec("test.pass", "pass a dataset").input("in", "Dataset", "in").output("out", "Dataset", "out"),
                           [] { return std::unique_ptr<Node>(); },
                           "fake",
                           nullptr,
                           nullptr,
                           {}});
  auto ps = problems(R"([pipeline]
name = "x"
[[node]]
id = "one"
type = "test.pass"
inputs = { in = "three" }
[[node]]
id = "two"
type = "test.pass"
inputs = { in = "one" }
[[node]]
id = "three"
type = "test.pass"
inputs = { in = "two" }
)");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0], file() + ":3:1: error: node 'one': the inputs form a cycle: 'one' -> 'two' -> 'three' -> 'one'");
}

TEST_F(Validation, StructureProblems) {
  auto ps = problems("title = 1\n[pipeline]\nname = \"x\"\nowner = \"me\"\n[[node]]\nid = \"a.b\"\ntype = \"test.source\"\nparam = {}\n");
  ASSERT_EQ(ps.size(), 4u) << ::testing::PrintToString(ps);
  EXPECT_THAT(ps[0], HasSubstr(":1:1: error: unknown top-level key 'title'"));
  EXPECT_THAT(ps[1], HasSubstr(":4:1: error: [pipeline]: unknown key 'owner'"));
  EXPECT_THAT(ps[2], HasSubstr(":6:6: error: node #1: id 'a.b' may only contain letters, digits, '_' and '-'"));
  EXPECT_THAT(ps[3], HasSubstr(":8:1: error: node #1: unknown key 'param' (a node has id, type, params and inputs)"));
  auto empty = problems("[pipeline]\nname = \"x\"\n");
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_THAT(empty[0], HasSubstr("the pipeline has no [[node]]"));
  auto nameless = problems("[[node]]\nid = \"a\"\ntype = \"test.source\"\n");
  ASSERT_EQ(nameless.size(), 1u);
  EXPECT_THAT(nameless[0], HasSubstr("missing [pipeline] table"));
}

TEST_F(Validation, MissingFileIsAPipelineError) {
  try {
    parse_pipeline_file(dir_ / "nope.toml");
    FAIL();
  } catch (const PipelineError& e) {
    EXPECT_THAT(e.what(), HasSubstr("nope.toml: error: no such pipeline file"));
  }
}

TEST_F(Validation, OverridesParseTomlValuesAndFallBackToStrings) {
  Pipeline p = valid(kGood, {"rank.max_iter=20", "rank.eps=0.5", "rank.label=hello world", "task.file=rel/y.npy"});
  EXPECT_EQ(p.nodes[2].params.integer("max_iter"), 20);
  EXPECT_DOUBLE_EQ(p.nodes[2].params.real("eps"), 0.5);
  EXPECT_EQ(p.nodes[2].params.string("label"), "hello world");
  // A path given on the command line is relative to the current directory.
  EXPECT_EQ(p.nodes[0].params.path("file"), std::filesystem::path("rel/y.npy"));
}

TEST_F(Validation, OverrideProblemsAreNamed) {
  auto ps = problems(kGood, {"rnak.max_iter=3", "rank.max_iter=500", "nodot=1"});
  ASSERT_EQ(ps.size(), 2u) << ::testing::PrintToString(ps);
  EXPECT_EQ(ps[0], "--set rnak.max_iter=3: error: no node 'rnak' in " + file() + " (did you mean 'rank'?)");
  EXPECT_EQ(ps[1], "--set nodot=1: error: malformed override: write --set NODE_ID.PARAM=VALUE");
  auto range = problems(kGood, {"rank.max_iter=500"});
  ASSERT_EQ(range.size(), 1u);
  EXPECT_EQ(range[0], "--set rank.max_iter=500: error: node 'rank': parameter 'max_iter' must be in [1, 100], found 500");
}

TEST(ClosestNames, RanksByEditDistance) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(closest_names("rank.logm", {"rank.leep", "rank.logme", "report.ranking"}).front(), "rank.logme");
  EXPECT_TRUE(closest_names("zzzzzz", {"rank.logme"}).empty());
  EXPECT_EQ(closest_names("logme", {"rank.logme", "rank.leep"}).front(), "rank.logme");
}

}  // namespace

// A bare node name means the node's only output, or its one output of the input's type: a node
// that publishes a Figure (or a summary Table) beside its main output is still named bare.
TEST_F(Validation, ABareNodeNamePicksTheOneOutputOfTheInputsType) {
  registry_.add_node_type({NodeSpec("test.table_in", "take a table").input("t", "Table", "a table"),
                           [] { return std::unique_ptr<Node>(); },
                           "fake",
                           nullptr,
                           nullptr,
                           {}});
  registry_.add_node_type({NodeSpec("test.any_in", "take anything").input("a", "Any", "anything"),
                           [] { return std::unique_ptr<Node>(); },
                           "fake",
                           nullptr,
                           nullptr,
                           {}});
  const std::string head = R"([pipeline]
name = "x"
[[node]]
id = "src"
type = "test.source"
[[node]]
id = "drawn"
type = "test.figure"
inputs = { data = "src" }
)";
  const Pipeline p = valid(head + "[[node]]\nid = \"t\"\ntype = \"test.table_in\"\ninputs = { t = \"drawn\" }\n");
  ASSERT_EQ(p.nodes[2].inputs.size(), 1u);
  EXPECT_EQ(p.nodes[2].inputs[0].sources[0].port, "numbers");
  // Two outputs fit an input of any type: the port must be named. None fits a Dataset: the main
  // (first) output's type is named.
  auto ps = problems(head + "[[node]]\nid = \"a\"\ntype = \"test.any_in\"\ninputs = { a = \"drawn\" }\n" +
                     "[[node]]\nid = \"r\"\ntype = \"test.rank\"\ninputs = { features = \"e\", data = \"drawn\" }\n" +
                     "[[node]]\nid = \"e\"\ntype = \"test.embed\"\n");
  ASSERT_EQ(ps.size(), 2u) << ::testing::PrintToString(ps);
  EXPECT_THAT(ps[0], HasSubstr("node 'drawn' has 2 outputs ('chart' and 'numbers'), 2 of type Any; write 'drawn.PORT'"));
  EXPECT_THAT(ps[1], HasSubstr("input 'data' of node 'r' expects Dataset but 'drawn' produces Figure"));
}
