// One pipeline on several processes (mpirun): the same run.json as one process, failures on a
// chosen rank named, a worker killed mid-unit ending the run promptly with a clear message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "caulk/io/npy.hpp"
#include "mpi_support.hpp"
#include "run_json.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using Json = nlohmann::json;

namespace {

std::vector<std::string> run_args(const std::filesystem::path& pipeline, const std::filesystem::path& out, unsigned jobs) {
  return {"--plugin-path",     test_plugin("test_units").string(), "run", pipeline.string(), "--out", out.string(), "--jobs",
          std::to_string(jobs)};
}

// --------------------------------------------------------------------- a single process

// Without mpirun, nothing of MPI is loaded: libcaulk_mpi (and so libmpi) is opened only when the
// CLI finds mpirun's environment.
TEST(SingleProcess, NeverLoadsMpi) {
  TempDir dir;
  auto r = run_caulk({"run", (source_dir() / "pipelines" / "quickstart.toml").string(), "--out", (dir / "out").string()}, "LD_DEBUG=libs");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("rankers.so")) << "LD_DEBUG shows the libraries the run loaded";
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("libcaulk_mpi")));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("libmpi")));
  EXPECT_FALSE(Json::parse(read_file(dir / "out" / "run.json")).contains("ranks"));
}

// --------------------------------------------------------------------- the demo pipelines

class DemoUnderMpi : public ::testing::TestWithParam<std::string> {};

TEST_P(DemoUnderMpi, SameRunJsonOnOneTwoAndThreeProcesses) {
  CAULK_REQUIRE_MPI();
#ifdef CAULK_SANITIZED
  // Under ASan the demo pipelines take up to minutes each on three runs; these three cover the
  // rankers, adapter.mlp, tune.peft and zoo.pretrain (analysis.fisher, eval.sample_complexity and
  // the tuners run under mpirun in test_distributed_model_units.cpp), and the ordinary build runs
  // them all.
  if (GetParam() != "rank_hub" && GetParam() != "quickstart" && GetParam() != "rank_and_tune")
    GTEST_SKIP() << "sanitized build: rank_hub, quickstart and rank_and_tune only (every pipeline runs in the ordinary build)";
#endif
  TempDir dir;
  const auto pipeline = source_dir() / "pipelines" / (GetParam() + ".toml");
  auto single = run_caulk(run_args(pipeline, dir / "one", 1));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const Json one = Json::parse(read_file(dir / "one" / "run.json"));
  EXPECT_FALSE(one.contains("ranks")) << "a single process has no ranks field";
  for (int ranks : {2, 3}) {
    const auto out = dir / fmt::format("np{}", ranks);
    auto r = run_mpi(ranks, run_args(pipeline, out, 1));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json many = Json::parse(read_file(out / "run.json"));
    EXPECT_EQ(comparable_run_json(one).dump(2), comparable_run_json(many).dump(2)) << ranks << " ranks";
    ASSERT_TRUE(many.contains("ranks"));
    EXPECT_EQ(many["ranks"]["processes"], ranks);
    EXPECT_EQ(many["ranks"]["units"].size(), static_cast<std::size_t>(ranks));
  }
}

// Every demo pipeline (each runs in seconds): rank_hub and quickstart rank; rank_and_tune and
// btuning also extract features (adapter.mlp) and tune (tune.peft; btuning also tune.btuning,
// tune.distill and tune.top_ranked); sample_complexity tunes in eval.sample_complexity, merge
// computes Fisher diagonals (analysis.fisher); what runs on rank 0 only must not change either.
INSTANTIATE_TEST_SUITE_P(Pipelines, DemoUnderMpi, ::testing::ValuesIn(demo_pipelines()), [](const auto& info) { return info.param; });

TEST(DemoUnderMpi, WithTwoJobsPerRankEveryRankerUnitIsCountedOnceAndResultsAreTheSame) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  const auto pipeline = source_dir() / "pipelines" / "rank_hub.toml";
  auto single = run_caulk(run_args(pipeline, dir / "one", 1));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  auto r = run_mpi(3, run_args(pipeline, dir / "out", 2));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json j = Json::parse(read_file(dir / "out" / "run.json"));
  EXPECT_EQ(comparable_run_json(Json::parse(read_file(dir / "one" / "run.json"))).dump(2), comparable_run_json(j).dump(2));
  // Ten rankers, each scoring the demo hub's models: one unit per ranker and model.
  const std::size_t models = j["nodes"]["logme"]["summary"]["scores"].size();
  ASSERT_GT(models, 0u);
  EXPECT_EQ(units_counted(j["ranks"]), 10 * models);
}

