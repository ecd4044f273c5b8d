// The mlp_merges nodes through `caulk run`: a tiny zoo, three fine-tuned copies of one model, and
// every node of the family on them; the merged files against the algorithms run directly on the
// same checkpoints; and the errors users meet (different architectures, a dataset without inputs,
// an existing output without overwrite).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/mlp/peft.hpp"
#include "mlp_merges/algorithms/greedy_soup.hpp"
#include "mlp_merges/algorithms/model_ops.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;

namespace {

const char* kTuned = R"([pipeline]
name = "mlp-merges"
[[node]]
id = "zoo"
type = "zoo.pretrain"
params = { seed = 3, inputs = 9, latent = 2, source_samples = 400, train = 90, validation = 60, test = 80, epochs = 3, models = [
  { name = "near", relatedness = 0.9, hidden = [12, 6] },
  { name = "far", relatedness = 0.0, hidden = [10, 6] } ] }
[[node]]
id = "a"
type = "tune.peft"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { mode = "full", epochs = 4, only = ["near"], seed = 1, train_samples = 60, suffix = ":a" }
[[node]]
id = "b"
type = "tune.peft"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { mode = "full", epochs = 4, only = ["near"], seed = 1, train_samples = 45, suffix = ":b" }
[[node]]
id = "c"
type = "tune.peft"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { mode = "lora", rank = 2, epochs = 4, only = ["near"], seed = 1, suffix = ":c", save = "delta" }
)";

class MlpMergeNodes : public ::testing::Test {
 protected:
  CliResult run(const std::string& pipeline, const std::string& out = "out") {
    dir_.write("p.toml", pipeline);
    return run_caulk({"run", (dir_ / "p.toml").string(), "--out", (dir_ / out).string()});
  }
  nlohmann::json run_json(const std::string& out = "out") { return nlohmann::json::parse(read_file(dir_ / out / "run.json")); }
  TempDir dir_;
};

TEST_F(MlpMergeNodes, EveryNodeRunsAndChains) {
  auto r = run(std::string(kTuned) + R"([[node]]
id = "soup"
type = "merge.greedy_soup"
inputs = { checkpoints = ["a.checkpoints", "b.checkpoints", "c.checkpoints"], data = "zoo.data" }
[[node]]
id = "regmean"
type = "merge.regmean"
inputs = { checkpoints = ["a.checkpoints", "b.checkpoints", "c.checkpoints"], data = "zoo.data" }
params = { alpha = 0.8, model_splits = { "near:b" = "val" }, max_samples = 50, seed = 2 }
[[node]]
id = "outputs"
type = "ensemble.predictions"
inputs = { checkpoints = ["a.checkpoints", "b.checkpoints", "c.checkpoints"], data = "zoo.data" }
params = { splits = ["test"] }
[[node]]
id = "features"
type = "ensemble.features"
inputs = { checkpoints = ["a.checkpoints", "b.checkpoints"], data = "zoo.data" }
params = { head = "refit", splits = ["test"] }
[[node]]
id = "stability"
type = "analysis.scale_stability"
inputs = { checkpoints = ["a.checkpoints", "regmean"], data = "zoo.data" }
params = { scales = [0.5, 1, 2] }
[[node]]
id = "patterns"
type = "analysis.weight_patterns"
inputs = { checkpoints = ["zoo.models", "a.checkpoints", "soup"] }
[[node]]
id = "eval"
type = "eval.classification"
inputs = { predictions = ["a.predictions", "outputs", "features"], data = "zoo.data" }
)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = run_json();
  const auto& nodes = j["nodes"];
  const auto out = dir_ / "out";

  // The soup's record, and its file against the algorithm run here on the same checkpoints.
  const auto& soup = nodes["soup"]["summary"];
  ASSERT_EQ(soup["ingredients"].size(), 3u);
  EXPECT_EQ(soup["ingredients"][0]["kept"], true);
  std::vector<caulk::mlp::Model<float>> models;
  for (const char* f : {"a/near:a.safetensors", "b/near:b.safetensors", "c/near:c.delta.safetensors"})
    models.push_back(caulk::mlp::fold_lora(caulk::mlp::load_model(out / f)));
  std::vector<const caulk::mlp::Model<float>*> kept;
  const std::vector<std::string> names{"near:a", "near:b", "near:c"};
  for (const auto& ing : soup["ingredients"])
    if (ing["kept"].get<bool>())
      for (std::size_t i = 0; i < 3; ++i)
        if (names[i] == ing["model"]) kept.push_back(&models[i]);
  EXPECT_EQ(kept.size(), soup["kept"].size());
  const auto expected = caulk::mlp_merges::average_models(kept);
  const auto written = caulk::mlp::load_model(out / "soup" / "soup.safetensors");
  EXPECT_LT((written.layers[0].W - expected.layers[0].W).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_TRUE(std::filesystem::exists(out / "soup" / "ingredients.csv"));
  // The soup's score is its accuracy on val, as eval.classification would count it.
  EXPECT_GE(soup["score"].get<double>(), soup["ingredients"][0]["score"].get<double>());

  EXPECT_EQ(nodes["regmean"]["summary"]["models"]["near:b"]["split"], "val");
  EXPECT_EQ(nodes["regmean"]["summary"]["models"]["near:a"]["samples"], 50);
  EXPECT_EQ(caulk::mlp::load_model(out / "regmean" / "regmean.safetensors").num_layers(), 3);

  for (const char* model : {"near:a", "outputs", "features"}) EXPECT_TRUE(nodes["eval"]["summary"].contains(model)) << model;
  EXPECT_EQ(nodes["stability"]["summary"]["regmean"][1]["agreement"], 1.0);  // s = 1
  EXPECT_TRUE(std::filesystem::exists(out / "stability.csv"));
  for (const char* f :
       {"near.first_layer.png", "near:a.first_layer.png", "soup.first_layer.png", "cosine.layers.0.png", "norms.png", "weights.csv"})
    EXPECT_TRUE(std::filesystem::exists(out / "patterns" / f)) << f;
}

TEST_F(MlpMergeNodes, DifferentArchitecturesAreRefusedByName) {
  auto r = run(std::string(kTuned) + R"([[node]]
id = "regmean"
type = "merge.regmean"
inputs = { checkpoints = "zoo.models", data = "zoo.data" }
)");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("checkpoints of different architectures: tensor 'layers.0.weight' has shape [10, 9] in model 'far' but "
                               "[12, 9] in 'near'"));
}

