// The mlp_merges nodes whose per-model work is distributable units (merge.regmean's Gram matrices,
// merge.greedy_soup's ingredient scores, ensemble.predictions' outputs, ensemble.features'
// features, analysis.scale_stability, analysis.weight_patterns' first-layer images) under mpirun:
// the same run.json and the same files as one process, one unit per model dealt through the run's
// dispatcher (counted in run.json's `ranks`), and a failing unit named with its model and rank.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "node_units_fixture.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// One small pre-trained model (9 inputs: its first-layer units draw as 3x3 tiles) and three
// fine-tuned copies of it: two full (different seeds and subsets), one LoRA saved as a delta (its
// factors are folded in by the nodes that fold, kept by the ensembles). The test split is large so
// that a unit on it takes milliseconds: rank 0 computes units too, and units much shorter than the
// dealer's 0.5 ms poll would all run there, leaving the other ranks untested.
const char* kTuned = R"([pipeline]
name = "mlp-merge-units"
[[node]]
id = "zoo"
type = "zoo.pretrain"
params = { seed = 3, inputs = 9, latent = 2, source_samples = 400, train = 90, validation = 60, test = 20000, epochs = 3, models = [
  { name = "near", relatedness = 0.9, hidden = [48, 24] } ] }
[[node]]
id = "a"
type = "tune.peft"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { mode = "full", epochs = 4, seed = 1, train_samples = 60, suffix = ":a" }
[[node]]
id = "b"
type = "tune.peft"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { mode = "full", epochs = 4, seed = 2, train_samples = 45, suffix = ":b" }
[[node]]
id = "c"
type = "tune.peft"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { mode = "lora", rank = 2, epochs = 4, seed = 1, suffix = ":c", save = "delta" }
)";

// One more zoo whose model takes 6 inputs, not the 9 of the first zoo's data (and has the 4 outputs
// of its classes, so the inputs are what does not fit).
const char* kNarrowZoo = R"([[node]]
id = "other"
type = "zoo.pretrain"
params = { seed = 4, inputs = 6, latent = 2, source_classes = 4, source_samples = 200, train = 30, validation = 20, test = 20, epochs = 2, models = [
  { name = "narrow", relatedness = 0.5, hidden = [5] } ] }
)";

class MlpMergesUnderMpi : public NodeUnitsUnderMpi {
 protected:
  void run_three_ways(const std::string& nodes) { NodeUnitsUnderMpi::run_three_ways(kTuned, nodes); }
};

const char* kAll = R"(checkpoints = ["a.checkpoints", "b.checkpoints", "c.checkpoints"])";

// ------------------------------------------------------------------------- merge.regmean

TEST_F(MlpMergesUnderMpi, RegMeanOneGramUnitPerModelSameRunJsonAndByteIdenticalMerge) {
  CAULK_REQUIRE_MPI();
  ASSERT_NO_FATAL_FAILURE(run_three_ways(fmt::format(R"([[node]]
id = "regmean"
type = "merge.regmean"
inputs = {{ {0}, data = "zoo.data" }}
params = {{ alpha = 0.8, split = "test", model_splits = {{ "near:b" = "val" }}, max_samples = 5000, seed = 2 }}
[[node]]
id = "regmean_mean"
type = "merge.regmean"
inputs = {{ {0}, data = "zoo.data" }}
params = {{ gram = "mean", split = "test", output = "merged/rm.safetensors" }}
)",
                                                     kAll)));
  EXPECT_EQ(added_units(), 2u * 3u) << many_["ranks"].dump() << " vs " << base_["ranks"].dump();
  expect_same_file("regmean/regmean.safetensors");
  expect_same_file("merged/rm.safetensors");
  const Json& models = many_["nodes"]["regmean"]["summary"]["models"];
  EXPECT_EQ(models["near:a"]["samples"], 5000);
  EXPECT_EQ(models["near:b"]["split"], "val");
  EXPECT_EQ(many_["nodes"]["regmean_mean"]["summary"]["models"]["near:c"]["samples"], 20000);
}

// ------------------------------------------------------------------------- merge.greedy_soup

