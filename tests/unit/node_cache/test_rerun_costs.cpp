// What a re-run into the same --out repeats (docs/performance.md, "Re-runs"): the folder's ledger is
// saved once per node and not at all for reused nodes, yet stays true after a kill; report.html
// keeps the graph's layout while the graph and the statuses are unchanged and draws it again when
// they change.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <set>
#include <thread>

#include "caulk/file_hash.hpp"
#include "caulk/run_folder.hpp"
#include "cli.hpp"
#include "reports/algorithms/graph_drawing.hpp"

extern char** environ;

using namespace caulk::testing;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Project {
  TempDir dir;
  fs::path pipeline = dir / "quickstart.toml";
  fs::path out = dir / "out";
  explicit Project(bool with_report = true) {
    std::string toml = read_file(source_dir() / "pipelines" / "quickstart.toml");
    // Without report.html, which writes its page after every run.
    if (!with_report) toml = toml.substr(0, toml.rfind("[[observer]]", toml.find("type = \"report.html\"")));
    dir.write("quickstart.toml", toml);
    fs::copy(source_dir() / "pipelines" / "demo", dir / "demo", fs::copy_options::recursive);
  }
  std::vector<std::string> args() const { return {"run", pipeline.string(), "--out", out.string(), "--jobs", "2"}; }
  CliResult run(const std::string& env = "") const { return run_caulk(args(), env); }
};

struct Identity {
  ino_t inode = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const Identity& o) const { return inode == o.inode && mtime_ns == o.mtime_ns; }
};
Identity identity_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return {};
  return {st.st_ino, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

// Every entry of the ledger whose file is there has the size and hash it records; returns how many.
std::size_t check_ledger(const fs::path& out) {
  const std::string text = read_file(out / ".caulk" / "outputs.json");
  if (text.empty()) return 0;
  const Json ledger = Json::parse(text);  // never half-written
  std::size_t checked = 0;
  for (const auto& [rel, e] : ledger.at("outputs").items()) {
    if (e.value("folder", false) || !fs::exists(out / rel)) continue;
    EXPECT_EQ(fs::file_size(out / rel), e.at("size").get<std::uintmax_t>()) << rel;
    EXPECT_EQ(caulk::hash_file(out / rel), e.at("xxh3_128").get<std::string>()) << rel;
    ++checked;
  }
  return checked;
}

// A `dot` that counts its runs in COUNT and hands over to Graphviz's; empty when there is none.
fs::path counting_dot(const TempDir& dir) {
  const auto found = run_captured("command -v dot");
  std::string real = found.out;
  while (!real.empty() && (real.back() == '\n' || real.back() == '\r')) real.pop_back();
  if (real.empty()) return {};
  const fs::path bin = dir / "bin";
  const fs::path script = dir.write(
      "bin/dot", "#!/bin/sh\necho run >> " + shell_quote((dir / "dot-runs").string()) + "\nexec " + shell_quote(real) + " \"$@\"\n");
  fs::permissions(script, fs::perms::owner_all);
  return bin;
}
std::size_t dot_runs(const TempDir& dir) {
  const std::string runs = read_file(dir / "dot-runs");
  return static_cast<std::size_t>(std::count(runs.begin(), runs.end(), '\n'));
}

}  // namespace

// ------------------------------------------------------------------------------ the ledger

TEST(RerunCosts, AnUnchangedRerunDoesNotRewriteTheLedger) {
  Project p(/*with_report=*/false);
  ASSERT_EQ(p.run().exit_code, 0);
  const fs::path ledger = p.out / ".caulk" / "outputs.json";
  const Identity before = identity_of(ledger);
  ASSERT_NE(before.inode, 0u);
  const std::string text = read_file(ledger);
  const auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_THAT(r.err, HasSubstr("4 of 4 nodes reused from an earlier run"));
  // Every output is there as recorded, so the ledger already says it all: not replaced.
  EXPECT_EQ(identity_of(ledger), before) << "the ledger was rewritten by a run that changed nothing";
  EXPECT_EQ(read_file(ledger), text);
  EXPECT_GE(check_ledger(p.out), 1u);
  // A changed output is recorded.
  ASSERT_EQ(run_caulk([&] {
              auto a = p.args();
              a.insert(a.end(), {"--set", "ranking.digits=6"});
              return a;
            }())
                .exit_code,
            0);
  EXPECT_NE(read_file(ledger), text);
  EXPECT_GE(check_ledger(p.out), 1u);
}

