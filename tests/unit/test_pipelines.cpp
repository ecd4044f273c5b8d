// Every pipeline in pipelines/ runs through the CLI, and its run.json is checked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "golden.hpp"
#include "run_json.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using Json = nlohmann::json;

namespace {

Json run_ok(const std::string& name, const std::filesystem::path& out, unsigned jobs, CliResult* result = nullptr) {
  auto r =
      run_caulk({"run", (source_dir() / "pipelines" / (name + ".toml")).string(), "--out", out.string(), "--jobs", std::to_string(jobs)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (result) *result = r;
  return Json::parse(read_file(out / "run.json"));
}

class EveryPipeline : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryPipeline, RunsAndEveryNodeSucceeds) {
  TempDir dir;
  Json j = run_ok(GetParam(), dir / "out", 2);
  EXPECT_EQ(j["status"], "ok");
  for (auto& [id, node] : j["nodes"].items()) EXPECT_EQ(node["status"], "ok") << id;
  // The same numbers and output bytes as recorded (tests/golden), reusing this run.
  expect_matches_golden(GetParam(), dir / "out");
}

TEST_P(EveryPipeline, SameResultsWithOneOrFourJobs) {
  TempDir dir;
  Json one = run_ok(GetParam(), dir / "one", 1), four = run_ok(GetParam(), dir / "four", 4);
  EXPECT_EQ(comparable_run_json(one).dump(2), comparable_run_json(four).dump(2));
}

INSTANTIATE_TEST_SUITE_P(Pipelines, EveryPipeline, ::testing::ValuesIn(demo_pipelines()));

TEST(Quickstart, RanksTheDemoModelsInTheOrderTheirFeaturesSupport) {
  TempDir dir;
  CliResult r;
  Json j = run_ok("quickstart", dir / "out", 2, &r);
  const Json& logme = j["nodes"]["logme"]["summary"];
  EXPECT_EQ(logme["higher_is_better"], true);
  const char* order[] = {"sharp-large", "sharp-small", "blurry", "noisy", "random"};
  for (int i = 0; i + 1 < 5; ++i)
    EXPECT_GT(logme["scores"][order[i]].get<double>(), logme["scores"][order[i + 1]].get<double>()) << order[i];
  EXPECT_EQ(j["nodes"]["ranking"]["summary"]["order"], Json(std::vector<std::string>(order, order + 5)));
  // The table on stdout, and the files beside run.json.
  EXPECT_THAT(r.out, HasSubstr("rank  model"));
  EXPECT_THAT(r.out, HasSubstr("   1  sharp-large"));
  EXPECT_TRUE(std::filesystem::exists(dir / "out" / "ranking.csv"));
  EXPECT_THAT(read_file(dir / "out" / "ranking.md"), HasSubstr("| 1 | sharp-large |"));
  EXPECT_THAT(r.err, HasSubstr("[caulk] start logme (rank.logme)"));
}

}  // namespace
