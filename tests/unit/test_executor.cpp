// The executor: scheduling, failure handling, the output contract and run.json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "caulk/executor.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/registry.hpp"
#include "fake_nodes.hpp"
#include "temp_dir.hpp"

using namespace caulk;
using ::testing::HasSubstr;

namespace {

class Executor : public ::testing::Test {
 protected:
  void SetUp() override { caulk::testing::register_fake_nodes(registry_); }
  RunReport run(const std::string& text, unsigned jobs = 2) {
    auto file = dir_.write("p.toml", text);
    Pipeline p = validate_pipeline(parse_pipeline_file(file), registry_);
    RunOptions o;
    o.out_dir = dir_ / "out";
    o.jobs = jobs;
    o.out = &out_;
    o.err = &err_;
    return run_pipeline(p, o);
  }
  Registry registry_;
  caulk::testing::TempDir dir_;
  std::ostringstream out_, err_;
};

const char* kTwoBranches = R"([pipeline]
name = "branches"
[[node]]
id = "bad"
type = "test.source"
params = { fail = true }
[[node]]
id = "good"
type = "test.source"
params = { rows = 4 }
[[node]]
id = "f"
type = "test.embed"
[[node]]
id = "after_bad"
type = "test.rank"
inputs = { features = "f", data = "bad" }
[[node]]
id = "after_good"
type = "test.rank"
inputs = { features = "f", data = "good" }
[[node]]
id = "last"
type = "test.collect"
inputs = { scores = ["after_bad", "after_good"] }
)";

TEST_F(Executor, AFailureSkipsDescendantsAndReportsEveryError) {
  RunReport r = run(kTwoBranches, 1);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.nodes[0].status, NodeStatus::Failed);
  EXPECT_EQ(r.nodes[0].error, "asked to fail");
  // With one job, 'bad' runs first (file order) and nothing starts after it fails.
  EXPECT_EQ(r.nodes[1].status, NodeStatus::Skipped);
  EXPECT_THAT(r.nodes[1].error, HasSubstr("the run stopped after node 'bad' failed"));
  EXPECT_EQ(r.nodes[3].status, NodeStatus::Skipped);
  EXPECT_THAT(r.nodes[3].error, HasSubstr("depends on node 'bad', which failed"));
  EXPECT_THAT(r.nodes[5].error, HasSubstr("depends on node 'bad'"));
  EXPECT_THAT(err_.str(), HasSubstr("FAILED bad"));
}

TEST_F(Executor, RunJsonHasTheDocumentedShape) {
  RunReport r = run(kTwoBranches, 2);
  auto j = nlohmann::json::parse(caulk::testing::read_file(dir_ / "out" / "run.json"));
  EXPECT_EQ(j["pipeline"], "branches");
  EXPECT_EQ(j["status"], "failed");
  ASSERT_TRUE(j["nodes"].contains("bad"));
  EXPECT_EQ(j["nodes"]["bad"]["type"], "test.source");
  EXPECT_EQ(j["nodes"]["bad"]["status"], "failed");
  EXPECT_EQ(j["nodes"]["bad"]["error"], "asked to fail");
  EXPECT_TRUE(j["nodes"]["bad"]["seconds"].is_number());
  EXPECT_TRUE(j["nodes"]["bad"]["summary"].is_object());
  EXPECT_EQ(j["nodes"]["after_bad"]["status"], "skipped");
}

TEST_F(Executor, SuccessfulRunPassesArtifactsAlongEdges) {
  const char* text = R"([pipeline]
name = "ok"
[[node]]
id = "src"
type = "test.source"
params = { rows = 7 }
[[node]]
id = "f"
type = "test.embed"
[[node]]
id = "r1"
type = "test.rank"
inputs = { features = "f", data = "src" }
params = { eps = 0.5 }
[[node]]
id = "r2"
type = "test.rank"
inputs = { features = "f", data = "src" }
[[node]]
id = "all"
type = "test.collect"
inputs = { scores = ["r1", "r2"] }
)";
  for (unsigned jobs : {1u, 3u}) {
    RunReport r = run(text, jobs);
    ASSERT_TRUE(r.ok) << err_.str();
    EXPECT_DOUBLE_EQ(r.nodes[2].summary["score"].get<double>(), 3.5);
    EXPECT_EQ(r.nodes[4].summary["inputs"], 2);
  }
}