TEST(RerunCosts, TheLedgerIsSavedOncePerNodeAndNotForWhatItAlreadySays) {
  TempDir dir;
  const fs::path out = dir / "out";
  fs::create_directories(out / ".caulk");
  const fs::path a = dir.write("out/node/a.csv", "1\n"), b = dir.write("out/node/b.csv", "22\n"), c = dir.write("out/c.csv", "333\n");
  auto entry = [](const fs::path& p) { return caulk::RunFolderLedger::Entry{fs::file_size(p), caulk::hash_file(p), false}; };
  {
    caulk::RunFolderLedger ledger(out);
    ledger.prepare("p\nfile");
    ledger.add_all({{a, entry(a)}, {b, entry(b)}, {c, entry(c)}});
    EXPECT_EQ(ledger.saves(), 1u) << "one save for the three outputs of one node";
    ledger.add_all({{a, entry(a)}, {b, entry(b)}});
    EXPECT_EQ(ledger.saves(), 1u) << "the ledger already says this";
    ledger.add_all({{dir / "elsewhere.csv", entry(a)}, {out / ".caulk" / "x", entry(a)}});
    EXPECT_EQ(ledger.saves(), 1u) << "outside the folder, or caulk's own state: not recorded";
  }
  EXPECT_EQ(check_ledger(out), 3u);
  // The next run's ledger reads it back: reused outputs recorded again cost nothing, a changed
  // one one save.
  caulk::RunFolderLedger next(out);
  next.prepare("p\nfile");
  next.add_all({{a, entry(a)}, {b, entry(b)}});
  next.add_all({{c, entry(c)}});
  EXPECT_EQ(next.saves(), 0u);
  dir.write("out/c.csv", "4444\n");
  next.add_all({{c, entry(c)}});
  EXPECT_EQ(next.saves(), 1u);
  EXPECT_EQ(check_ledger(out), 3u);
  caulk::FileHashCache hashes;
  EXPECT_TRUE(next.clean_up({}, hashes).empty());
  EXPECT_EQ(next.saves(), 2u) << "the nodes' saves are not flushed: the run's end writes it once more, flushed";
  next.save();
  EXPECT_TRUE(next.clean_up({}, hashes).empty());
  EXPECT_EQ(next.saves(), 2u) << "the ledger on disk already says this, flushed";
  EXPECT_EQ(check_ledger(out), 3u);
}

