// run.json's provenance, the copy of the pipeline, and `caulk rerun`, through the CLI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "cli.hpp"
#include "run_json.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path quickstart() { return source_dir() / "pipelines" / "quickstart.toml"; }

// XXH3-128 of a file's bytes with xxHash's one-shot call: another path than caulk's chunked reader.
std::string xxh3_128_of(const fs::path& p) {
  const std::string bytes = read_file(p);
  const XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(h.high64), static_cast<unsigned long long>(h.low64));
  return hex;
}

const Json* find_input(const Json& node, const std::string& file_name) {
  for (const auto& in : node.at("inputs"))
    if (fs::path(in.at("path").get<std::string>()).filename() == file_name) return &in;
  return nullptr;
}

}  // namespace

TEST(Provenance, RecordsVersionsCommandOverridesTimesParamsAndEveryInputFile) {
  TempDir dir;
  const auto r = run_caulk({"run", quickstart().string(), "--out", (dir / "out").string(), "--jobs", "2", "--set", "ranking.digits=5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json j = Json::parse(read_file(dir / "out" / "run.json"));
  ASSERT_TRUE(j.contains("provenance"));
  const Json& p = j["provenance"];
  EXPECT_EQ(p["caulk"], CAULK_VERSION_STRING_FOR_TESTS);
  EXPECT_EQ(p["overrides"], Json::array({"ranking.digits=5"}));
  EXPECT_EQ(p["command"].back(), "ranking.digits=5");
  EXPECT_EQ(p["pipeline_file"], quickstart().lexically_normal().string());
  EXPECT_EQ(p["jobs"], 2);
  EXPECT_GE(p["hardware_threads"].get<int>(), 1);
  EXPECT_FALSE(p["host"].get<std::string>().empty());
  const std::regex timestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)");
  EXPECT_TRUE(std::regex_match(p["started"].get<std::string>(), timestamp)) << p["started"];
  EXPECT_TRUE(std::regex_match(p["ended"].get<std::string>(), timestamp)) << p["ended"];
  EXPECT_LE(p["started"].get<std::string>(), p["ended"].get<std::string>());

  // Every loaded plugin, with its file's hash; the used ones marked.
  bool saw_rankers = false;
  for (const auto& plugin : p["plugins"]) {
    ASSERT_TRUE(fs::is_regular_file(plugin["file"].get<std::string>()));
    EXPECT_EQ(plugin["xxh3_128"], xxh3_128_of(plugin["file"].get<std::string>())) << plugin["name"];
    EXPECT_FALSE(plugin["version"].get<std::string>().empty());
    if (plugin["name"] == "rankers") {
      saw_rankers = true;
      EXPECT_EQ(plugin["used"], true);
    }
  }
  EXPECT_TRUE(saw_rankers);

  // The pipeline as run, and its hash.
  EXPECT_EQ(read_file(dir / "out" / "pipeline.toml"), read_file(quickstart()));
  EXPECT_EQ(p["pipeline_xxh3_128"], xxh3_128_of(quickstart()));

  // Effective parameters: defaults filled in, the override applied, paths relative to the pipeline.
  const Json& nodes = p["nodes"];
  EXPECT_EQ(nodes["ranking"]["params"]["digits"], 5);
  EXPECT_TRUE(nodes["logme"]["params"].is_object());
  EXPECT_FALSE(nodes["logme"]["params"].empty()) << "rank.logme's defaults are recorded although none was written";
  EXPECT_EQ(nodes["task"]["params"]["labels"]["train"], "demo/labels_train.npy");
  EXPECT_EQ(nodes["hub"]["params"]["manifest"], "demo/hub.toml");

  // Input files: the declared ones (path parameters) and those read through a manifest, each with
  // its size, modification time and content hash (checked with xxHash's one-shot call).
  const Json* labels = find_input(nodes["task"], "labels_train.npy");
  ASSERT_NE(labels, nullptr) << nodes["task"].dump(1);
  const fs::path labels_path = source_dir() / "pipelines" / "demo" / "labels_train.npy";
  EXPECT_EQ((*labels)["size"], fs::file_size(labels_path));
  EXPECT_EQ((*labels)["xxh3_128"], xxh3_128_of(labels_path));
  EXPECT_EQ((*labels)["via"], "parameter");
  EXPECT_TRUE(std::regex_match((*labels)["mtime"].get<std::string>(), timestamp));
  const Json* manifest = find_input(nodes["hub"], "hub.toml");
  ASSERT_NE(manifest, nullptr) << nodes["hub"].dump(1);
  EXPECT_EQ((*manifest)["xxh3_128"], xxh3_128_of(source_dir() / "pipelines" / "demo" / "hub.toml"));
  // The features files the manifest names: read by the adapter (headers) and handed to LogME in
  // its Embeddings (train and test splits), which reads those of its split.
  std::size_t npy_read_by_logme = 0, npy_handed_to_logme = 0;
  for (const auto& in : nodes["logme"]["inputs"]) {
    if (fs::path(in["path"].get<std::string>()).extension() != ".npy") continue;
    npy_read_by_logme += in["via"] == "read";
    npy_handed_to_logme += in["via"] == "artifact";
    EXPECT_EQ(in["xxh3_128"], xxh3_128_of(in["path"].get<std::string>())) << in["path"];
    EXPECT_EQ(in["size"], fs::file_size(in["path"].get<std::string>()));
  }
  EXPECT_EQ(npy_read_by_logme, 0u) << "each file LogME opens is one its Embeddings name: " << nodes["logme"].dump(1);
  EXPECT_GE(npy_handed_to_logme, 10u) << nodes["logme"].dump(1);

  // Outputs are in the folder's ledger, relative to it, with their hashes.
  const Json ledger = Json::parse(read_file(dir / "out" / ".caulk" / "outputs.json"));
  ASSERT_TRUE(ledger["outputs"].contains("ranking.csv")) << ledger.dump(1);
  EXPECT_EQ(ledger["outputs"]["ranking.csv"]["xxh3_128"], xxh3_128_of(dir / "out" / "ranking.csv"));
  EXPECT_EQ(ledger["outputs"]["ranking.csv"]["size"], fs::file_size(dir / "out" / "ranking.csv"));
  EXPECT_THAT(r.err, HasSubstr("results in " + (dir / "out").string()));
}

TEST(Provenance, TheSameRunWithOneOrTwoJobsRecordsTheSameApartFromTimes) {
  TempDir dir;
  ASSERT_EQ(run_caulk({"run", quickstart().string(), "--out", (dir / "one").string(), "--jobs", "1"}).exit_code, 0);
  ASSERT_EQ(run_caulk({"run", quickstart().string(), "--out", (dir / "two").string(), "--jobs", "2"}).exit_code, 0);
  const Json one = Json::parse(read_file(dir / "one" / "run.json")), two = Json::parse(read_file(dir / "two" / "run.json"));
  EXPECT_EQ(comparable_run_json(one).dump(1), comparable_run_json(two).dump(1));
  EXPECT_TRUE(comparable_run_json(one).contains("provenance"));
}

TEST(Rerun, RunsTheRecordedPipelineWithItsOverridesAndReproducesTheRecord) {
  TempDir dir;
  // Run from another folder, with a relative override path, then rerun from elsewhere.
  const auto first = run_caulk({"run", quickstart().string(), "--out", (dir / "first").string(), "--jobs", "2", "--set", "ranking.digits=6",
                                "--set", "logme.formula=exact"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto again = run_caulk({"rerun", (dir / "first").string(), "--out", (dir / "again").string(), "--jobs", "1"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("2 overrides"));
  const Json a = Json::parse(read_file(dir / "first" / "run.json")), b = Json::parse(read_file(dir / "again" / "run.json"));
  EXPECT_EQ(b["provenance"]["overrides"], a["provenance"]["overrides"]);
  EXPECT_EQ(b["provenance"]["nodes"]["logme"]["params"]["formula"], "exact");
  EXPECT_EQ(comparable_run_json(a).dump(1), comparable_run_json(b).dump(1));
  EXPECT_EQ(read_file(dir / "again" / "pipeline.toml"), read_file(dir / "first" / "pipeline.toml"));
  // The copy is what runs, even when the original file has changed since.
  TempDir edited;
  fs::copy(quickstart().parent_path() / "demo", edited / "demo", fs::copy_options::recursive);
  edited.write("p.toml", read_file(quickstart()));
  ASSERT_EQ(run_caulk({"run", (edited / "p.toml").string(), "--out", (dir / "third").string()}).exit_code, 0);
  edited.write("p.toml", "this is not a pipeline anymore");
  const auto rerun = run_caulk({"rerun", (dir / "third").string()});
  EXPECT_EQ(rerun.exit_code, 0) << rerun.err;
}

TEST(Rerun, RefusesAFolderWithoutARecordWithExit2) {
  TempDir dir;
  const auto r = run_caulk({"rerun", dir.path().string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("run.json"));
}
