// The model nodes whose per-model loops are distributable units (analysis.fisher,
// eval.sample_complexity, tune.btuning, tune.distill) under mpirun: the same run.json and the same
// files as one process, their units dealt through the run's dispatcher (counted in run.json's
// `ranks`), and a failing unit named with its model and rank.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "node_units_fixture.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using Json = nlohmann::json;

namespace {

// A zoo small enough to pre-train in well under a second (8 inputs): a small target and three
// teachers, nested subsets of its training split, every model's features and LogME on one subset.
const char* kZoo = R"([pipeline]
name = "model-units"
[[node]]
id = "zoo"
type = "zoo.pretrain"
params = { seed = 3, inputs = 8, latent = 2, source_samples = 400, train = 60, validation = 40, test = 80, epochs = 3, models = [
  { name = "student", relatedness = 0.5, hidden = [6] },
  { name = "near", relatedness = 0.9, hidden = [12] },
  { name = "deep", relatedness = 0.8, hidden = [10, 7] },
  { name = "far", relatedness = 0.0, hidden = [9] } ] }
)";

const char* kTeachers = R"([[node]]
id = "subsets"
type = "data.subsample"
inputs = { data = "zoo.data" }
params = { sizes = [20, 40], seeds = 2, seed = 5 }
[[node]]
id = "features"
type = "adapter.mlp"
inputs = { data = "subsets.data", models = "zoo.models" }
[[node]]
id = "logme"
type = "rank.logme"
inputs = { features = "features", data = "subsets.data" }
params = { split = "train_n40_s1" }
)";

// One more zoo whose model takes 6 inputs, not the 8 of the first zoo's data.
const char* kNarrowZoo = R"([[node]]
id = "other"
type = "zoo.pretrain"
params = { seed = 4, inputs = 6, latent = 2, source_samples = 200, train = 30, validation = 20, test = 20, epochs = 2, models = [
  { name = "narrow", relatedness = 0.5, hidden = [5] } ] }
)";

const char* kTune = R"(mode = "full", epochs = 4, batch_size = 16, validation_split = "", train_split = "train_n40_s1", seed = 3)";

class ModelUnitsUnderMpi : public NodeUnitsUnderMpi {};

// ------------------------------------------------------------------------- analysis.fisher

TEST_F(ModelUnitsUnderMpi, FisherOneUnitPerModelSameRunJsonAndByteIdenticalFiles) {
  CAULK_REQUIRE_MPI();
  ASSERT_NO_FATAL_FAILURE(run_three_ways(kZoo, R"([[node]]
id = "fisher"
type = "analysis.fisher"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { split = "val" }
[[node]]
id = "fisher_head"
type = "analysis.fisher"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { max_samples = 25 }
)"));
  EXPECT_EQ(added_units(), 2u * 4u) << many_["ranks"].dump() << " vs " << base_["ranks"].dump();
  for (const char* node : {"fisher", "fisher_head"})
    for (const char* model : {"student", "near", "deep", "far"}) {
      SCOPED_TRACE(fmt::format("{} {}", node, model));
      expect_same_file(std::filesystem::path(node) / (std::string(model) + ".fisher.safetensors"));
      EXPECT_EQ(many_["nodes"][node]["summary"][model]["file"], std::string(model) + ".fisher.safetensors");
    }
  EXPECT_EQ(many_["nodes"]["fisher_head"]["summary"]["near"]["samples"], 25);
}

TEST_F(ModelUnitsUnderMpi, AFisherUnitThatThrowsFailsTheNodeNamingModelAndRank) {
  CAULK_REQUIRE_MPI();
  const std::string p = std::string(kZoo) + kNarrowZoo + R"([[node]]
id = "fisher"
type = "analysis.fisher"
inputs = { data = "zoo.data", models = "other.models" }
)";
  auto r = run_failing(p);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("node 'fisher' (analysis.fisher) failed"));
  EXPECT_THAT(r.err, HasSubstr("1 of 1 models failed"));
  EXPECT_TRUE(
      std::regex_search(r.err, std::regex("model 'narrow' on rank [0-2]: the model takes 6 inputs but split 'train' has 8 columns")))
      << r.err;
  const Json j = failed_run_json();
  EXPECT_EQ(j["nodes"]["fisher"]["status"], "failed");
  EXPECT_THAT(j["nodes"]["fisher"]["error"].get<std::string>(), HasSubstr("model 'narrow' on rank"));
  // The same error on one process, without a rank.
  auto single = run_caulk(mpi_run_args(dir_ / "bad.toml", dir_ / "bad1"));
  EXPECT_EQ(single.exit_code, 1) << single.err;
  EXPECT_THAT(single.err, HasSubstr("model 'narrow': the model takes 6 inputs but split 'train' has 8 columns"));
}

// ------------------------------------------------------------------------- eval.sample_complexity