// Runs killed at moments spread over a run: the ledger is whole JSON, and every file it names is
// what it says; the next run completes and leaves a true ledger.
TEST(RerunCosts, ARunKilledAtAnyMomentLeavesATrueLedgerAndTheNextRunRecovers) {
  Project p;
  // How long a whole first run takes here, to spread the kills over it.
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(p.run().exit_code, 0);
  const double whole = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int k = 1; k <= 4; ++k) {
    fs::remove_all(p.out);
    std::vector<std::string> args{"env", "-u", "CAULK_PLUGIN_PATH", caulk_binary().string()};
    const auto more = p.args();
    args.insert(args.end(), more.begin(), more.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawnp(&pid, "env", &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    std::this_thread::sleep_for(std::chrono::duration<double>(whole * k / 5.0));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    check_ledger(p.out);
    const auto r = p.run();
    ASSERT_EQ(r.exit_code, 0) << "after a kill at " << k << "/5 of a run: " << r.err;
    EXPECT_GE(check_ledger(p.out), 2u);
  }
}

// ------------------------------------------------------------------------------ the graph drawing

TEST(RerunCosts, TheReportKeepsTheGraphsLayoutAndDrawsItAgainWhenTheGraphChanges) {
  Project p;
  const fs::path bin = counting_dot(p.dir);
  if (bin.empty()) GTEST_SKIP() << "Graphviz is not installed";
  const std::string env = "PATH=" + shell_quote(bin.string() + ":/usr/bin:/bin");
  ASSERT_EQ(p.run(env).exit_code, 0);
  EXPECT_EQ(dot_runs(p.dir), 1u);
  const auto again = p.run(env);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(dot_runs(p.dir), 1u) << "an unchanged graph is not drawn again";
  const std::string html = read_file(p.out / "report.html");
  const std::size_t svg = html.find("<figure class=\"graph\"");
  ASSERT_NE(svg, std::string::npos) << "the graph is drawn (svg), not shown as DOT text";
  const std::string drawing = html.substr(svg, html.find("</figure>", svg) - svg);
  // This run's statuses and times, not the kept drawing's stand-ins.
  EXPECT_THAT(drawing, HasSubstr(">ok (cached), "));
  EXPECT_THAT(drawing, Not(HasSubstr(">running")));  // drawn once the run had ended
  EXPECT_THAT(drawing, Not(HasSubstr("00.00 s</text>")));
  // Another graph (one more node): drawn again, with the new node.
  std::string toml = read_file(p.pipeline);
  toml += "\n[[node]]\nid = \"logme_two\"\ntype = \"rank.logme\"\ninputs = { features = \"hub\", data = \"task\" }\n";
  p.dir.write("quickstart.toml", toml);
  const auto changed = p.run(env);
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_EQ(dot_runs(p.dir), 2u) << "a changed graph is drawn again";
  EXPECT_THAT(read_file(p.out / "report.html"), HasSubstr("<title>logme_two</title>"));
}

TEST(RerunCosts, TheKeptLayoutTakesEachRunsTimesButAnotherStatusIsDrawnAgain) {
  TempDir dir;
  const fs::path bin = counting_dot(dir);
  if (bin.empty()) GTEST_SKIP() << "Graphviz is not installed";
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  ::setenv("PATH", (bin.string() + ":/usr/bin:/bin").c_str(), 1);
  const std::string dot = "digraph \"p\" {\n  \"a-1\" [label=\"a-1\\nx.one\"];\n  \"b\" [label=\"b\\nx.two\"];\n  \"a-1\" -> \"b\";\n}\n";
  Json run = {{"nodes",
               {{"a-1", {{"type", "x.one"}, {"status", "ok"}, {"seconds", 1.5}}},
                {"b", {{"type", "x.two"}, {"status", "ok"}, {"seconds", 12.25}}}}}};
  const fs::path keep = dir / "state";
  fs::create_directories(keep);
  bool reused = true;
  const auto first = caulk::report::draw_graph_with_status(dot, run, keep, &reused);
  EXPECT_FALSE(reused);
  EXPECT_THAT(first.svg, HasSubstr(">ok, 1.50 s</text>"));
  EXPECT_THAT(first.svg, HasSubstr(">ok, 12.25 s</text>"));
  run["nodes"]["a-1"]["cached"] = true;
  run["nodes"]["a-1"]["seconds"] = 0.01;
  const auto second = caulk::report::draw_graph_with_status(dot, run, keep, &reused);
  EXPECT_TRUE(reused);
  EXPECT_THAT(second.svg, HasSubstr(">ok (cached), 0.01 s</text>"));
  EXPECT_THAT(second.svg, HasSubstr(">ok, 12.25 s</text>"));
  EXPECT_EQ(dot_runs(dir), 1u);
  // The same layout as a fresh drawing of the same run gives.
  fs::remove(keep / "report-graph.svg");
  const auto fresh = caulk::report::draw_graph_with_status(dot, run, keep, &reused);
  EXPECT_FALSE(reused);
  EXPECT_EQ(fresh.svg, second.svg);
  // Another status changes the node's look: drawn again.
  run["nodes"]["b"]["status"] = "failed";
  run["nodes"]["b"]["error"] = "boom";
  const auto failed = caulk::report::draw_graph_with_status(dot, run, keep, &reused);
  EXPECT_FALSE(reused);
  EXPECT_THAT(failed.svg, HasSubstr(">FAILED, 12.25 s</text>"));
  EXPECT_EQ(dot_runs(dir), 3u);
  // Without a folder to keep it in, it is drawn every time, as dot_with_status says.
  const auto unkept = caulk::report::draw_graph_with_status(dot, run, fs::path(), &reused);
  EXPECT_FALSE(reused);
  EXPECT_EQ(unkept.svg, caulk::report::draw_with_graphviz(caulk::report::dot_with_status(dot, run)).svg);
  ::setenv("PATH", saved.c_str(), 1);
}

// ------------------------------------------------------------------------------ pruning

// Entries of keys a successful run no longer has leave OUT/.caulk/cache/ at once (one rename each)
// and are deleted by the next run, while its nodes run.
TEST(RerunCosts, PrunedEntriesAreMovedAsideAndDeletedByTheNextRun) {
  Project p(/*with_report=*/false);
  ASSERT_EQ(p.run().exit_code, 0);
  auto entries = [&](const fs::path& dir) {
    std::set<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.insert(it->path().filename().string());
    return out;
  };
  const std::set<std::string> before = entries(p.out / ".caulk" / "cache");
  ASSERT_EQ(before.size(), 4u);
  auto args = p.args();
  args.insert(args.end(), {"--set", "ranking.digits=6"});
  ASSERT_EQ(run_caulk(args).exit_code, 0);
  const std::set<std::string> after = entries(p.out / ".caulk" / "cache");
  EXPECT_EQ(after.size(), 4u) << "the old entry of ranking left the cache";
  std::set<std::string> gone;
  for (const auto& e : before)
    if (!after.count(e)) gone.insert(e);
  ASSERT_EQ(gone.size(), 1u);
  const std::set<std::string> aside = entries(p.out / ".caulk" / "removed");
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_EQ(aside.begin()->rfind(*gone.begin() + "-", 0), 0u) << *aside.begin();
  // The next run deletes it, and finds everything else as it was.
  const auto r = run_caulk(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("4 of 4 nodes reused"));
  EXPECT_TRUE(entries(p.out / ".caulk" / "removed").empty());
}
