// Localized model averaging under mpirun: each cross-validation fold of average.local is a unit
// dealt to the ranks, and the fit is the single process's.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mpi_support.hpp"
#include "run_json.hpp"

using namespace caulk::testing;
using Json = nlohmann::json;

TEST(AveragingUnderMpi, EveryCrossValidationFoldIsAUnitAndTheFitIsTheSame) {
  CAULK_REQUIRE_MPI();
  TempDir dir;
  const auto pipeline = (source_dir() / "pipelines" / "local_averaging_regression.toml").string();
  auto one = run_caulk({"run", pipeline, "--out", (dir / "one").string(), "--jobs", "1"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto many = run_mpi(3, {"run", pipeline, "--out", (dir / "np3").string(), "--jobs", "1"});
  ASSERT_EQ(many.exit_code, 0) << many.err;
  const Json j1 = Json::parse(read_file(dir / "one" / "run.json")), j3 = Json::parse(read_file(dir / "np3" / "run.json"));
  EXPECT_EQ(comparable_run_json(j1).dump(2), comparable_run_json(j3).dump(2));
  // average.local (5 folds, the default) is the pipeline's only node with distributable units.
  ASSERT_TRUE(j3["nodes"]["local"]["summary"].contains("cross_validation"));
  EXPECT_EQ(units_counted(j3["ranks"]), 5u) << j3["ranks"].dump();
  EXPECT_NE(many.err.find("[local] folds on 3 ranks: 5/5"), std::string::npos) << many.err;
  // The saved weight function is byte for byte the same.
  EXPECT_EQ(read_file(dir / "one" / "local" / "weight_function.json"), read_file(dir / "np3" / "local" / "weight_function.json"));
}
