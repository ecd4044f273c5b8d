// Re-runs that redo only what changed (caulk/node_cache.hpp), through the CLI: which nodes a re-run
// into the same --out reuses, and that what it reuses gives the same run.json as running them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "cli.hpp"
#include "distributed/mpi_support.hpp"
#include "run_json.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A copy of pipelines/quickstart.toml and its demo data, so the tests may change the data.
struct Project {
  TempDir dir;
  fs::path pipeline = dir / "quickstart.toml";
  fs::path out = dir / "out";
  Project() {
    fs::copy(source_dir() / "pipelines" / "quickstart.toml", pipeline);
    fs::copy(source_dir() / "pipelines" / "demo", dir / "demo", fs::copy_options::recursive);
  }
  CliResult run(std::vector<std::string> extra = {}, unsigned jobs = 2) const {
    std::vector<std::string> args{"run", pipeline.string(), "--out", out.string(), "--jobs", std::to_string(jobs)};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_caulk(args);
  }
  Json record() const { return Json::parse(read_file(out / "run.json")); }
};

// The nodes run.json marks "cached".
std::set<std::string> reused(const Json& run) {
  std::set<std::string> out;
  for (const auto& [id, node] : run.at("nodes").items()) {
    EXPECT_EQ(node.at("status"), "ok") << id;
    if (node.value("cached", false)) out.insert(id);
  }
  return out;
}