// More ranks than a 64-bit mask has bits (the limit of an earlier version): 70 processes, most of
// them idle (quickstart has a handful of units), same run.json.
TEST(DemoUnderMpi, SeventyRanksGiveTheSameRunJson) {
  CAULK_REQUIRE_MPI();
#ifdef CAULK_SANITIZED
  GTEST_SKIP() << "sanitized build: 70 instrumented processes are too heavy for this machine (the ordinary build runs it)";
#endif
  TempDir dir;
  const auto pipeline = source_dir() / "pipelines" / "quickstart.toml";
  auto single = run_caulk(run_args(pipeline, dir / "one", 1));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  auto r = run_mpi(70, run_args(pipeline, dir / "out", 1));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json j = Json::parse(read_file(dir / "out" / "run.json"));
  EXPECT_EQ(comparable_run_json(Json::parse(read_file(dir / "one" / "run.json"))).dump(2), comparable_run_json(j).dump(2));
  EXPECT_EQ(j["ranks"]["processes"], 70);
  EXPECT_EQ(j["ranks"]["units"].size(), 70u);
}

// --------------------------------------------------------------------- units spread over ranks

std::filesystem::path write_pipeline(const TempDir& dir, const std::string& nodes) {
  return dir.write("p.toml", "[pipeline]\nname = \"units\"\n" + nodes);
}

TEST(UnitsUnderMpi, SlowUnitsAreDealtToEveryRankAndMergedInOrder) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  auto p = write_pipeline(dir, "[[node]]\nid = \"a\"\ntype = \"test.slow_units\"\nparams = { units = 12, sleep_ms = 250 }\n");
  auto r = run_mpi(3, run_args(p, dir / "out", 1));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json j = Json::parse(read_file(dir / "out" / "run.json"));
  Json expected = Json::array();
  for (int i = 0; i < 12; ++i) expected.push_back(i * i);
  EXPECT_EQ(j["nodes"]["a"]["summary"]["values"], expected);
  // A dynamic queue with 250 ms units: every rank gets some, and all 12 are counted once.
  EXPECT_EQ(units_counted(j["ranks"]), 12u);
  for (const auto& n : j["ranks"]["units"]) EXPECT_GT(n.get<int>(), 0) << j["ranks"].dump();
  // Each unit wrote its own file, from whichever rank ran it.
  for (int i = 0; i < 12; ++i) EXPECT_EQ(read_file(dir / "out" / "a" / fmt::format("u{}.txt", i)), fmt::format("unit {} complete\n", i));
  // Progress on rank 0 counts the units of every rank.
  EXPECT_THAT(r.err, HasSubstr("[a] models on 3 ranks: 12/12"));
}

// What a node's units share (its Params and its Dataset: here 200 KB of labels) reaches each
// worker once per batch, not once per unit, and the units on every rank see it.
TEST(UnitsUnderMpi, ABatchsDatasetGoesToEachWorkerOnceNotWithEveryUnit) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  constexpr std::size_t kRows = 50000;  // the header carries them as 4-byte class labels
  std::vector<std::int64_t> classes(kRows);
  for (std::size_t i = 0; i < kRows; ++i) classes[i] = static_cast<std::int64_t>(i % 2);
  caulk::io::write_npy(dir / "labels.npy", classes);
  auto p = write_pipeline(dir, fmt::format("[[node]]\nid = \"task\"\ntype = \"dataset.load\"\nparams = {{ labels = \"{}\" }}\n"
                                           "[[node]]\nid = \"a\"\ntype = \"test.slow_units\"\ninputs = {{ data = \"task\" }}\n"
                                           "params = {{ units = 12, sleep_ms = 250 }}\n",
                                           (dir / "labels.npy").string()));
  auto r = run_mpi(3, run_args(p, dir / "out", 1));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json j = Json::parse(read_file(dir / "out" / "run.json"));
  EXPECT_EQ(j["nodes"]["a"]["summary"]["rows"], Json(std::vector<std::size_t>(12, kRows))) << "every unit saw the node's dataset";
  const Json& ranks = j["ranks"];
  std::size_t remote_units = 0, workers_with_units = 0;
  for (std::size_t w = 1; w < ranks["units"].size(); ++w) {
    remote_units += ranks["units"][w].get<std::size_t>();
    workers_with_units += ranks["units"][w].get<std::size_t>() > 0;
  }
  ASSERT_GE(remote_units, 3u) << ranks.dump() << ": with 250 ms units on 3 ranks, the workers take several";
  const std::size_t labels = kRows * 4, sent = ranks["bytes_to_workers"].get<std::size_t>();
  EXPECT_GE(sent, workers_with_units * labels) << "each worker that ran a unit received the labels";
  EXPECT_LT(sent, workers_with_units * labels + 64 * 1024)
      << ranks.dump() << ": the labels went with " << remote_units << " units instead of once per worker";
}