// A node type cannot read a parameter its spec does not declare (nor keep a default of its own
// for one): the read fails the node, naming the parameter.
TEST_F(Executor, ANodeThatReadsAnUndeclaredParameterFails) {
  RunReport r = run(R"([pipeline]
name = "x"
[[node]]
id = "reader"
type = "test.undeclared_reader"
)");
  ASSERT_EQ(r.nodes.size(), 1u);
  EXPECT_EQ(r.nodes[0].status, NodeStatus::Failed);
  EXPECT_EQ(r.nodes[0].error,
            "node 'reader' reads parameter 'scale', which its node type does not declare (a bug in the node type: declare it in its spec)");
}

TEST_F(Executor, ANodeThatForgetsAnOutputFails) {
  RunReport r = run(R"([pipeline]
name = "x"
[[node]]
id = "src"
type = "test.source"
[[node]]
id = "lazy"
type = "test.forgetful"
inputs = { data = "src" }
)");
  EXPECT_EQ(r.nodes[1].status, NodeStatus::Failed);
  EXPECT_EQ(r.nodes[1].error, "the node did not publish its output 'table'");
}

TEST_F(Executor, ForEachUnitNamesEveryFailingUnit) {
  NodeContext ctx("n", "t", Params(), {}, nullptr);
  try {
    ctx.for_each_unit("model", {"a", "b", "c"}, [](std::size_t i) {
      if (i != 1) throw Error("broken " + std::to_string(i));
    });
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "2 of 3 models failed:\n  model 'a': broken 0\n  model 'c': broken 2");
  }
}

}  // namespace

// ------------------------------------------------------------------------------ what a report reads

TEST_F(Executor, ANodeThatRunsLastRunsAfterAFailureAndSeesTheRunSoFar) {
  std::string text = kTwoBranches;
  text += "[[node]]\nid = \"report\"\ntype = \"test.last\"\n";
  for (unsigned jobs : {1u, 3u}) {
    RunReport r = run(text, jobs);
    EXPECT_FALSE(r.ok);
    const NodeOutcome& last = r.nodes.back();
    ASSERT_EQ(last.id, "report");
    EXPECT_EQ(last.status, NodeStatus::Ok) << last.error;
    // It ran after every other node had ended: none was pending or running when it read run.json.
    const Json& saw = last.summary["saw"];
    EXPECT_EQ(last.summary["saw_status"], "failed");
    EXPECT_EQ(saw["bad"], "failed");
    EXPECT_EQ(saw["after_bad"], "skipped");
    EXPECT_EQ(saw["last"], "skipped");
    EXPECT_EQ(saw["report"], "running");
    for (const auto& [id, status] : saw.items()) {
      if (id != "report") {
        EXPECT_TRUE(status == "ok" || status == "failed" || status == "skipped") << id << " " << status;
      }
    }
    // run.json is written again with its outcome.
    auto j = nlohmann::json::parse(caulk::testing::read_file(dir_ / "out" / "run.json"));
    EXPECT_EQ(j["nodes"]["report"]["status"], "ok");
    EXPECT_EQ(j["status"], "failed");
  }
}

TEST_F(Executor, AFailingLastNodeFailsTheRun) {
  RunReport r = run(R"([pipeline]
name = "x"
[[node]]
id = "src"
type = "test.source"
[[node]]
id = "report"
type = "test.last"
params = { fail = true }
)");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.nodes[0].status, NodeStatus::Ok);
  EXPECT_EQ(r.nodes[1].status, NodeStatus::Failed);
  EXPECT_EQ(r.nodes[1].error, "the last node failed too");
  EXPECT_EQ(r.nodes[1].summary["saw_status"], "ok");
}

