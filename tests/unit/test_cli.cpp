// The command line, end to end through the real binary: exit codes, messages, plugins.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "caulk/plugin.hpp"
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
  EXPECT_THAT(r.out, HasSubstr("ok (4 nodes and 1 run observer)"));
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
    {"unknown_param", "[[node]]\nid = \"t\"\ntype = \"dataset.load\"\nparams = { labels = \"y.npy\", knd = \"regression\" }\n",
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
    auto r = run_caulk({cmd, file.string(), "--plugin-path", test_plugin("test_nodes").parent_path().string()}, "", dir.path());
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

// A pipeline file in `dir`: [pipeline] (with `extra` lines, e.g. plugins = [...]) and `nodes`.
std::filesystem::path write_pipeline(const TempDir& dir, const std::string& extra, const std::string& nodes) {
  return dir.write("p.toml", "[pipeline]\nname = \"p\"\n" + extra + "\n" + nodes);
}
// A dataset.load node on the demo labels, and a node of `type` fed by it (port "in").
std::string task_and(const std::string& type) {
  return "[[node]]\nid = \"task\"\ntype = \"dataset.load\"\nparams = { labels = \"" +
         (source_dir() / "pipelines/demo/labels_train.npy").string() + "\" }\n[[node]]\nid = \"x\"\ntype = \"" + type +
         "\"\ninputs = { in = \"task\" }\n";
}
std::string quickstart() { return (source_dir() / "pipelines/quickstart.toml").string(); }
std::string folder_of(const std::string& plugin) { return test_plugin(plugin).parent_path().string(); }

TEST(CliPlugins, WrongAbiIsRefusedWithBothVersions) {
  auto r = run_caulk({"nodes", "--plugin-path", test_plugin("wrong_abi").string()});
  EXPECT_EQ(r.exit_code, 3);
  // `caulk nodes` lists the plugins that could not be loaded, and why, after the node types.
  EXPECT_THAT(r.out, HasSubstr("1 plugin could not be loaded:\n  plugin " + test_plugin("wrong_abi").string() +
                               " failed to load: built for caulk plugin ABI version 999, but this caulk has ABI version " +
                               std::to_string(CAULK_ABI_VERSION)));
  EXPECT_THAT(r.err, HasSubstr("1 plugin could not be loaded (listed above)"));
  // The other plugins still work and are listed.
  EXPECT_THAT(r.out, HasSubstr("rank.logme"));
}

TEST(CliPlugins, UndefinedSymbolShowsTheLoadersMessage) {
  // The quickstart does not need the broken plugin: a warning, and the pipeline is fine.
  auto r = run_caulk({"check", quickstart(), "--plugin-path", folder_of("undefined_symbol")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("caulk: warning: plugin " + test_plugin("undefined_symbol").string() + " failed to load:"));
  EXPECT_THAT(r.err, HasSubstr("undefined symbol: caulk_test_symbol_that_nobody_defines"));
}

TEST(CliPlugins, MissingPathAndNonPlugins) {
  auto missing = run_caulk({"nodes", "--plugin-path", "/nonexistent/plugins"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_THAT(missing.out, HasSubstr("plugin /nonexistent/plugins failed to load: plugin path does not exist"));
  auto stranger = run_caulk({"nodes", "--plugin-path", test_plugin("not_a_plugin").string()});
  EXPECT_EQ(stranger.exit_code, 3);
  EXPECT_THAT(stranger.out, HasSubstr("not a caulk plugin"));
}

TEST(CliPlugins, FailedRegistrationLeavesNothingBehind) {
  auto r = run_caulk({"nodes", "--plugin-path", test_plugin("throws_on_register").string()});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.out, HasSubstr("registration failed: node type 'broken.second': output port 'x' has unknown artifact type 'NoSuchType'"));
  EXPECT_THAT(r.out, Not(HasSubstr("broken.first  ")));
}

TEST(CliPlugins, ADuplicateNodeTypeIsRefusedAloneAndTheBundledPluginKeepsIt) {
  auto r = run_caulk({"nodes", "--plugin-path", folder_of("duplicate_node")});
  EXPECT_EQ(r.exit_code, 3);
  // The message names both plugins and both files.
  EXPECT_THAT(r.out, HasSubstr("plugin " + test_plugin("duplicate_node").string() +
                               " was refused: plugin 'duplicate_node' registers the node type 'rank.logme', which plugin "
                               "'rankers' (" +
                               (caulk_binary().parent_path().parent_path() / "lib/caulk/plugins/rankers.so").string() +
                               ") registered first; rename the node type"));
  // The bundled rankers plugin is whole; the newcomer is refused whole (its own type too).
  EXPECT_THAT(r.out, HasSubstr("rank.logme"));
  EXPECT_THAT(r.out, HasSubstr("rank.leep"));
  EXPECT_THAT(r.out, Not(HasSubstr("duplicate.only_here  ")));
  auto logme = run_caulk({"nodes", "--plugin-path", folder_of("duplicate_node"), "rank.logme"});
  EXPECT_EQ(logme.exit_code, 0) << logme.err;
  EXPECT_THAT(logme.out, HasSubstr("Plugin\n  rankers"));
  // Whatever the order of the folders: the bundled plugins load first.
  auto both = run_caulk({"nodes", "rank.logme"}, "CAULK_PLUGIN_PATH=" + folder_of("duplicate_node"));
  EXPECT_THAT(both.out, HasSubstr("Plugin\n  rankers"));
  EXPECT_THAT(both.err, HasSubstr("caulk: warning: plugin " + test_plugin("duplicate_node").string() + " was refused"));

  // A pipeline that uses rank.logme runs with the bundled one, and only warns about the newcomer.
  TempDir dir;
  for (const char* cmd : {"check", "graph", "run"}) {
    std::vector<std::string> args{cmd, quickstart(), "--plugin-path", folder_of("duplicate_node")};
    if (std::string(cmd) == "run") args.insert(args.end(), {"--out", (dir / "out").string()});
    auto p = run_caulk(args);
    EXPECT_EQ(p.exit_code, 0) << cmd << "\n" << p.err;
    EXPECT_THAT(p.err, HasSubstr("caulk: warning: plugin " + test_plugin("duplicate_node").string() + " was refused"));
  }
  EXPECT_THAT(read_file(dir / "out/run.json"), HasSubstr("\"status\": \"ok\""));
}

TEST(CliPlugins, APluginNamedLikeALoadedOneIsRefused) {
  auto r = run_caulk({"nodes", "--plugin-path", folder_of("test_nodes"), "--plugin-path", folder_of("name_clash")});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.out, HasSubstr("plugin " + test_plugin("name_clash").string() +
                               " was refused: a plugin named 'test_nodes' was "
                               "already loaded from " +
                               test_plugin("test_nodes").string()));
  EXPECT_THAT(r.out, HasSubstr("test.pass"));
  EXPECT_THAT(r.out, Not(HasSubstr("clash.other")));
}

TEST(CliPlugins, TheSameFolderTwiceIsLoadedOnce) {
  auto r = run_caulk({"nodes", "--plugin-path", folder_of("test_nodes"), "--plugin-path", test_plugin("test_nodes").string()},
                     "CAULK_PLUGIN_PATH=" + folder_of("test_nodes"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("test.pass"));
}

TEST(CliPlugins, ExitCode3OnlyWhenThePipelineNeedsAPluginThatFailed) {
  TempDir dir, other_dir;
  // duplicate_node was refused; its own type duplicate.only_here is therefore missing.
  auto needs_refused = write_pipeline(dir, "", "[[node]]\nid = \"t\"\ntype = \"duplicate.only_here\"\n");
  // undefined_symbol failed before saying which types it has: it may provide any missing type.
  auto needs_any = write_pipeline(other_dir, "", task_and("undefined.pass"));
  for (const char* cmd : {"check", "graph", "run"}) {
    auto r = run_caulk({cmd, needs_refused.string(), "--plugin-path", folder_of("duplicate_node")}, "", dir.path());
    EXPECT_EQ(r.exit_code, 3) << cmd << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("p.toml:6:8: error: node 't': unknown node type 'duplicate.only_here'"));
    EXPECT_THAT(r.err,
                HasSubstr("a plugin that was not loaded offers it: plugin " + test_plugin("duplicate_node").string() + " was refused"));
    auto any = run_caulk({cmd, needs_any.string(), "--plugin-path", folder_of("undefined_symbol")}, "", dir.path());
    EXPECT_EQ(any.exit_code, 3) << cmd << "\n" << any.err;
    EXPECT_THAT(any.err, HasSubstr("a plugin that was not loaded may provide it: plugin " + test_plugin("undefined_symbol").string() +
                                   " failed to load"));
    // Without the failed plugin, the same pipeline is only wrong (exit 2).
    EXPECT_EQ(run_caulk({cmd, needs_any.string()}, "", dir.path()).exit_code, 2) << cmd;
    // A plugin that failed without offering the missing type is not needed: exit 2, and a warning.
    auto unrelated = run_caulk({cmd, needs_refused.string(), "--plugin-path", folder_of("not_a_plugin")}, "", dir.path());
    EXPECT_EQ(unrelated.exit_code, 2) << cmd << "\n" << unrelated.err;
    EXPECT_THAT(unrelated.err, HasSubstr("caulk: warning: plugin " + test_plugin("not_a_plugin").string() + " failed to load"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "runs"));
  EXPECT_FALSE(std::filesystem::exists(other_dir / "runs"));
  // `caulk nodes TYPE` alike.
  EXPECT_EQ(run_caulk({"nodes", "--plugin-path", folder_of("duplicate_node"), "duplicate.only_here"}).exit_code, 3);
  EXPECT_EQ(run_caulk({"nodes", "--plugin-path", folder_of("not_a_plugin"), "duplicate.only_here"}).exit_code, 2);
}

TEST(CliPlugins, AnUnknownTypeSaysWhichFoldersWereSearchedAndHowToAddOne) {
  TempDir dir;
  auto file = write_pipeline(dir, "", task_and("test.pas"));
  auto r = run_caulk({"check", file.string(), "--plugin-path", folder_of("wrong_abi")}, "CAULK_PLUGIN_PATH=/nonexistent/env");
  EXPECT_EQ(r.exit_code, 3) << r.err;  // the missing folder, or the wrong ABI plugin, may have had it
  const std::string bundled = (caulk_binary().parent_path().parent_path() / "lib/caulk/plugins").string();
  EXPECT_THAT(r.err, HasSubstr("p.toml:10:8: error: node 'x': unknown node type 'test.pas'"));
  EXPECT_THAT(r.err, HasSubstr("\n  plugin folders searched: " + bundled + ", " + folder_of("wrong_abi") + ", /nonexistent/env\n"));
  EXPECT_THAT(r.err, HasSubstr("\n  to add one: --plugin-path DIR, CAULK_PLUGIN_PATH=DIR, or plugins = [\"DIR\"] in [pipeline]"));
  // With no failed plugin: exit 2, the did-you-mean beside the hint.
  auto plain = run_caulk({"check", file.string(), "--plugin-path", folder_of("test_nodes")});
  EXPECT_EQ(plain.exit_code, 2) << plain.err;
  EXPECT_THAT(plain.err, HasSubstr("unknown node type 'test.pas' (did you mean 'test.pass'?)"));
  EXPECT_THAT(plain.err, HasSubstr("\n  plugin folders searched: " + bundled + ", " + folder_of("test_nodes") + "\n"));
}

TEST(CliPlugins, APipelineNamesThePluginsItNeeds) {
  TempDir dir;
  const auto nodes = task_and("test.pass");
  // Paths are relative to the pipeline file, whatever the current folder.
  const auto relative = [&](const std::string& plugin) { return std::filesystem::relative(test_plugin(plugin), dir.path()).string(); };
  for (const std::string& entry : {relative("test_nodes"), std::filesystem::path(relative("test_nodes")).parent_path().string()}) {
    auto file = write_pipeline(dir, "plugins = [\"" + entry + "\"]", nodes);
    for (const char* cmd : {"check", "graph"}) {
      auto r = run_caulk({cmd, file.string()}, "", "/");
      EXPECT_EQ(r.exit_code, 0) << cmd << " " << entry << "\n" << r.err;
      EXPECT_EQ(r.err, "") << cmd << " " << entry;
    }
  }
  // A bare name is looked up among the plugins of the search path.
  auto by_name = write_pipeline(dir, "plugins = [\"test_nodes\"]", nodes);
  auto found = run_caulk({"check", by_name.string()}, "CAULK_PLUGIN_PATH=" + folder_of("test_nodes"));
  EXPECT_EQ(found.exit_code, 0) << found.err;
  auto r = run_caulk({"run", by_name.string(), "--out", (dir / "out").string()}, "CAULK_PLUGIN_PATH=" + folder_of("test_nodes"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(CliPlugins, APipelinePluginThatCannotBeLoadedIsAnErrorAtItsEntry) {
  TempDir dir;
  const auto nodes = task_and("test.pass");
  const std::string bundled = (caulk_binary().parent_path().parent_path() / "lib/caulk/plugins").string();
  struct Case {
    std::string entry, message;
  };
  const std::vector<Case> cases = {
      {"./nope.so", "p.toml:3:21: error: plugin \"./nope.so\": no such plugin file or folder: " + (dir / "nope.so").string()},
      {test_plugin("wrong_abi").string(), "p.toml:3:21: error: plugin \"" + test_plugin("wrong_abi").string() + "\": plugin " +
                                              test_plugin("wrong_abi").string() +
                                              " failed to load: built for caulk plugin ABI version 999"},
      {test_plugin("duplicate_node").string(), "registers the node type 'rank.logme', which plugin 'rankers' ("},
      {folder_of("not_a_plugin"), "not a caulk plugin"},
  };
  for (const auto& c : cases) {
    auto file = write_pipeline(dir, "plugins = [\"other\", \"" + c.entry + "\"]", nodes);
    for (const char* cmd : {"check", "graph", "run"}) {
      auto r = run_caulk({cmd, file.string(), "--plugin-path", folder_of("test_nodes")}, "", dir.path());
      EXPECT_EQ(r.exit_code, 3) << cmd << " " << c.entry << "\n" << r.err;
      // Every entry that failed, each at its place.
      EXPECT_THAT(r.err, HasSubstr("p.toml:3:12: error: plugin \"other\": no plugin named 'other' was loaded from the plugin "
                                   "path (searched: " +
                                   bundled + ", " + folder_of("test_nodes") +
                                   "); add its folder with --plugin-path DIR or CAULK_PLUGIN_PATH, or give its path here"))
          << c.entry;
      EXPECT_THAT(r.err, HasSubstr(c.message)) << cmd << " " << c.entry;
      EXPECT_THAT(r.err, HasSubstr("nothing was run"));
    }
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "runs"));
}

TEST(CliPlugins, TheirListMustBeStrings) {
  TempDir dir;
  auto not_a_list = write_pipeline(dir, "plugins = \"x.so\"", task_and("test.pass"));
  auto r = run_caulk({"check", not_a_list.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("p.toml:3:11: error: [pipeline]: 'plugins' must be a list of plugin paths or names"));
  auto not_strings = write_pipeline(dir, "plugins = [\"a.so\", 3, \"\"]", task_and("test.pass"));
  auto s = run_caulk({"check", not_strings.string()});
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_THAT(s.err, HasSubstr("p.toml:3:20: error: [pipeline]: each entry of 'plugins' must be a non-empty string"));
  EXPECT_THAT(s.err, HasSubstr("p.toml:3:23: error: [pipeline]: each entry of 'plugins' must be a non-empty string"));
}

TEST(CliPlugins, BuildRecordsAreChecked) {
  TempDir dir;
  // Built without optimisation: it loads, and a pipeline that uses its node is warned.
  auto uses = write_pipeline(dir, "", task_and("unoptimized.pass"));
  auto slow = run_caulk({"check", uses.string(), "--plugin-path", folder_of("unoptimized")});
  EXPECT_EQ(slow.exit_code, 0) << slow.err;
  EXPECT_THAT(slow.err, HasSubstr("caulk: warning: plugin 'unoptimized' (" + test_plugin("unoptimized").string() +
                                  "): built without optimisation (a Debug build?): its nodes may run many times slower"));
  auto unused = run_caulk({"check", quickstart(), "--plugin-path", folder_of("unoptimized")});
  EXPECT_EQ(unused.exit_code, 0) << unused.err;
  EXPECT_EQ(unused.err, "");
  // Another Eigen alignment: refused, since matrices cross the plugin boundary.
  auto other = run_caulk({"nodes", "--plugin-path", folder_of("misaligned")});
  EXPECT_EQ(other.exit_code, 3);
  EXPECT_THAT(other.out, HasSubstr("plugin " + test_plugin("misaligned").string() +
                                   " failed to load: compiled with another Eigen configuration than caulk (the plugin: 64-byte alignment"));
  EXPECT_THAT(other.out, Not(HasSubstr("misaligned.pass")));
}

TEST(CliPlugins, EnvironmentPathIsSearched) {
  auto r = run_caulk({"nodes", "test.pass"}, "CAULK_PLUGIN_PATH=" + test_plugin("test_nodes").parent_path().string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Pass a dataset through"));
}

}  // namespace