// A pipeline that names its plugin itself ([pipeline] plugins) runs that plugin's units on every
// rank, with no --plugin-path: the workers load the pipeline's plugins too.
TEST(UnitsUnderMpi, ThePluginsAPipelineNamesServeItsUnitsOnEveryRank) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  auto p = dir.write("p.toml", "[pipeline]\nname = \"units\"\nplugins = [\"" + test_plugin("test_units").string() +
                                   "\"]\n[[node]]\nid = \"a\"\ntype = \"test.slow_units\"\nparams = { units = 8, sleep_ms = 250 }\n");
  auto r = run_mpi(2, {"run", p.string(), "--out", (dir / "out").string(), "--jobs", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json j = Json::parse(read_file(dir / "out" / "run.json"));
  EXPECT_EQ(units_counted(j["ranks"]), 8u);
  for (const auto& n : j["ranks"]["units"]) EXPECT_GT(n.get<int>(), 0) << j["ranks"].dump();
}

TEST(UnitsUnderMpi, AUnitThrowingOnRankTwoFailsItsNodeNamingModelAndRank) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  // a fails on rank 2; b depends on a (skipped); c is independent but comes later (not started,
  // --jobs 1); every error is reported.
  auto p = write_pipeline(dir,
                          "[[node]]\nid = \"a\"\ntype = \"test.slow_units\"\nparams = { units = 12, sleep_ms = 300, fail_on_rank = 2 }\n"
                          "[[node]]\nid = \"b\"\ntype = \"test.slow_units\"\ninputs = { after = \"a\" }\n"
                          "[[node]]\nid = \"c\"\ntype = \"test.slow_units\"\n");
  auto r = run_mpi(3, run_args(p, dir / "out", 1));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("node 'a' (test.slow_units) failed"));
  // One cause: said once, with the units it hit (caulk/failures.hpp), or under its one unit.
  EXPECT_TRUE(std::regex_search(
      r.err, std::regex("(model 'u[0-9]+' on rank 2: this unit was told to fail on rank 2)|"
                        "(this unit was told to fail on rank 2 \\(in [0-9]+ models of 1 node; models 'u[0-9]+' on rank 2)")))
      << r.err;
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("on rank 0: this unit")));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("on rank 1: this unit")));
  const Json j = Json::parse(read_file(dir / "out" / "run.json"));
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["nodes"]["a"]["status"], "failed");
  EXPECT_THAT(j["nodes"]["a"]["error"].get<std::string>(), HasSubstr("on rank 2"));
  EXPECT_EQ(j["nodes"]["b"]["status"], "skipped");
  EXPECT_THAT(j["nodes"]["b"]["error"].get<std::string>(), HasSubstr("depends on node 'a', which failed"));
  EXPECT_EQ(j["nodes"]["c"]["status"], "skipped");
  EXPECT_THAT(j["nodes"]["c"]["error"].get<std::string>(), HasSubstr("the run stopped after node 'a' failed"));
  // The units of ranks 0 and 1 still ran to the end: each wrote its file completely.
  std::size_t written = 0;
  for (int i = 0; i < 12; ++i) {
    const auto f = dir / "out" / "a" / fmt::format("u{}.txt", i);
    if (!std::filesystem::exists(f)) continue;
    ++written;
    EXPECT_EQ(read_file(f), fmt::format("unit {} complete\n", i));
  }
  EXPECT_GT(written, 0u);
  EXPECT_LT(written, 12u);
}

