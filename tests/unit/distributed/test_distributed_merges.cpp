// Merges under mpirun: each output file (shard) of a merge is a unit written by whichever rank
// takes it into the staged output, which rank 0 commits; the bytes are those of one process, and
// a shard that fails names itself and its rank and leaves no output behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "caulk/io/durable.hpp"
#include "mergers/merge_test_support.hpp"
#include "mpi_support.hpp"
#include "run_json.hpp"

using namespace caulk::testing;
using namespace caulk::merge_test;
using ::testing::HasSubstr;
using Json = nlohmann::json;

namespace {

std::map<std::string, std::string> raw_files(const std::filesystem::path& p) {
  std::map<std::string, std::string> out;
  if (std::filesystem::is_regular_file(p)) {
    out[p.filename().string()] = read_file(p);
    return out;
  }
  for (const auto& e : std::filesystem::directory_iterator(p)) out[e.path().filename().string()] = read_file(e.path());
  return out;
}

std::vector<std::string> hidden_entries(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().filename().string().starts_with(".") && e.path().filename() != caulk::io::kOutputMarker &&
        e.path().string().find("/.caulk") == std::string::npos)  // caulk's run-folder state (caulk/run_folder.hpp)
      out.push_back(e.path().string());
  return out;
}

struct MergesUnderMpi : ::testing::Test {
  TempDir dir;
  void SetUp() override {
    const Values raw = random_values(1, 1.0);
    write_checkpoint(dir / "base.safetensors", raw, DType::F32);
    for (int i = 0; i < 3; ++i) {
      const std::string name = numbered("m", i);
      write_checkpoint(dir / (name + ".safetensors"), random_values(2 + i, 0.2, &raw), DType::F32);
      Values f = random_values(10 + i, 1.0 + i);
      for (auto& [t, v] : f)
        for (double& x : v) x = x * x + 0.01;
      write_checkpoint(dir / (name + ".fisher.safetensors"), f, DType::F32);
    }
  }
  std::filesystem::path pipeline(const std::string& nodes) {
    std::string hub = "[hub]\nname = \"t\"\n[[model]]\nname = \"base\"\ncheckpoint = \"base.safetensors\"\nbase = true\n";
    for (int i = 0; i < 3; ++i)
      hub += fmt::format("[[model]]\nname = \"m{0}\"\ncheckpoint = \"m{0}.safetensors\"\nfisher = \"m{0}.fisher.safetensors\"\n", i);
    dir.write("hub.toml", hub);
    return dir.write("p.toml",
                     "[pipeline]\nname = \"merges\"\n[[node]]\nid = \"load\"\ntype = \"checkpoint.load\"\nparams = { manifest = \"" +
                         (dir / "hub.toml").string() + "\" }\n" + nodes);
  }
};

// Sharded folders (100-byte shards: three files), a single file, statistics passes (TIES), seeded
// drops (DARE), and Fisher norms computed on rank 0 and adopted by the ranks writing the shards.
constexpr const char* kMerges = R"(
[[node]]
id = "ties"
type = "merge.ties"
inputs = { checkpoints = "load.checkpoints" }
params = { density = 0.5, output = "ties", max_shard_size = "100B" }

[[node]]
id = "dare"
type = "merge.dare"
inputs = { checkpoints = "load.checkpoints" }
params = { density = 0.5, seed = 3, output = "dare", max_shard_size = "100B", dtype = "BF16", precision = "float64" }

[[node]]
id = "fisher"
type = "merge.fisher"
inputs = { checkpoints = "load.checkpoints" }
params = { normalize_fisher = true, output = "fisher", max_shard_size = "100B" }

[[node]]
id = "soup"
type = "merge.linear"
inputs = { checkpoints = "load.checkpoints" }
)";

