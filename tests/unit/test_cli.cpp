// The command line, end to end through the real binary: exit codes, messages, plugins.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

TEST(Cli, VersionAndHelp) {
  auto v = run_caulk({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_THAT(v.out, HasSubstr("caulk 0.1.0"));
  for (const char* cmd : {"run", "check", "graph", "nodes", "report"}) {
    auto h = run_caulk({cmd, "--help"});
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_THAT(h.out, HasSubstr("Usage")) << cmd;
  }
  EXPECT_EQ(run_caulk({"--help"}).exit_code, 0);
}

TEST(Cli, UsageErrorsExitWith2) {
  EXPECT_EQ(run_caulk({}).exit_code, 2);
  EXPECT_EQ(run_caulk({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(run_caulk({"run"}).exit_code, 2);
  EXPECT_EQ(run_caulk({"run", "x.toml", "--jobs", "0"}).exit_code, 2);
  auto missing = run_caulk({"check", "does-not-exist.toml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("does-not-exist.toml: error: no such pipeline file"));
}

TEST(Cli, CheckAcceptsTheQuickstart) {
  auto r = run_caulk({"check", (source_dir() / "pipelines/quickstart.toml").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok (5 nodes)"));
}

// One pipeline per validation error, each through `caulk check`: message and exit code 2.
struct BadPipeline {
  const char* name;
  const char* body;  // after [pipeline]
  const char* message;
};

const BadPipeline kBad[] = {
    {"unknown_type", "[[node]]\nid = \"r\"\ntype = \"rank.logm\"\n",
     "p.toml:5:8: error: node 'r': unknown node type 'rank.logm' (did you mean 'rank.logme'?)"},
    {"unknown_param",
     "[[node]]\nid = \"t\"\ntype = \"dataset.load\"\nparams = { labels = \"y.npy\", knd = \"regression\" }\n",
     "p.toml:6:36: error: node 't': unknown parameter 'knd' for dataset.load (did you mean 'kind'?)"},
    {"missing_param", "[[node]]\nid = \"t\"\ntype = \"dataset.load\"\n",
     "p.toml:3:1: error: node 't': missing required parameter 'labels'"},
    {"wrong_type", "[[node]]\nid = \"t\"\ntype = \"dataset.load\"\nparams = { labels = 3 }\n",
     "p.toml:6:21: error: node 't': parameter 'labels' must be a path, or a table of split name = path, found an integer 3"},
    {"bad_choice", "[[node]]\nid = \"t\"\ntype = \"dataset.load\"\nparams = { labels = \"y.npy\", kind = \"regresion\" }\n",
     "p.toml:6:37: error: node 't': parameter 'kind' must be one of \"classification\", \"regression\", found \"regresion\" "
     "(did you mean 'regression'?)"},
    {"out_of_range",
     "[[node]]\nid = \"h\"\ntype = \"adapter.precomputed\"\nparams = { manifest = \"hub.toml\" }\n"
     "[[node]]\nid = \"r\"\ntype = \"report.ranking\"\ninputs = { scores = [\"s\"] }\nparams = { digits = 40 }\n"
     "[[node]]\nid = \"t\"\ntype = \"dataset.load\"\nparams = { labels = \"y.npy\" }\n"
     "[[node]]\nid = \"s\"\ntype = \"rank.logme\"\ninputs = { features = \"h\", data = \"t\" }\n",
     "p.toml:11:21: error: node 'r': parameter 'digits' must be in [1, 17], found 40"},
    {"unknown_port",
     "[[node]]\nid = \"h\"\ntype = \"adapter.precomputed\"\nparams = { manifest = \"hub.toml\" }\n"
     "[[node]]\nid = \"t\"\ntype = \"dataset.load\"\nparams = { labels = \"y.npy\" }\n"
     "[[node]]\nid = \"s\"\ntype = \"rank.logme\"\ninputs = { feature = \"h\", data = \"t\" }\n",
     "p.toml:14:12: error: node 's': unknown input port 'feature' for rank.logme (did you mean 'features'?)"},
    {"type_mismatch",
     "[[node]]\nid = \"task\"\ntype = \"dataset.load\"\nparams = { labels = \"y.npy\" }\n"
     "[[node]]\nid = \"logme\"\ntype = \"rank.logme\"\ninputs = { features = \"task\", data = \"task\" }\n",
     "p.toml:10:23: error: input 'features' of node 'logme' expects Embeddings but 'task' produces Dataset"},
    {"duplicate_id",
     "[[node]]\nid = \"t\"\ntype = \"dataset.load\"\nparams = { labels = \"y.npy\" }\n"
     "[[node]]\nid = \"t\"\ntype = \"dataset.load\"\nparams = { labels = \"y.npy\" }\n",
     "p.toml:8:6: error: duplicate node id 't' (first defined at "},
    {"cycle",
     "[[node]]\nid = \"a\"\ntype = \"test.pass\"\ninputs = { in = \"b\" }\n"
     "[[node]]\nid = \"b\"\ntype = \"test.pass\"\ninputs = { in = \"a\" }\n",
     "p.toml:3:1: error: node 'a': the inputs form a cycle: 'a' -> 'b' -> 'a'"},
};

class CliValidation : public ::testing::TestWithParam<BadPipeline> {};

TEST_P(CliValidation, ReportsFileLineColumnAndNodeWithExit2) {
  const BadPipeline& bad = GetParam();
  TempDir dir;
  auto file = dir.write("p.toml", std::string("[pipeline]\nname = \"bad\"\n") + bad.body);
  for (const char* cmd : {"check", "run", "graph"}) {
    auto r = run_caulk({cmd, file.string(), "--plugin-path", test_plugin("test_nodes").parent_path().string()}, "",
                       dir.path());
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(bad.message)) << cmd;
    EXPECT_THAT(r.err, HasSubstr("nothing was run")) << cmd;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "runs")) << "a pipeline that fails validation must not create outputs";
}

INSTANTIATE_TEST_SUITE_P(EveryError, CliValidation, ::testing::ValuesIn(kBad),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Cli, EveryProblemIsReportedAtOnce) {
  TempDir dir;
  auto file = dir.write("p.toml",
                        "[pipeline]\nname = \"bad\"\n[[node]]\nid = \"t\"\ntype = \"dataset.lod\"\n"
                        "[[node]]\nid = \"u\"\ntype = \"dataset.load\"\nparams = { labels = 1 }\n");
  auto r = run_caulk({"check", file.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown node type 'dataset.lod'"));
  EXPECT_THAT(r.err, HasSubstr("parameter 'labels' must be a path"));
  EXPECT_THAT(r.err, HasSubstr("2 problems found"));
}

TEST(Cli, GraphPrintsDotWithArtifactTypes) {
  auto r = run_caulk({"graph", (source_dir() / "pipelines/quickstart.toml").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("digraph \"quickstart\""));
  EXPECT_THAT(r.out, HasSubstr("\"hub\" -> \"logme\" [label=\"Embeddings\""));
  EXPECT_THAT(r.out, HasSubstr("\"task\" -> \"logme\" [label=\"Dataset\""));
  EXPECT_THAT(r.out, HasSubstr("\"logme\" -> \"ranking\" [label=\"Scores\""));
}

TEST(Cli, NodesListsAndDescribes) {
  auto list = run_caulk({"nodes"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  for (const char* t : {"dataset.load", "adapter.precomputed", "rank.logme", "report.ranking"}) EXPECT_THAT(list.out, HasSubstr(t));
  auto one = run_caulk({"nodes", "dataset.load"});
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_THAT(one.out, HasSubstr("kind: string, default \"classification\", one of \"classification\" | \"regression\""));
  EXPECT_THAT(one.out, HasSubstr("Plugin\n  adapters"));
  auto unknown = run_caulk({"nodes", "rank.logm"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown node type 'rank.logm' (did you mean 'rank.logme'?)"));
  // A repeatable option takes one value per use: the next word is the command's argument.
  auto with_path = run_caulk({"nodes", "--plugin-path", test_plugin("test_nodes").parent_path().string(), "rank.logme"});
  EXPECT_EQ(with_path.exit_code, 0) << with_path.err;
  EXPECT_THAT(with_path.out, HasSubstr("rank.logme"));
}

TEST(Cli, GeneratedNodeReferenceMatchesDocs) {
  auto r = run_caulk({"nodes", "--markdown"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, read_file(source_dir() / "docs/nodes.md"))
      << "docs/nodes.md is out of date: run `make docs` (it is generated by `caulk nodes --markdown`)";
}

// --- plugins

TEST(CliPlugins, WrongAbiIsRefusedWithBothVersions) {
  auto r = run_caulk({"nodes", "--plugin-path", test_plugin("wrong_abi").string()});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("wrong_abi.so failed to load: built for caulk plugin ABI version 999, but this caulk has ABI version 2"));
  // The other plugins still work and are listed.
  EXPECT_THAT(r.out, HasSubstr("rank.logme"));
}

TEST(CliPlugins, UndefinedSymbolShowsTheLoadersMessage) {
  auto r = run_caulk({"check", (source_dir() / "pipelines/quickstart.toml").string(), "--plugin-path",
                      test_plugin("undefined_symbol").parent_path().string()});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("undefined_symbol.so failed to load:"));
  EXPECT_THAT(r.err, HasSubstr("undefined symbol: caulk_test_symbol_that_nobody_defines"));
}

TEST(CliPlugins, MissingPathAndNonPlugins) {
  auto missing = run_caulk({"nodes", "--plugin-path", "/nonexistent/plugins"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_THAT(missing.err, HasSubstr("plugin /nonexistent/plugins failed to load: plugin path does not exist"));
  auto stranger = run_caulk({"nodes", "--plugin-path", test_plugin("not_a_plugin").string()});
  EXPECT_EQ(stranger.exit_code, 3);
  EXPECT_THAT(stranger.err, HasSubstr("not a caulk plugin"));
}

TEST(CliPlugins, FailedRegistrationLeavesNothingBehind) {
  auto r = run_caulk({"nodes", "--plugin-path", test_plugin("throws_on_register").string()});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("registration failed: node type 'broken.second': output port 'x' has unknown artifact type 'NoSuchType'"));
  EXPECT_THAT(r.out, Not(HasSubstr("broken.first")));
}

TEST(CliPlugins, DuplicateNodeTypesAreReported) {
  auto r = run_caulk({"nodes", "--plugin-path", test_plugin("duplicate_node").string()});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("node type 'rank.logme' is already registered by plugin 'duplicate_node'"));
}

TEST(CliPlugins, EnvironmentPathIsSearched) {
  auto r = run_caulk({"nodes", "test.pass"}, "CAULK_PLUGIN_PATH=" + test_plugin("test_nodes").parent_path().string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Pass a dataset through"));
}

}  // namespace