TEST(UnitsUnderMpi, APipelineErrorOnRankZeroStopsEveryRankWithExitCodeTwo) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  auto p = write_pipeline(dir, "[[node]]\nid = \"a\"\ntype = \"test.slow_unitz\"\n");
  auto r = run_mpi(3, run_args(p, dir / "out", 1));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("unknown node type 'test.slow_unitz' (did you mean 'test.slow_units'?)"));
  EXPECT_THAT(r.err, HasSubstr("nothing was run"));
  EXPECT_FALSE(std::filesystem::exists(dir / "out" / "run.json"));
}

// The pid of the process of `rank` once it has started a unit of node a (it leaves a marker), or -1
// after `max_tries` looks 50 ms apart (30 s by default).
pid_t wait_for_unit_on_rank(const std::filesystem::path& unit_dir, int rank, int max_tries = 600) {
  const std::regex marker("started\\.u[0-9]+\\.rank" + std::to_string(rank) + "\\.pid([0-9]+)");
  for (int tries = 0; tries < max_tries; ++tries) {
    std::error_code ec;
    if (std::filesystem::is_directory(unit_dir, ec))
      for (const auto& e : std::filesystem::directory_iterator(unit_dir, ec)) {
        std::smatch m;
        const std::string name = e.path().filename().string();
        if (std::regex_match(name, m, marker)) return std::stoi(m[1]);
      }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

// A run killed before its end leaves no result record: run.json is absent (killed before the run
// started) or says "running" (written when it started), never a result.
void expect_no_result_record(const std::filesystem::path& out) {
  const auto record = out / "run.json";
  if (!std::filesystem::exists(record)) return;
  EXPECT_EQ(Json::parse(read_file(record)).value("status", std::string()), "running") << read_file(record);
}

// After a rank was killed at `killed`: the job must end within 30 s, non-zero, and rank 0's
// reporter's message must arrive (it may land just after mpirun exits, so it gets the same 30 s).
// Returns mpirun's stderr.
constexpr const char* kTornDown = "caulk: error: the MPI job was stopped while rank 0 was running the pipeline";
std::string expect_torn_down(BackgroundMpi& job, const std::filesystem::path& err_file, std::chrono::steady_clock::time_point killed) {
  const int code = job.wait_for(std::chrono::seconds(30));
  if (code == -1) {
    ADD_FAILURE() << "the run still hangs 30 s after the kill: " << read_file(err_file);
    return read_file(err_file);
  }
  EXPECT_NE(code, 0);
  std::string err = read_file(err_file);
  while (err.find(kTornDown) == std::string::npos && std::chrono::steady_clock::now() - killed < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    err = read_file(err_file);
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count(), 30.0);
  EXPECT_THAT(err, HasSubstr(kTornDown));
  return err;
}

TEST(UnitsUnderMpi, AWorkerKilledMidUnitEndsTheRunWithAClearMessageWithinThirtySeconds) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  auto p = write_pipeline(dir, "[[node]]\nid = \"a\"\ntype = \"test.slow_units\"\nparams = { units = 6, sleep_ms = 60000 }\n");
  const auto unit_dir = dir / "out" / "a";
  BackgroundMpi job(3, run_args(p, dir / "out", 1), dir / "err");
  const pid_t worker = wait_for_unit_on_rank(unit_dir, 1);
  ASSERT_GT(worker, 0) << "rank 1 never started a unit: " << read_file(dir / "err");
  ASSERT_GT(wait_for_unit_on_rank(unit_dir, 2), 0) << "rank 2 never started a unit: " << read_file(dir / "err");
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  const std::string err = expect_torn_down(job, dir / "err", killed);
  EXPECT_THAT(err, HasSubstr("units were unfinished on ranks 1, 2"));
  // Nothing half-written under a final name: no unit finished (each takes a minute), and
  // run.json holds no result.
  expect_no_result_record(dir / "out");
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(std::filesystem::exists(unit_dir / fmt::format("u{}.txt", i)));
}

// Rank 0 itself killed mid-unit (it computes units too): mpirun ends the job, and rank 0's
// reporter, which outlives it, still says the run did not finish; nothing is left half-written.
TEST(UnitsUnderMpi, RankZeroKilledMidUnitEndsTheRunWithAClearMessageWithinThirtySeconds) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  auto p = write_pipeline(dir, "[[node]]\nid = \"a\"\ntype = \"test.slow_units\"\nparams = { units = 6, sleep_ms = 60000 }\n");
  const auto unit_dir = dir / "out" / "a";
  BackgroundMpi job(3, run_args(p, dir / "out", 1), dir / "err");
  const pid_t rank0 = wait_for_unit_on_rank(unit_dir, 0);
  ASSERT_GT(rank0, 0) << "rank 0 never started a unit: " << read_file(dir / "err");
  ASSERT_GT(wait_for_unit_on_rank(unit_dir, 1), 0) << "rank 1 never started a unit: " << read_file(dir / "err");
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(rank0, SIGKILL), 0);
  const std::string err = expect_torn_down(job, dir / "err", killed);
  EXPECT_THAT(err, HasSubstr("The run did not finish: run.json says \"running\""));
  expect_no_result_record(dir / "out");
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(std::filesystem::exists(unit_dir / fmt::format("u{}.txt", i)));
  // No worker outlives the job (each would otherwise sleep out its minute-long unit): mpirun's
  // SIGTERM, then SIGKILL, reaches them within seconds.
  const pid_t worker = wait_for_unit_on_rank(unit_dir, 1);
  auto gone = [worker] {
    return ::kill(worker, 0) != 0 || read_file(fmt::format("/proc/{}/stat", worker)).find(") Z") != std::string::npos;
  };
  for (int i = 0; i < 200 && !gone(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(gone()) << "rank 1 (pid " << worker << ") still runs 10 s after the job ended";
}

// The pid of the rank `rank` of a job whose command line mentions `tag` (a test's temporary
// folder), from /proc; -1 when there is none.
pid_t pid_of_rank(const std::string& tag, int rank) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (read_file(e.path() / "cmdline").find(tag) == std::string::npos) continue;
    const std::string env = read_file(e.path() / "environ");
    const std::string key = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank) + std::string(1, '\0');
    if (env.find(std::string(1, '\0') + key) != std::string::npos || env.rfind(key, 0) == 0) return std::stoi(name);
  }
  return -1;
}