TEST_F(MlpMergesUnderMpi, GreedySoupOneScoreUnitPerIngredientSameRunJsonAndByteIdenticalSoup) {
  CAULK_REQUIRE_MPI();
  ASSERT_NO_FATAL_FAILURE(run_three_ways(fmt::format(R"([[node]]
id = "soup"
type = "merge.greedy_soup"
inputs = {{ {0}, data = "zoo.data" }}
params = {{ split = "test" }}
[[node]]
id = "soup_ll"
type = "merge.greedy_soup"
inputs = {{ {0}, data = "zoo.data" }}
params = {{ metric = "log_loss", split = "test" }}
)",
                                                     kAll)));
  // The ingredients' own scores; the greedy loop stays on rank 0.
  EXPECT_EQ(added_units(), 2u * 3u) << many_["ranks"].dump() << " vs " << base_["ranks"].dump();
  for (const char* node : {"soup", "soup_ll"}) {
    SCOPED_TRACE(node);
    expect_same_file(fmt::format("{0}/{0}.safetensors", node));
    expect_same_file(fmt::format("{}/ingredients.csv", node));
    EXPECT_EQ(many_["nodes"][node]["summary"]["ingredients"].size(), 3u);
  }
}

// ------------------------------------------------------------------------- ensemble.predictions, ensemble.features

TEST_F(MlpMergesUnderMpi, OutputEnsembleOneUnitPerModelSameRunJsonAndPredictions) {
  CAULK_REQUIRE_MPI();
  ASSERT_NO_FATAL_FAILURE(run_three_ways(fmt::format(R"([[node]]
id = "outputs"
type = "ensemble.predictions"
inputs = {{ {0}, data = "zoo.data" }}
params = {{ splits = ["val", "test"] }}
[[node]]
id = "saved"
type = "predictions.save"
inputs = {{ predictions = "outputs" }}
[[node]]
id = "eval"
type = "eval.classification"
inputs = {{ predictions = "outputs", data = "zoo.data" }}
)",
                                                     kAll)));
  EXPECT_EQ(added_units(), 3u) << many_["ranks"].dump() << " vs " << base_["ranks"].dump();
  expect_same_folder("saved", 2);
  EXPECT_TRUE(many_["nodes"]["eval"]["summary"].contains("outputs"));
}

TEST_F(MlpMergesUnderMpi, FeatureEnsembleOneUnitPerModelForBothHeadsSameRunJsonAndPredictions) {
  CAULK_REQUIRE_MPI();
  ASSERT_NO_FATAL_FAILURE(run_three_ways(fmt::format(R"([[node]]
id = "avg_head"
type = "ensemble.features"
inputs = {{ {0}, data = "zoo.data" }}
params = {{ head = "average", splits = ["test"] }}
[[node]]
id = "refit_head"
type = "ensemble.features"
inputs = {{ {0}, data = "zoo.data" }}
params = {{ head = "refit", splits = ["val", "test"], train_split = "train" }}
[[node]]
id = "saved"
type = "predictions.save"
inputs = {{ predictions = ["avg_head", "refit_head"] }}
[[node]]
id = "eval"
type = "eval.classification"
inputs = {{ predictions = ["avg_head", "refit_head"], data = "zoo.data" }}
)",
                                                     kAll)));
  EXPECT_EQ(added_units(), 2u * 3u) << many_["ranks"].dump() << " vs " << base_["ranks"].dump();
  expect_same_folder("saved", 3);
  EXPECT_EQ(many_["nodes"]["refit_head"]["summary"]["train_samples"], 90);
  EXPECT_EQ(many_["nodes"]["avg_head"]["summary"]["feature_dim"], 24);
}

// ------------------------------------------------------------------------- analysis.scale_stability

