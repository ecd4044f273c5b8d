// The executor: scheduling, failure handling, the output contract and run.json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <thread>
#include <vector>

#include "caulk/executor.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/registry.hpp"
#include "caulk/run_observer.hpp"
#include "fake_nodes.hpp"
#include "temp_dir.hpp"

using namespace caulk;
using ::testing::HasSubstr;

namespace {

class ExecutorTest : public ::testing::Test {
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

TEST_F(ExecutorTest, AFailureSkipsDescendantsAndReportsEveryError) {
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

TEST_F(ExecutorTest, RunJsonHasTheDocumentedShape) {
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

TEST_F(ExecutorTest, SuccessfulRunPassesArtifactsAlongEdges) {
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
TEST_F(ExecutorTest, ANodeThatReadsAnUndeclaredParameterFails) {
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

TEST_F(ExecutorTest, ANodeThatForgetsAnOutputFails) {
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

TEST_F(ExecutorTest, ForEachUnitNamesEveryFailingUnit) {
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

// Run observers (caulk/run_observer.hpp) see each node start and end, then the final record, in
// memory and in run.json; they are not nodes, so run.json lists none of them.
TEST_F(ExecutorTest, ObserversSeeEachNodeStartAndEndThenTheFinalRecord) {
  std::string text = kTwoBranches;
  text += "[[observer]]\ntype = \"test.observer\"\n";
  for (unsigned jobs : {1u, 3u}) {
    RunReport r = run(text, jobs);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.nodes.size(), 6u);
    const Json seen = Json::parse(caulk::testing::read_file(dir_ / "out" / "observed.json"));
    const auto events = seen["events"].get<std::vector<std::string>>();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.front(), "run 6");
    auto at = [&](const std::string& e) { return std::find(events.begin(), events.end(), e) - events.begin(); };
    EXPECT_LT(at("start bad"), at("end bad failed"));
    EXPECT_LT(at("end bad failed"), static_cast<long>(events.size()));
    // Every node that started ended after it (a node started beside "bad" on a wide pool finishes).
    for (const auto& e : events)
      if (e.rfind("start ", 0) == 0) {
        const std::string id = e.substr(6);
        const auto end =
            std::find_if(events.begin(), events.end(), [&](const std::string& x) { return x.rfind("end " + id + " ", 0) == 0; });
        EXPECT_LT(at(e), end - events.begin()) << id;
      }
    // Skipped nodes neither start nor end.
    EXPECT_EQ(at("start after_bad"), static_cast<long>(events.size()));
    EXPECT_EQ(at("start last"), static_cast<long>(events.size()));
    // The final record: nothing pending or running, in memory and in run.json alike.
    EXPECT_EQ(seen["status"], "failed");
    EXPECT_EQ(seen["saw_status"], "failed");
    EXPECT_EQ(seen["saw"]["bad"], "failed");
    EXPECT_EQ(seen["saw"]["after_bad"], "skipped");
    EXPECT_EQ(seen["saw"]["last"], "skipped");
    EXPECT_EQ(seen["saw"].size(), 6u);
    auto j = Json::parse(caulk::testing::read_file(dir_ / "out" / "run.json"));
    EXPECT_FALSE(j.contains("observers"));  // none failed
  }
}

TEST_F(ExecutorTest, AFailingObserverFailsTheRunAndRunJsonSaysWhichAndWhy) {
  RunReport r = run(R"([pipeline]
name = "x"
[[node]]
id = "src"
type = "test.source"
[[observer]]
id = "watch"
type = "test.observer"
params = { fail = true }
)");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.nodes.size(), 1u);
  EXPECT_EQ(r.nodes[0].status, NodeStatus::Ok);  // its outcome is the nodes' own
  ASSERT_EQ(r.observer_errors.size(), 1u);
  EXPECT_EQ(r.observer_errors[0].first, "watch");
  EXPECT_EQ(r.observer_errors[0].second, "run_finished failed: the observer failed");
  auto j = Json::parse(caulk::testing::read_file(dir_ / "out" / "run.json"));
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["nodes"]["src"]["status"], "ok");
  EXPECT_EQ(j["observers"]["watch"]["error"], "run_finished failed: the observer failed");
  EXPECT_THAT(err_.str(), HasSubstr("[test.observer] FAILED: run_finished failed: the observer failed"));
  // Read back as `caulk report` reads it.
  const RunReport back = RunReport::from_json(j);
  EXPECT_EQ(back.status(), RunStatus::Failed);
  EXPECT_EQ(back.observer_errors, r.observer_errors);
}

// What an observer writes is the run's output: the next run of another pipeline into the folder
// removes it when it writes none.
TEST_F(ExecutorTest, AnObserversFilesAreTheRunsOutputs) {
  const std::string with =
      "[pipeline]\nname = \"x\"\n[[node]]\nid = \"src\"\ntype = \"test.source\"\n[[observer]]\ntype = \"test.observer\"\n";
  ASSERT_TRUE(run(with).ok) << err_.str();
  ASSERT_TRUE(std::filesystem::exists(dir_ / "out" / "observed.json"));
  const std::string without = "[pipeline]\nname = \"x\"\n[[node]]\nid = \"src\"\ntype = \"test.source\"\n";
  ASSERT_TRUE(run(without).ok) << err_.str();
  EXPECT_FALSE(std::filesystem::exists(dir_ / "out" / "observed.json")) << err_.str();
}

TEST_F(ExecutorTest, RunJsonKeepsEveryPublishedTableAndTheFolderKeepsTheGraph) {
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

// `--set ID.PARAM=VALUE` reaches an observer by its id, as it reaches a node.
TEST_F(ExecutorTest, OverridesReachAnObserverByItsId) {
  auto file = dir_.write("p.toml",
                         "[pipeline]\nname = \"x\"\n[[node]]\nid = \"src\"\ntype = \"test.source\"\n"
                         "[[observer]]\nid = \"watch\"\ntype = \"test.observer\"\n");
  PipelineConfig config = parse_pipeline_file(file);
  apply_overrides(config, {"watch.file=seen.json"});
  RunOptions o;
  o.out_dir = dir_ / "out";
  o.out = &out_;
  o.err = &err_;
  ASSERT_TRUE(run_pipeline(validate_pipeline(config, registry_), o).ok) << err_.str();
  EXPECT_TRUE(std::filesystem::exists(dir_ / "out" / "seen.json"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "out" / "observed.json"));
  PipelineConfig unknown = parse_pipeline_file(file);
  EXPECT_THAT(
      [&] { apply_overrides(unknown, {"wach.file=seen.json"}); },
      ::testing::ThrowsMessage<PipelineError>(HasSubstr("no node or observer 'wach' in " + file.string() + " (did you mean 'watch'?)")));
}

TEST_F(ExecutorTest, AnObserverTypeCannotDeclarePorts) {
  Registry registry;
  PluginInfo info;
  info.name = "bad";
  PluginRegistrar reg(registry, info, nullptr);
  NodeSpec spec("test.bad_observer", "an observer with an input");
  spec.input("data", "Dataset", "data");
  EXPECT_THAT([&] { reg.add_observer(spec, [] { return std::unique_ptr<RunObserver>(); }); },
              ::testing::ThrowsMessage<Error>(HasSubstr("declares ports; an observer sees the run from outside the graph")));
}

TEST_F(ExecutorTest, ObserversAndNodesAreDeclaredEachUnderTheirOwnTables) {
  auto diagnostics = [&](const std::string& text) {
    try {
      validate_pipeline(parse_pipeline_text(text, "p.toml"), registry_);
    } catch (const PipelineError& e) {
      return std::string(e.what());
    }
    return std::string("valid");
  };
  const std::string head = "[pipeline]\nname = \"x\"\n[[node]]\nid = \"src\"\ntype = \"test.source\"\n";
  EXPECT_THAT(diagnostics(head + "[[node]]\nid = \"w\"\ntype = \"test.observer\"\n"),
              HasSubstr("p.toml:8:8: error: node 'w': test.observer is a run observer, not a node: declare it under [[observer]]"));
  EXPECT_THAT(
      diagnostics(head + "[[observer]]\ntype = \"test.source\"\n"),
      HasSubstr("p.toml:7:8: error: observer 'test.source': test.source is a node type, not a run observer: declare it under [[node]]"));
  EXPECT_THAT(diagnostics(head + "[[observer]]\ntype = \"test.observr\"\n"),
              HasSubstr("unknown run observer type 'test.observr' (did you mean 'test.observer'?)"));
  EXPECT_THAT(
      diagnostics(head + "[[observer]]\ntype = \"test.observer\"\nparams = { fial = true }\n"),
      HasSubstr(
          "p.toml:8:19: error: observer 'test.observer': unknown parameter 'fial' for test.observer (did you mean 'fail' or 'file'?)"));
  EXPECT_THAT(diagnostics(head + "[[observer]]\ntype = \"test.observer\"\ninputs = { a = \"src\" }\n"),
              HasSubstr("p.toml:8:1: error: observer 'test.observer': unknown key 'inputs'"));
  EXPECT_THAT(diagnostics(head + "[[observer]]\ntype = \"test.observer\"\n[[observer]]\ntype = \"test.observer\"\n"),
              HasSubstr("observer 'test.observer' is declared twice"));
  EXPECT_EQ(diagnostics(head + "[[observer]]\ntype = \"test.observer\"\n[[observer]]\nid = \"second\"\ntype = \"test.observer\"\n"),
            "valid");
}

// A Figure is recorded as a Table is: under the node that published it, by port, with its title,
// caption and spec; a node that published none has no "figures" key.
TEST_F(ExecutorTest, PublishedFiguresAreKeptInRunJsonUnderTheirNode) {
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

namespace {
const char* kWidths = R"([pipeline]
name = "widths"
[[node]]
id = "a"
type = "test.width"
[[node]]
id = "b"
type = "test.width"
params = { tag = 1 }
)";
}  // namespace

TEST_F(ExecutorTest, AnExecutorRunsEveryPipelineOnItsOwnPoolAndKeepsItsThreads) {
  const Pipeline p = validate_pipeline(parse_pipeline_file(dir_.write("w.toml", kWidths)), registry_);
  // Two executors of different widths, each running twice, at the same time on two threads.
  caulk::Executor narrow(1), wide(3);
  EXPECT_EQ(narrow.jobs(), 1u);
  EXPECT_EQ(wide.jobs(), 3u);
  auto runs = [&](caulk::Executor& executor, const std::string& name, std::vector<RunReport>& reports) {
    for (int k = 0; k < 2; ++k) {
      RunOptions o;
      o.out_dir = dir_ / (name + std::to_string(k));
      o.jobs = 7;  // the executor's width wins
      std::ostringstream out, err;
      o.out = &out;
      o.err = &err;
      reports.push_back(executor.run(p, o));
    }
  };
  std::vector<RunReport> narrow_runs, wide_runs;
  std::thread a([&] { runs(narrow, "narrow", narrow_runs); });
  std::thread b([&] { runs(wide, "wide", wide_runs); });
  a.join();
  b.join();
  for (const auto* reports : {&narrow_runs, &wide_runs})
    for (const auto& r : *reports) {
      ASSERT_TRUE(r.ok);
      for (const auto& n : r.nodes) EXPECT_EQ(n.summary["width"], reports == &narrow_runs ? 1 : 3) << n.id;
    }
  // The narrow executor's one worker ran all four nodes of its two runs: the same thread, kept.
  std::vector<unsigned> counts;
  for (const auto& r : narrow_runs)
    for (const auto& n : r.nodes) counts.push_back(n.summary["runs_on_this_thread"].get<unsigned>());
  std::sort(counts.begin(), counts.end());
  EXPECT_EQ(counts, (std::vector<unsigned>{1, 2, 3, 4}));
  EXPECT_EQ(caulk::Executor(0).jobs(), 1u);
}