// A worker killed while it holds no unit: mpirun ends the job just the same, and rank 0's
// reporter says the run did not finish.
TEST(UnitsUnderMpi, AnIdleWorkerKilledEndsTheRunWithAClearMessageWithinThirtySeconds) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  auto p = write_pipeline(dir, "[[node]]\nid = \"a\"\ntype = \"test.slow_units\"\nparams = { units = 1, sleep_ms = 60000 }\n");
  const auto unit_dir = dir / "out" / "a";
  BackgroundMpi job(3, run_args(p, dir / "out", 1), dir / "err");
  int busy = -1;
  for (int tries = 0; tries < 600 && busy < 0; ++tries) {
    for (int r = 0; r < 3 && busy < 0; ++r)
      if (std::filesystem::exists(unit_dir) && wait_for_unit_on_rank(unit_dir, r, 1) > 0) busy = r;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(busy, 0) << "no rank started the unit: " << read_file(dir / "err");
  const int idle = busy == 2 ? 1 : 2;
  const pid_t worker = pid_of_rank(dir.path().string(), idle);
  ASSERT_GT(worker, 0) << "no process for rank " << idle;
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  const std::string err = expect_torn_down(job, dir / "err", killed);
  EXPECT_THAT(err, HasSubstr(fmt::format("process rank {}", idle))) << "mpirun names the rank that died";
  expect_no_result_record(dir / "out");
  EXPECT_FALSE(std::filesystem::exists(unit_dir / "u0.txt"));
}