TEST_F(MlpMergesUnderMpi, ScaleStabilityOneUnitPerModelSameRunJsonAndTable) {
  CAULK_REQUIRE_MPI();
  ASSERT_NO_FATAL_FAILURE(run_three_ways(R"([[node]]
id = "stability"
type = "analysis.scale_stability"
inputs = { checkpoints = ["a.checkpoints", "b.checkpoints", "c.checkpoints"], data = "zoo.data" }
params = { split = "val" }
[[node]]
id = "stability_layer"
type = "analysis.scale_stability"
inputs = { checkpoints = ["a.checkpoints", "c.checkpoints"], data = "zoo.data" }
params = { scales = [0.5, 1, 3], layer = 1, split = "test" }
)"));
  EXPECT_EQ(added_units(), 3u + 2u) << many_["ranks"].dump() << " vs " << base_["ranks"].dump();
  expect_same_file("stability.csv");
  expect_same_file("stability_layer.csv");
  EXPECT_EQ(many_["nodes"]["stability_layer"]["summary"]["near:c"].size(), 3u);
  EXPECT_EQ(many_["nodes"]["stability_layer"]["summary"]["near:c"][1]["agreement"], 1.0);  // s = 1
}

// ------------------------------------------------------------------------- analysis.weight_patterns

TEST_F(MlpMergesUnderMpi, WeightPatternsOneImageUnitPerModelSameRunJsonAndByteIdenticalPngs) {
  CAULK_REQUIRE_MPI();
  ASSERT_NO_FATAL_FAILURE(run_three_ways(R"([[node]]
id = "patterns"
type = "analysis.weight_patterns"
inputs = { checkpoints = ["zoo.models", "a.checkpoints", "b.checkpoints", "c.checkpoints"] }
params = { cell = 24 }
[[node]]
id = "patterns_own"
type = "analysis.weight_patterns"
inputs = { checkpoints = ["a.checkpoints", "c.checkpoints"] }
params = { scale = "per_model", cell = 3, max_units = 5 }
)"));
  EXPECT_EQ(added_units(), 4u + 2u) << many_["ranks"].dump() << " vs " << base_["ranks"].dump();
  // 4 first-layer images, 3 cosine heat maps, the norms, weights.csv; then 2 + 3 + 1 + 1.
  expect_same_folder("patterns", 9);
  expect_same_folder("patterns_own", 7);
  for (const char* model : {"near", "near:a", "near:b", "near:c"}) {
    SCOPED_TRACE(model);
    expect_same_file(fmt::format("patterns/{}.first_layer.png", model));
    EXPECT_EQ(many_["nodes"]["patterns"]["summary"]["first_layer_images"][model], fmt::format("{}.first_layer.png", model));
  }
  EXPECT_EQ(many_["nodes"]["patterns_own"]["summary"]["first_layer_scale"].size(), 2u);
}

// ------------------------------------------------------------------------- a unit that throws

TEST_F(MlpMergesUnderMpi, AScaleStabilityUnitThatThrowsFailsTheNodeNamingModelAndRank) {
  CAULK_REQUIRE_MPI();
  const std::string p = std::string(kTuned) + kNarrowZoo + R"([[node]]
id = "stability"
type = "analysis.scale_stability"
inputs = { checkpoints = ["a.checkpoints", "other.models"], data = "zoo.data" }
)";
  auto r = run_failing(p);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("node 'stability' (analysis.scale_stability) failed"));
  EXPECT_THAT(r.err, HasSubstr("1 of 2 models failed"));
  EXPECT_TRUE(
      std::regex_search(r.err, std::regex("model 'narrow' on rank [0-2]: model 'narrow' takes 6 inputs but the dataset's inputs have "
                                          "9 columns")))
      << r.err;
  const Json j = failed_run_json();
  EXPECT_EQ(j["nodes"]["stability"]["status"], "failed");
  EXPECT_THAT(j["nodes"]["stability"]["error"].get<std::string>(), HasSubstr("model 'narrow' on rank"));
  // The same error on one process, without a rank.
  auto single = run_caulk(mpi_run_args(dir_ / "bad.toml", dir_ / "bad1"));
  EXPECT_EQ(single.exit_code, 1) << single.err;
  EXPECT_THAT(single.err, HasSubstr("model 'narrow': model 'narrow' takes 6 inputs but the dataset's inputs have 9 columns"));
}

TEST_F(MlpMergesUnderMpi, AnEnsembleUnitThatThrowsFailsTheNodeNamingModelAndRank) {
  CAULK_REQUIRE_MPI();
  const std::string p = std::string(kTuned) + kNarrowZoo + R"([[node]]
id = "outputs"
type = "ensemble.predictions"
inputs = { checkpoints = ["other.models", "b.checkpoints"], data = "zoo.data" }
params = { splits = ["test"] }
)";
  auto r = run_failing(p);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("node 'outputs' (ensemble.predictions) failed"));
  EXPECT_TRUE(std::regex_search(r.err, std::regex("model 'narrow' on rank [0-2]: model 'narrow' takes 6 inputs"))) << r.err;
  EXPECT_EQ(failed_run_json()["nodes"]["outputs"]["status"], "failed");
}

}  // namespace