TEST_F(MlpMergeNodes, AModelSplitOfAnUnknownModelIsNamedWhereItIsWritten) {
  // "near:bb" is a typo of "near:b": said at the value's line and column, with the checkpoints.
  auto r = run(std::string(kTuned) + R"([[node]]
id = "regmean"
type = "merge.regmean"
inputs = { checkpoints = ["a.checkpoints", "b.checkpoints"], data = "zoo.data" }
params = { alpha = 0.8, model_splits = { "near:bb" = "val" } }
)");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("p.toml:28:54: "));
  EXPECT_THAT(r.err, HasSubstr("`model_splits` names model 'near:bb', which is not among the checkpoints (near:a,near:b) (did you mean "
                               "'near:b' or 'near:a'?)"));
}

TEST_F(MlpMergeNodes, ADatasetWithoutInputsIsNamed) {
  auto r = run(kTuned);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto target = dir_ / "out" / "zoo" / "target";
  r = run(fmt::format(R"([pipeline]
name = "no-inputs"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = {{ train = "{0}/train_labels.npy", val = "{0}/val_labels.npy" }} }}
[[node]]
id = "regmean"
type = "merge.regmean"
inputs = {{ checkpoints = "a.checkpoints", data = "task" }}
[[node]]
id = "a"
type = "tune.peft"
inputs = {{ data = "zoo.data", models = "zoo.models" }}
params = {{ mode = "full", epochs = 1, only = ["near"] }}
[[node]]
id = "zoo"
type = "zoo.pretrain"
params = {{ seed = 3, inputs = 9, latent = 2, source_samples = 100, train = 90, validation = 60, test = 80, epochs = 1, models = [ {{ name = "near", hidden = [4] }} ] }}
)",
                      target.string()),
          "out2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("regmean"));
  EXPECT_THAT(r.err, HasSubstr("split 'train' has no model inputs"));
}

TEST_F(MlpMergeNodes, AnExistingOutputIsLeftUntouchedWithoutOverwrite) {
  const auto target = dir_.write("merged.safetensors", "precious bytes");
  const std::string merge = fmt::format(R"([[node]]
id = "soup"
type = "merge.greedy_soup"
inputs = {{ checkpoints = ["a.checkpoints", "b.checkpoints"], data = "zoo.data" }}
params = {{ output = "{}" }}
)",
                                        target.string());
  auto r = run(std::string(kTuned) + merge);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(fmt::format("the output {} already exists; set overwrite = true to replace it (it was left untouched)",
                                           target.string())));
  EXPECT_EQ(read_file(target), "precious bytes");
  // With overwrite too: caulk did not write it.
  const std::string overwrite = std::string(kTuned) + merge.substr(0, merge.size() - 3) + ", overwrite = true }\n";
  r = run(overwrite, "out2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(fmt::format("{} exists and was not written by caulk", target.string())));
  EXPECT_EQ(read_file(target), "precious bytes");
  // An output caulk wrote is replaced by a loadable checkpoint.
  std::filesystem::remove(target);
  ASSERT_EQ(run(std::string(kTuned) + merge, "out3").exit_code, 0);
  r = run(overwrite, "out4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(caulk::mlp::load_model(target).num_layers(), 3);
}

}  // namespace