// Flips the lowest bit of the last byte of a file (the last element of a .npy: a value that
// changes a little, stays finite, and keeps the file's size).
void flip_last_bit(const fs::path& p) {
  std::string bytes = read_file(p);
  ASSERT_FALSE(bytes.empty());
  bytes.back() = static_cast<char>(bytes.back() ^ 1);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

Json without_times_and_flags_in(Json j);

// run.json without what may differ between a run that reused nodes and one that ran them, in the
// same folder: times (run and provenance), jobs, the command line, and the cached flags.
Json without_times_and_flags(Json j) { return without_times_and_flags_in(std::move(j)); }

Json without_times_and_flags_in(Json j) {
  if (j.is_object()) {
    Json out = Json::object();
    for (auto& [k, v] : j.items()) {
      if (k == "seconds" || k == "cached" || k == "started" || k == "ended" || k == "mtime" || k == "jobs" || k == "command") continue;
      out[k] = without_times_and_flags_in(v);
    }
    return out;
  }
  if (j.is_array())
    for (auto& v : j) v = without_times_and_flags_in(v);
  return j;
}

const std::set<std::string> kQuickstartCacheable = {"task", "hub", "logme", "ranking"};  // every node

TEST(NodeCache, AnUnchangedRerunReusesEveryNodeAndSaysSo) {
  Project p;
  auto first = p.run();
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(reused(p.record()).empty());
  const std::string ranking_csv = read_file(p.out / "ranking.csv");
  auto second = p.run();
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const Json j = p.record();
  EXPECT_EQ(reused(j), kQuickstartCacheable);
  EXPECT_THAT(second.err, HasSubstr("[caulk] reused logme (rank.logme)"));
  EXPECT_THAT(second.err, Not(HasSubstr("[caulk] start logme")));
  EXPECT_THAT(second.err, HasSubstr("4 of 4 nodes reused from an earlier run"));
  // The printed table is replayed; the outputs stay.
  EXPECT_EQ(second.out, first.out);
  EXPECT_EQ(read_file(p.out / "ranking.csv"), ranking_csv);
  // The report shows which nodes were reused.
  EXPECT_THAT(read_file(p.out / "report.html"), HasSubstr("&#10003; ok (cached)"));
}

TEST(NodeCache, ChangingALeafParameterRerunsOnlyThatNode) {
  Project p;
  ASSERT_EQ(p.run().exit_code, 0);
  auto r = p.run({"--set", "ranking.digits=6"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(reused(p.record()), (std::set<std::string>{"task", "hub", "logme"}));
  EXPECT_THAT(r.err, HasSubstr("[caulk] start ranking"));
  // Back to the first value: the entry of the first run was replaced, so ranking runs again once.
  ASSERT_EQ(p.run().exit_code, 0);
  EXPECT_EQ(reused(p.record()), (std::set<std::string>{"task", "hub", "logme"}));
  ASSERT_EQ(p.run().exit_code, 0);
  EXPECT_EQ(reused(p.record()), kQuickstartCacheable);
}

TEST(NodeCache, ChangingADeclaredFileRerunsExactlyItsDescendants) {
  Project p;
  ASSERT_EQ(p.run().exit_code, 0);
  flip_last_bit(p.dir / "demo" / "labels_test.npy");  // task's labels parameter
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(reused(p.record()), (std::set<std::string>{"hub"}));
}

TEST(NodeCache, ChangingAFileReadThroughAManifestRerunsTheNodeThatReadItAndItsDescendants) {
  Project p;
  ASSERT_EQ(p.run().exit_code, 0);
  // No parameter names it: the hub's manifest does. LogME reads it (handed in the Embeddings).
  flip_last_bit(p.dir / "demo" / "features" / "blurry_train.npy");
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::set<std::string> now = reused(p.record());
  EXPECT_TRUE(now.count("task")) << r.err;
  EXPECT_FALSE(now.count("logme")) << r.err;
  EXPECT_FALSE(now.count("ranking")) << r.err;
  EXPECT_THAT(r.err, HasSubstr("blurry_train.npy, which it read, changed"));
}

TEST(NodeCache, TouchingAFileWithoutChangingItRerunsNothing) {
  Project p;
  ASSERT_EQ(p.run().exit_code, 0);
  const auto later = fs::file_time_type::clock::now() + std::chrono::seconds(5);
  for (const char* f : {"labels_train.npy", "labels_test.npy", "hub.toml", "features/blurry_train.npy"})
    fs::last_write_time(p.dir / "demo" / f, later);
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(reused(p.record()), kQuickstartCacheable);
}

TEST(NodeCache, ACorruptedOutputIsDetectedAndRecomputed) {
  Project p;
  ASSERT_EQ(p.run().exit_code, 0);
  const std::string csv = read_file(p.out / "ranking.csv");
  std::string damaged = csv;
  damaged[damaged.size() / 2] = damaged[damaged.size() / 2] == '0' ? '1' : '0';  // same size, other bytes
  std::ofstream(p.out / "ranking.csv", std::ios::binary | std::ios::trunc) << damaged;
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(reused(p.record()), (std::set<std::string>{"task", "hub", "logme"}));
  EXPECT_THAT(r.err, HasSubstr("ranking.csv changed"));
  EXPECT_EQ(read_file(p.out / "ranking.csv"), csv);
  // A missing output too.
  fs::remove(p.out / "ranking.md");
  ASSERT_EQ(p.run().exit_code, 0);
  EXPECT_EQ(reused(p.record()), (std::set<std::string>{"task", "hub", "logme"}));
  EXPECT_TRUE(fs::exists(p.out / "ranking.md"));
}

// The folder of a node's entry, found by its node name.
fs::path entry_of(const fs::path& out, const std::string& node) {
  for (const auto& e : fs::directory_iterator(out / ".caulk" / "cache")) {
    if (!fs::exists(e.path() / "entry.json")) continue;
    if (Json::parse(read_file(e.path() / "entry.json")).at("node") == node) return e.path();
  }
  ADD_FAILURE() << "no entry for " << node;
  return {};
}

// The first .npy of a node's entry, damaged by `damage`.
void damage_an_array_of(const fs::path& out, const std::string& node, void (*damage)(const fs::path&)) {
  for (const auto& e : fs::directory_iterator(entry_of(out, node)))
    if (e.path().extension() == ".npy") return damage(e.path());
  ADD_FAILURE() << "no array in the entry of " << node;
}

void truncate_to_half(const fs::path& p) { fs::resize_file(p, fs::file_size(p) / 2); }

TEST(NodeCache, ADamagedEntryIsIgnoredAndTheNodeRuns) {
  Project p;
  ASSERT_EQ(p.run().exit_code, 0);
  const Json fresh = without_times_and_flags(p.record());
  // The record of a fresh run with ranking.digits = 6, made in another folder: its paths are
  // written as this project's.
  Project p6;
  ASSERT_EQ(p6.run({"--set", "ranking.digits=6"}).exit_code, 0);
  std::string text6 = without_times_and_flags(p6.record()).dump();
  for (std::size_t at = text6.find(p6.dir.path().string()); at != std::string::npos; at = text6.find(p6.dir.path().string(), at))
    text6.replace(at, p6.dir.path().string().size(), p.dir.path().string());
  const Json fresh6 = Json::parse(text6);
  // LogME's scores, truncated. A re-run in which no node that runs reads them reuses LogME without
  // reading its arrays back: nothing this run makes depends on them.
  damage_an_array_of(p.out, "logme", truncate_to_half);
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(reused(p.record()), kQuickstartCacheable);
  // The ranking runs and reads them: they are found damaged, so LogME runs again too.
  r = p.run({"--set", "ranking.digits=6"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(reused(p.record()), (std::set<std::string>{"task", "hub"}));
  EXPECT_THAT(r.err, HasSubstr("[caulk] logme runs again: its stored outputs cannot be read back"));
  EXPECT_EQ(without_times_and_flags(p.record()), fresh6);
  // The same size, other bytes (what a crash may leave of an array that was never flushed on its
  // own): the entry's hash of the array no longer matches, so LogME runs again.
  damage_an_array_of(p.out, "logme", flip_last_bit);
  r = p.run();  // ranking with its first parameters: its entry was replaced by the digits = 6 one
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(reused(p.record()), (std::set<std::string>{"task", "hub"}));
  EXPECT_EQ(without_times_and_flags(p.record()), fresh);
  // Garbage for an entry's JSON, and an empty one.
  std::ofstream(entry_of(p.out, "hub") / "entry.json", std::ios::trunc) << "{\"format\": 1, \"key\": [garbage";
  r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(reused(p.record()), (std::set<std::string>{"task"}));
  std::ofstream(entry_of(p.out, "task") / "entry.json", std::ios::trunc) << "";
  r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(without_times_and_flags(p.record()), fresh);
}

TEST(NodeCache, NoCacheRunsEveryNodeAndTheNextRunReusesThem) {
  Project p;
  ASSERT_EQ(p.run().exit_code, 0);
  auto r = p.run({"--no-cache"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(reused(p.record()).empty());
  EXPECT_THAT(r.err, HasSubstr("[caulk] start logme"));
  ASSERT_EQ(p.run().exit_code, 0);
  EXPECT_EQ(reused(p.record()), kQuickstartCacheable);
}

// A cached and a fresh run give the same run.json apart from times and the cached flags, whatever
// --jobs each used. The second fresh run is made with --no-cache in the same folder, or, for a
// pipeline whose nodes refuse to overwrite their outputs (merges without `overwrite = true`), in
// another folder, and then compared without what names the folder.
void expect_same_record_cached_or_fresh(const std::string& pipeline_name, const std::set<std::string>& cacheable,
                                        bool fresh_in_other_folder) {
  TempDir dir;
  const fs::path pipeline = source_dir() / "pipelines" / (pipeline_name + ".toml");
  auto run = [&](unsigned jobs, bool no_cache, const std::string& folder) {
    std::vector<std::string> args{"run", pipeline.string(), "--out", (dir / folder).string(), "--jobs", std::to_string(jobs)};
    if (no_cache) args.push_back("--no-cache");
    auto r = run_caulk(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json::parse(read_file(dir / folder / "run.json"));
  };
  const Json fresh1 = run(1, false, "out");
  const Json cached2 = run(2, false, "out");
  const Json cached1 = run(1, false, "out");
  const Json fresh2 = fresh_in_other_folder ? run(2, false, "other") : run(2, true, "out");
  EXPECT_TRUE(reused(fresh1).empty());
  EXPECT_EQ(reused(cached2), cacheable);
  EXPECT_EQ(reused(cached1), cacheable);
  EXPECT_TRUE(reused(fresh2).empty());
  const Json want = without_times_and_flags(fresh1);
  EXPECT_EQ(without_times_and_flags(cached2).dump(1), want.dump(1));
  EXPECT_EQ(without_times_and_flags(cached1).dump(1), want.dump(1));
  if (fresh_in_other_folder)
    EXPECT_EQ(comparable_run_json(without_times_and_flags(fresh2)).dump(1), comparable_run_json(want).dump(1));
  else
    EXPECT_EQ(without_times_and_flags(fresh2).dump(1), want.dump(1));
}

TEST(NodeCache, CachedAndFreshRunJsonAreEqualApartFromTimesAndFlagsWithOneOrTwoJobs) {
  expect_same_record_cached_or_fresh("quickstart", kQuickstartCacheable, false);
}

TEST(NodeCache, MergePipelineCachedAndFreshRunJsonAreEqualWithOneOrTwoJobs) {
  std::set<std::string> every;
  for (const char* id : {"zoo",
                         "tune_a",
                         "tune_b",
                         "tune_c",
                         "soup",
                         "task_arithmetic",
                         "ties",
                         "dare",
                         "slerp",
                         "fisher_a",
                         "fisher_b",
                         "fisher_c",
                         "fisher",
                         "search",
                         "greedy_soup",
                         "regmean",
                         "merged_predictions",
                         "output_ensemble",
                         "feature_ensemble",
                         "accuracy",
                         "stability",
                         "patterns"})
    every.insert(id);
  expect_same_record_cached_or_fresh("merge", every, true);
}

TEST(NodeCache, ChangingAMergeParameterRerunsThatMergeAndWhatUsesItOnly) {
  TempDir dir;
  const fs::path pipeline = source_dir() / "pipelines" / "merge.toml";
  const std::vector<std::string> args{"run", pipeline.string(), "--out", (dir / "out").string(), "--jobs", "2"};
  ASSERT_EQ(run_caulk(args).exit_code, 0);
  auto changed = args;
  // Merges refuse to replace their output unless told to (overwrite), cache or not.
  for (const char* set : {"slerp.t=0.3", "slerp.overwrite=true"}) {
    changed.push_back("--set");
    changed.push_back(set);
  }
  auto r = run_caulk(changed);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> ran;
  const Json record = Json::parse(read_file(dir / "out" / "run.json"));
  for (const auto& [id, node] : record["nodes"].items())
    if (!node.value("cached", false)) ran.insert(id);
  EXPECT_EQ(ran, (std::set<std::string>{"slerp", "merged_predictions", "accuracy"}));
}

TEST(NodeCache, UnderMpiACachedNodeRunsOnNoRankAndTheRecordIsTheSame) {
  CAULK_REQUIRE_MPI();
  Project p;
  const std::vector<std::string> args{"run", p.pipeline.string(), "--out", p.out.string(), "--jobs", "1"};
  auto first = run_captured(mpirun_command(2, args));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const Json fresh = p.record();
  auto second = run_captured(mpirun_command(2, args));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const Json cached = p.record();
  EXPECT_EQ(reused(cached), kQuickstartCacheable);
  // No unit ran on any rank: LogME's units were not dealt out again.
  EXPECT_EQ(units_counted(cached.at("ranks")), 0u) << cached["ranks"].dump();
  EXPECT_GT(units_counted(fresh.at("ranks")), 0u) << fresh["ranks"].dump();
  EXPECT_EQ(without_times_and_flags(comparable_run_json(cached)).dump(1), without_times_and_flags(comparable_run_json(fresh)).dump(1));
}

TEST(NodeCache, UnderMpiFilesThatUnitsWroteOnAnyRankAreInTheEntryAndVerifiedOnReuse) {
  CAULK_REQUIRE_MPI();
  // analysis.fisher writes one file per model from its units, which are dealt to both ranks.
  TempDir dir;
  const fs::path pipeline = dir.write("p.toml", R"([pipeline]
name = "fisher-ranks"
[[node]]
id = "zoo"
type = "zoo.pretrain"
params = { seed = 3, inputs = 8, latent = 2, source_samples = 300, train = 60, validation = 40, test = 40, epochs = 2, models = [
  { name = "m0", hidden = [6] }, { name = "m1", hidden = [7] }, { name = "m2", hidden = [8] }, { name = "m3", hidden = [9] },
  { name = "m4", hidden = [5] }, { name = "m5", hidden = [4] } ] }
[[node]]
id = "fisher"
type = "analysis.fisher"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { split = "val" }
)");
  const fs::path out = dir / "out";
  auto first = run_mpi(2, mpi_run_args(pipeline, out, 1));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const Json fresh = Json::parse(read_file(out / "run.json"));
  ASSERT_GT(fresh.at("ranks").at("units").at(1).get<std::size_t>(), 0u) << "rank 1 ran no unit: " << fresh["ranks"].dump();
  // Every model's Fisher file, whichever rank wrote it, is an output of the node's entry.
  std::set<std::string> listed;
  const Json entry = Json::parse(read_file(entry_of(out, "fisher") / "entry.json"));
  for (const auto& o : entry.at("outputs")) listed.insert(o.at("path").get<std::string>());
  for (int m = 0; m < 6; ++m)
    EXPECT_TRUE(listed.count(fmt::format("fisher/m{}.fisher.safetensors", m))) << m << " " << entry.at("outputs").dump();
  // A damaged one is noticed on reuse (whichever rank wrote it) and written again.
  for (int m = 0; m < 6; ++m) {
    const fs::path file = out / "fisher" / fmt::format("m{}.fisher.safetensors", m);
    const std::string before = read_file(file);
    flip_last_bit(file);
    auto again = run_mpi(2, mpi_run_args(pipeline, out, 1));
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(reused(Json::parse(read_file(out / "run.json"))), (std::set<std::string>{"zoo"})) << m;
    EXPECT_EQ(read_file(file), before) << m;
  }
}

}  // namespace

namespace {

TEST(NodeCache, ANodeDeclaredNotCacheableAlwaysRunsAndSoDoesWhatDependsOnIt) {
  Project p;
  p.dir.write("uncached.toml", R"(
[pipeline]
name = "uncached"

[[node]]
id = "task"
type = "dataset.load"
params = { labels = { train = "demo/labels_train.npy" }, kind = "classification" }

[[node]]
id = "clock"
type = "test.uncached"
inputs = { in = "task" }

[[node]]
id = "after"
type = "test.pass"
inputs = { in = "clock" }

[[node]]
id = "beside"
type = "test.pass"
inputs = { in = "task" }
)");
  const std::vector<std::string> args{"run",           (p.dir / "uncached.toml").string(),
                                      "--out",         p.out.string(),
                                      "--plugin-path", test_plugin("test_nodes").parent_path().string()};
  auto first = run_caulk(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto second = run_caulk(args);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(reused(p.record()), (std::set<std::string>{"task", "beside"}));
  EXPECT_THAT(second.err, HasSubstr("[caulk] start clock"));
  EXPECT_THAT(second.err, HasSubstr("[caulk] start after"));
}

}  // namespace