TEST_F(Executor, RunJsonKeepsEveryPublishedTableAndTheFolderKeepsTheGraph) {
  RunReport r = run(R"([pipeline]
name = "tables"
[[node]]
id = "src"
type = "test.source"
[[node]]
id = "f"
type = "test.embed"
[[node]]
id = "r"
type = "test.rank"
inputs = { features = "f", data = "src" }
[[node]]
id = "all"
type = "test.collect"
inputs = { scores = ["r"] }
)");
  ASSERT_TRUE(r.ok) << err_.str();
  auto j = nlohmann::json::parse(caulk::testing::read_file(dir_ / "out" / "run.json"));
  EXPECT_FALSE(j["nodes"]["src"].contains("tables"));  // no table, no key
  const auto& t = j["nodes"]["all"]["tables"]["table"];
  EXPECT_EQ(t["title"], "collected");
  EXPECT_EQ(t["columns"], nlohmann::json::parse(R"(["name", "count", "value", "empty"])"));
  // Strings, integers and numbers as they are; empty cells and NaN as null.
  EXPECT_EQ(t["rows"], nlohmann::json::parse(R"([["scores", 1, 0.5, null], ["nan", 0, null, ""]])"));
  const std::string dot = caulk::testing::read_file(dir_ / "out" / "pipeline.dot");
  EXPECT_THAT(dot, HasSubstr("digraph \"tables\""));
  EXPECT_THAT(dot, HasSubstr("\"r\" -> \"all\""));
}

TEST_F(Executor, ANodeTypeThatRunsLastCannotTakeInputs) {
  Registry registry;
  PluginInfo info;
  info.name = "bad";
  PluginRegistrar reg(registry, info, nullptr);
  NodeSpec spec("test.bad_last", "runs last with an input");
  spec.run_last();
  spec.input("data", "Dataset", "data");
  EXPECT_THAT([&] { reg.add_node(spec, [] { return std::unique_ptr<Node>(); }); },
              ::testing::ThrowsMessage<Error>(HasSubstr("runs last, after every other node, so it cannot take inputs")));
}

// A Figure is recorded as a Table is: under the node that published it, by port, with its title,
// caption and spec; a node that published none has no "figures" key.
TEST_F(Executor, PublishedFiguresAreKeptInRunJsonUnderTheirNode) {
  RunReport r = run(R"([pipeline]
name = "figures"
[[node]]
id = "src"
type = "test.source"
params = { rows = 7 }
[[node]]
id = "drawn"
type = "test.figure"
inputs = { data = "src" }
)");
  ASSERT_TRUE(r.ok) << err_.str();
  auto j = nlohmann::json::parse(caulk::testing::read_file(dir_ / "out" / "run.json"));
  EXPECT_FALSE(j["nodes"]["src"].contains("figures"));
  ASSERT_TRUE(j["nodes"]["drawn"].contains("figures")) << j["nodes"]["drawn"].dump();
  const auto& f = j["nodes"]["drawn"]["figures"]["chart"];
  EXPECT_EQ(f["title"], "Rows of the data");
  EXPECT_EQ(f["caption"], "One bar: how many rows the source emitted.");
  EXPECT_EQ(f["spec"]["data"]["values"][0]["value"], 7.0);
  EXPECT_FALSE(f.contains("images"));
  // The Figure is not a table; the Table beside it is.
  EXPECT_FALSE(j["nodes"]["drawn"]["tables"].contains("chart"));
  EXPECT_EQ(j["nodes"]["drawn"]["tables"]["numbers"]["rows"], nlohmann::json::parse(R"([["rows", 7.0]])"));
}