TEST_F(MergesUnderMpi, EveryShardIsAUnitAndTheFilesAreTheSameAsOneProcess) {
  CAULK_REQUIRE_MPI();
  const auto p = pipeline(kMerges);
  auto one = run_caulk(mpi_run_args(p, dir / "one"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto many = run_mpi(3, mpi_run_args(p, dir / "np3"));
  ASSERT_EQ(many.exit_code, 0) << many.err;
  const Json j1 = Json::parse(read_file(dir / "one" / "run.json")), j3 = Json::parse(read_file(dir / "np3" / "run.json"));
  EXPECT_EQ(comparable_run_json(j1).dump(2), comparable_run_json(j3).dump(2));

  std::size_t files = 0;
  for (const char* node : {"ties", "dare", "fisher"}) {
    const std::size_t n = j3["nodes"][node]["summary"]["files"].get<std::size_t>();
    EXPECT_GE(n, 2u) << node << " is sharded";
    files += n;
    EXPECT_EQ(raw_files(dir / "one" / node), raw_files(dir / "np3" / node)) << node;
  }
  files += 1;  // the soup: one file
  EXPECT_EQ(raw_files(dir / "one" / "soup" / "soup.safetensors"), raw_files(dir / "np3" / "soup" / "soup.safetensors"));
  // Nothing else in this pipeline is distributed: every unit counted is a merge's output file.
  EXPECT_EQ(units_counted(j3["ranks"]), files) << j3["ranks"].dump();
  EXPECT_THAT(many.err, HasSubstr("output files on 3 ranks"));
  EXPECT_TRUE(hidden_entries(dir / "np3").empty()) << hidden_entries(dir / "np3").front();
}

TEST_F(MergesUnderMpi, AFailingShardNamesItselfAndItsRankAndLeavesNoOutput) {
  CAULK_REQUIRE_MPI();
  // A negative Fisher value in layers.1.weight, which lands in the third shard.
  Values f = random_values(30, 1.0);
  for (auto& [t, v] : f)
    for (double& x : v) x = x * x + 0.01;
  f["layers.1.weight"][4] = -1.0;
  write_checkpoint(dir / "m1.fisher.safetensors", f, DType::F32);
  const auto p = pipeline(R"(
[[node]]
id = "fisher"
type = "merge.fisher"
inputs = { checkpoints = "load.checkpoints" }
params = { output = "fisher", max_shard_size = "100B" }
)");
  auto r = run_mpi(3, mpi_run_args(p, dir / "out"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("node 'fisher' (merge.fisher) failed"));
  EXPECT_THAT(r.err, HasSubstr("1 of 3 output files failed"));
  EXPECT_TRUE(std::regex_search(r.err, std::regex("output file 'model-00003-of-00003.safetensors' on rank [0-2]: .*m1.fisher.safetensors")))
      << r.err;
  EXPECT_THAT(r.err, HasSubstr("tensor 'layers.1.weight', element 4: Fisher value -1"));
  EXPECT_FALSE(std::filesystem::exists(dir / "out" / "fisher"));
  EXPECT_TRUE(hidden_entries(dir / "out").empty()) << hidden_entries(dir / "out").front();
}

// The merge demo: the coefficient search's candidates, the merged models' predictions and every
// merge's output file are units dealt to the ranks (rank 0's progress says so), and run.json is
// the single process's (DemoUnderMpi compares that for every demo).
TEST(MergeDemoUnderMpi, CandidatesPredictionsAndOutputFilesAreDealtToTheRanks) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  auto r = run_mpi(2, mpi_run_args(source_dir() / "pipelines" / "merge.toml", dir / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json j = Json::parse(read_file(dir / "out" / "run.json"));
  const std::size_t candidates = j["nodes"]["search"]["summary"]["candidates"].get<std::size_t>();
  EXPECT_THAT(r.err, HasSubstr(fmt::format("[search] candidates on 2 ranks: {}/{}", candidates, candidates)));
  EXPECT_THAT(r.err, HasSubstr("[merged_predictions] models on 2 ranks"));
  for (const char* merge : {"soup", "task_arithmetic", "ties", "dare", "slerp", "fisher", "search"})
    EXPECT_THAT(r.err, HasSubstr(fmt::format("[{}] output files on 2 ranks: 1/1", merge)));
  for (const auto& u : j["ranks"]["units"]) EXPECT_GT(u.get<std::size_t>(), 0u) << j["ranks"].dump();
}

}  // namespace