// A worker that freezes (SIGSTOP: mpirun sees nothing wrong) is declared lost once it has been
// silent for CAULK_MPI_WORKER_TIMEOUT: its unit fails naming the rank, the run reports like any
// failed node (run.json written), and the job ends instead of waiting for the frozen rank.
TEST(UnitsUnderMpi, AFrozenWorkerIsDeclaredLostAfterTheTimeoutAndTheRunEnds) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  auto p = write_pipeline(dir,
                          "[[node]]\nid = \"a\"\ntype = \"test.slow_units\"\nparams = { units = 2, sleep_ms = 5000 }\n"
                          "[[node]]\nid = \"b\"\ntype = \"test.slow_units\"\ninputs = { after = \"a\" }\n");
  const auto unit_dir = dir / "out" / "a";
  BackgroundMpi job(2, run_args(p, dir / "out", 1), dir / "err", "CAULK_MPI_WORKER_TIMEOUT=3");
  const pid_t worker = wait_for_unit_on_rank(unit_dir, 1);
  ASSERT_GT(worker, 0) << "rank 1 never started a unit: " << read_file(dir / "err");
  ASSERT_EQ(::kill(worker, SIGSTOP), 0);
  const auto frozen = std::chrono::steady_clock::now();
  const int code = job.wait_for(std::chrono::seconds(30));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - frozen).count();
  const std::string err = read_file(dir / "err");
  ASSERT_NE(code, -1) << "the run still waits 30 s after a worker froze: " << err;
  EXPECT_GE(seconds, 1.9) << "declared lost before its timeout (3 s after its last heartbeat)";
  EXPECT_NE(code, 0);
  EXPECT_TRUE(std::regex_search(err, std::regex("model 'u[0-9]+' on rank 1: rank 1 was lost: it gave no sign of life for 3"))) << err;
  const Json j = Json::parse(read_file(dir / "out" / "run.json"));
  EXPECT_EQ(j["nodes"]["a"]["status"], "failed");
  EXPECT_EQ(j["nodes"]["b"]["status"], "skipped");
}

// A worker that freezes while it holds no unit is found out too (every worker sends a heartbeat
// every second, busy or not): rank 0 says so, deals it nothing more, finishes the pipeline on the
// other ranks (run.json written, the node succeeded) and then ends the job, which the frozen rank
// would otherwise keep from finishing. Node a's short units first make sure the worker frozen has
// said it is ready (workers are judged only from then on: loading plugins can take seconds, more
// under the sanitizers); node b's one long unit then keeps the run going.
TEST(UnitsUnderMpi, AWorkerFrozenWhileIdleIsDeclaredLostAndTheRunStillFinishes) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  auto p = write_pipeline(
      dir,
      "[[node]]\nid = \"a\"\ntype = \"test.slow_units\"\nparams = { units = 12, sleep_ms = 250 }\n"
      "[[node]]\nid = \"b\"\ntype = \"test.slow_units\"\ninputs = { after = \"a\" }\nparams = { units = 1, sleep_ms = 8000 }\n");
  const auto b_dir = dir / "out" / "b";
  BackgroundMpi job(3, run_args(p, dir / "out", 1), dir / "err", "CAULK_MPI_WORKER_TIMEOUT=3");
  int busy = -1;
  for (int tries = 0; tries < 1200 && busy < 0; ++tries) {
    for (int r = 0; r < 3 && busy < 0; ++r)
      if (std::filesystem::exists(b_dir) && wait_for_unit_on_rank(b_dir, r, 1) > 0) busy = r;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(busy, 0) << "no rank started node b's unit: " << read_file(dir / "err");
  // An idle worker that served node a (so it was ready).
  int idle = -1;
  for (int r = 1; r < 3 && idle < 0; ++r)
    if (r != busy && wait_for_unit_on_rank(dir / "out" / "a", r, 1) > 0) idle = r;
  ASSERT_GT(idle, 0) << "no idle worker ran a unit of node a: " << read_file(dir / "err");
  const pid_t worker = pid_of_rank(dir.path().string(), idle);
  ASSERT_GT(worker, 0) << "no process for rank " << idle;
  ASSERT_EQ(::kill(worker, SIGSTOP), 0);
  const int code = job.wait_for(std::chrono::seconds(30));
  ::kill(worker, SIGKILL);  // in case the job still runs
  const std::string err = read_file(dir / "err");
  ASSERT_NE(code, -1) << "the run still waits 30 s after an idle worker froze: " << err;
  EXPECT_NE(code, 0) << "the job is ended (MPI_Abort) because the frozen rank cannot finish";
  EXPECT_THAT(err, HasSubstr(fmt::format("caulk: rank {} was lost while it held no unit: it gave no sign of life for 3", idle)));
  const Json j = Json::parse(read_file(dir / "out" / "run.json"));
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["nodes"]["b"]["status"], "ok");
  EXPECT_EQ(read_file(b_dir / "u0.txt"), "unit 0 complete\n");
}

}  // namespace