TEST_F(ModelUnitsUnderMpi, SampleComplexityOneUnitPerModelSizeAndRepetitionSameRunJsonAndTables) {
  CAULK_REQUIRE_MPI();
  ASSERT_NO_FATAL_FAILURE(run_three_ways(kZoo, R"([[node]]
id = "sc"
type = "eval.sample_complexity"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { only = ["near", "far"], sizes = [5, 10, 20, 40], seeds = 2, seed = 3, optimizer = "lbfgs", weight_decay = 1e-3 }
)"));
  // 2 models x 4 sizes x 2 repetitions.
  EXPECT_EQ(added_units(), 2u * 4u * 2u) << many_["ranks"].dump() << " vs " << base_["ranks"].dump();
  expect_same_file("sc/points.csv");
  expect_same_file("sc/curves.csv");
}

TEST_F(ModelUnitsUnderMpi, ASampleComplexityUnitThatThrowsNamesModelSizeRepetitionAndRank) {
  CAULK_REQUIRE_MPI();
  const std::string p = std::string(kZoo) + kNarrowZoo + R"([[node]]
id = "sc"
type = "eval.sample_complexity"
inputs = { data = "zoo.data", models = "other.models" }
params = { sizes = [5, 10, 20], seeds = 1, optimizer = "lbfgs" }
)";
  auto r = run_failing(p);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("node 'sc' (eval.sample_complexity) failed"));
  EXPECT_THAT(r.err, HasSubstr("3 of 3 tunings failed"));
  // One cause, said once, with each tuning it hit and its rank (caulk/failures.hpp).
  EXPECT_THAT(r.err, HasSubstr("model 'narrow' takes 6 inputs but split 'train' has 8 columns (in 3 tunings of 1 node;"));
  for (int n : {5, 10, 20})
    EXPECT_TRUE(std::regex_search(r.err, std::regex(fmt::format("'narrow, n = {}, repetition 0' on rank [0-2]", n)))) << r.err;
  EXPECT_EQ(failed_run_json()["nodes"]["sc"]["status"], "failed");
}

// ------------------------------------------------------------------------- tune.btuning, tune.distill

TEST_F(ModelUnitsUnderMpi, BTuningOneUnitPerTargetSameRunJsonAndCheckpoints) {
  CAULK_REQUIRE_MPI();
  ASSERT_NO_FATAL_FAILURE(run_three_ways(std::string(kZoo) + kTeachers, fmt::format(R"([[node]]
id = "bt"
type = "tune.btuning"
inputs = {{ data = "subsets.data", models = "zoo.models", features = "features", scores = "logme" }}
params = {{ only = ["student", "far"], k = 2, tau = 0.05, lambda = 50, suffix = ":bt", {} }}
)",
                                                                                    kTune)));
  EXPECT_EQ(added_units(), 2u) << many_["ranks"].dump() << " vs " << base_["ranks"].dump();
  for (const char* model : {"student", "far"}) {
    SCOPED_TRACE(model);
    expect_same_file(fmt::format("bt/{}:bt.safetensors", model));
    EXPECT_EQ(many_["nodes"]["bt"]["summary"][std::string(model) + ":bt"]["teachers"].size(), 2u);
  }
}

TEST_F(ModelUnitsUnderMpi, DistillOneUnitPerTargetSameRunJsonAndCheckpoints) {
  CAULK_REQUIRE_MPI();
  ASSERT_NO_FATAL_FAILURE(run_three_ways(std::string(kZoo) + kTeachers, fmt::format(R"([[node]]
id = "kd"
type = "tune.distill"
inputs = {{ data = "subsets.data", models = "zoo.models", features = "features", scores = "logme" }}
params = {{ only = ["student", "deep", "far"], k = 2, temperature = 2, alpha = 0.5, suffix = ":kd", {} }}
)",
                                                                                    kTune)));
  EXPECT_EQ(added_units(), 3u) << many_["ranks"].dump() << " vs " << base_["ranks"].dump();
  for (const char* model : {"student", "deep", "far"}) {
    SCOPED_TRACE(model);
    expect_same_file(fmt::format("kd/{}:kd.safetensors", model));
    EXPECT_EQ(many_["nodes"]["kd"]["summary"][std::string(model) + ":kd"]["teachers"].size(), 2u);
  }
}

TEST_F(ModelUnitsUnderMpi, ABTuningUnitThatThrowsFailsTheNodeNamingModelAndRank) {
  CAULK_REQUIRE_MPI();
  const std::string p = std::string(kZoo) + kTeachers + kNarrowZoo +
                        fmt::format(R"([[node]]
id = "bt"
type = "tune.btuning"
inputs = {{ data = "subsets.data", models = "other.models", features = "features", scores = "logme" }}
params = {{ k = 2, {} }}
)",
                                    kTune);
  auto r = run_failing(p);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("node 'bt' (tune.btuning) failed"));
  EXPECT_TRUE(
      std::regex_search(r.err, std::regex("model 'narrow' on rank [0-2]: the model takes 6 inputs but split 'train_n40_s1' has 8 columns")))
      << r.err;
  EXPECT_EQ(failed_run_json()["nodes"]["bt"]["status"], "failed");
}

}  // namespace
