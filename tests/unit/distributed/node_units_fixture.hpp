// The fixture of the tests that check a node's units are dealt to the ranks: a pipeline run on one
// process and on 3 ranks (same run.json, same files), and the units its added nodes ran (the
// pipeline's `ranks` count against the same pipeline without them: a node still looping with
// for_each_unit adds none).
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "mpi_support.hpp"
#include "run_json.hpp"

namespace caulk::testing {

class NodeUnitsUnderMpi : public ::testing::Test {
 protected:
  using Json = nlohmann::json;

  // `base + nodes` on one process and on 3 ranks, and `base` alone on 3 ranks: both runs of
  // `base + nodes` must succeed with the same run.json (timings and `ranks` aside).
  void run_three_ways(const std::string& base, const std::string& nodes) {
    const auto full = dir_.write("full.toml", base + nodes);
    const auto base_only = dir_.write("base.toml", base);
    auto one = run_caulk(mpi_run_args(full, dir_ / "one"));
    ASSERT_EQ(one.exit_code, 0) << one.err;
    auto many = run_mpi(3, mpi_run_args(full, dir_ / "np3"));
    ASSERT_EQ(many.exit_code, 0) << many.err;
    auto b = run_mpi(3, mpi_run_args(base_only, dir_ / "base"));
    ASSERT_EQ(b.exit_code, 0) << b.err;
    one_ = Json::parse(read_file(dir_ / "one" / "run.json"));
    many_ = Json::parse(read_file(dir_ / "np3" / "run.json"));
    base_ = Json::parse(read_file(dir_ / "base" / "run.json"));
    ASSERT_TRUE(many_.contains("ranks"));
    ASSERT_TRUE(base_.contains("ranks"));
    EXPECT_EQ(comparable_run_json(one_).dump(2), comparable_run_json(many_).dump(2));
  }
  // The units the added nodes ran through the dispatcher.
  std::size_t added_units() const { return units_counted(many_["ranks"]) - units_counted(base_["ranks"]); }
  // The file at `relative` in the one-process and the 3-rank output: both written, byte for byte equal.
  void expect_same_file(const std::filesystem::path& relative) const {
    const auto a = dir_ / "one" / relative, b = dir_ / "np3" / relative;
    ASSERT_TRUE(std::filesystem::exists(a)) << a;
    ASSERT_TRUE(std::filesystem::exists(b)) << b;
    const std::string bytes = read_file(a);
    EXPECT_GT(bytes.size(), 100u) << a;
    EXPECT_TRUE(bytes == read_file(b)) << relative << " differs between one process and 3 ranks";
  }
  // Every file under the folder `relative` (at least `at_least` of them), as expect_same_file, and
  // no file only in the 3-rank output.
  void expect_same_folder(const std::filesystem::path& relative, std::size_t at_least) const {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ / "one" / relative))
      if (e.is_regular_file()) {
        ++n;
        expect_same_file(relative / std::filesystem::relative(e.path(), dir_ / "one" / relative));
      }
    EXPECT_GE(n, at_least) << relative;
    std::size_t m = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ / "np3" / relative)) m += e.is_regular_file();
    EXPECT_EQ(m, n) << relative;
  }
  CliResult run_failing(const std::string& pipeline) { return run_mpi(3, mpi_run_args(dir_.write("bad.toml", pipeline), dir_ / "bad")); }
  Json failed_run_json() const { return Json::parse(read_file(dir_ / "bad" / "run.json")); }

  TempDir dir_;
  Json one_, many_, base_;
};

}  // namespace caulk::testing
