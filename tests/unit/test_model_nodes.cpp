// The model nodes through `caulk run`: a small zoo, its features, tuning in every mode with both
// ways of saving, the Fisher files, a hub from a manifest, and the errors users meet.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "caulk/io/npy.hpp"
#include "caulk/io/safetensors.hpp"
#include "cli.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;

namespace {

// A zoo small enough to pre-train in well under a second.
const char* kZoo = R"([pipeline]
name = "model-nodes"
[[node]]
id = "zoo"
type = "zoo.pretrain"
params = { seed = 3, inputs = 8, latent = 2, source_samples = 400, train = 60, validation = 40, test = 80, epochs = 3, models = [
  { name = "near", relatedness = 0.9, hidden = [12] },
  { name = "far", relatedness = 0.0, hidden = [10, 6], activation = "gelu" } ] }
)";

class ModelNodes : public ::testing::Test {
 protected:
  CliResult run(const std::string& pipeline, const std::vector<std::string>& extra = {}, const std::string& out = "out") {
    dir_.write("p.toml", pipeline);
    std::vector<std::string> args{"run", (dir_ / "p.toml").string(), "--out", (dir_ / out).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_caulk(args);
  }
  nlohmann::json run_json() { return nlohmann::json::parse(read_file(dir_ / "out" / "run.json")); }
  TempDir dir_;
};

TEST_F(ModelNodes, EveryTuningModeTunesPredictsAndSaves) {
  std::string p = kZoo;
  for (const char* mode : {"linear_probe", "partial", "adapter", "lora", "full"}) {
    p += fmt::format(R"([[node]]
id = "{0}"
type = "tune.peft"
inputs = {{ data = "zoo.data", models = "zoo.models" }}
params = {{ mode = "{0}", epochs = 3, rank = 2, save = "{1}", suffix = ":{0}" }}
[[node]]
id = "{0}_features"
type = "adapter.mlp"
inputs = {{ data = "zoo.data", models = "{0}.checkpoints" }}
)",
                     mode, std::string(mode) == "lora" || std::string(mode) == "adapter" ? "delta" : "merged");
  }
  auto r = run(p);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = run_json();
  const auto& nodes = j["nodes"];
  EXPECT_EQ(nodes["linear_probe"]["summary"]["near:linear_probe"]["trainable_parameters"], 12 * 4 + 4);
  // partial with 2 layers on "near" (8-12 features, new 4-class head): 8*12+12 + 12*4+4.
  EXPECT_EQ(nodes["partial"]["summary"]["near:partial"]["trainable_parameters"], 8 * 12 + 12 + 12 * 4 + 4);
  // adapter after the feature layer (width 12, rank 2) and the head.
  EXPECT_EQ(nodes["adapter"]["summary"]["near:adapter"]["trainable_parameters"], (2 * 12 + 2) + (12 * 2 + 12) + 12 * 4 + 4);
  // LoRA (rank 2) on the one body layer 8 -> 12, and the head.
  EXPECT_EQ(nodes["lora"]["summary"]["near:lora"]["trainable_parameters"], 2 * 8 + 12 * 2 + 12 * 4 + 4);
  // The delta files hold only the tuned tensors, and load (through their base) in adapter.mlp.
  const auto delta = caulk::io::Checkpoint::open(dir_ / "out" / "lora" / "near:lora.delta.safetensors");
  EXPECT_THAT(delta.names(), ::testing::ElementsAre("layers.1.bias", "layers.1.weight", "lora.0.A", "lora.0.B"));
  EXPECT_EQ(nodes["lora_features"]["summary"]["near:lora"]["feature_dim"], 12);
  // A merged checkpoint is self-contained: it loads without a base and has the target's head.
  const auto merged = caulk::mlp::load_model(dir_ / "out" / "full" / "far:full.safetensors");
  EXPECT_EQ(merged.output_dim(), 4);
}

// A model's stream is named by the model (docs/architecture.md, "Determinism"): tuned alone or
// after another model, its new head, LoRA factors and batches are the same, and so is the result.
TEST_F(ModelNodes, AModelsTuneDoesNotDependOnWhichOtherModelsAreTunedWithIt) {
  std::string p = kZoo;
  for (const char* id : {"both", "alone"})
    p += fmt::format(R"([[node]]
id = "{}"
type = "tune.peft"
inputs = {{ data = "zoo.data", models = "zoo.models" }}
params = {{ mode = "lora", epochs = 2, rank = 2, seed = 5{} }}
)",
                     id, std::string(id) == "alone" ? ", only = [\"far\"]" : "");
  auto r = run(p);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = run_json();
  auto both = j["nodes"]["both"]["summary"]["far"], alone = j["nodes"]["alone"]["summary"]["far"];
  ASSERT_TRUE(both.is_object()) << j["nodes"]["both"]["summary"].dump();
  both.erase("seconds");
  alone.erase("seconds");
  EXPECT_EQ(both, alone);
  const auto a = caulk::io::Checkpoint::open(dir_ / "out" / "both" / "far.safetensors");
  const auto b = caulk::io::Checkpoint::open(dir_ / "out" / "alone" / "far.safetensors");
  ASSERT_EQ(a.names(), b.names());
  for (const auto& name : a.names()) EXPECT_EQ(a.to_double(name), b.to_double(name)) << name;
  // The other model's stream is another: its head starts elsewhere.
  EXPECT_NE(j["nodes"]["both"]["summary"]["near"]["train_loss"], j["nodes"]["both"]["summary"]["far"]["train_loss"]);
}

TEST_F(ModelNodes, FisherFilesMatchTheCheckpointTensors) {
  auto r = run(std::string(kZoo) + R"([[node]]
id = "fisher"
type = "analysis.fisher"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { split = "val" }
)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* model : {"near", "far"}) {
    const auto ck = caulk::io::Checkpoint::open(dir_ / "out" / "zoo" / "checkpoints" / (std::string(model) + ".safetensors"));
    const auto f = caulk::io::Checkpoint::open(dir_ / "out" / "fisher" / (std::string(model) + ".fisher.safetensors"));
    EXPECT_EQ(f.names(), ck.names()) << model;
    for (const auto& n : f.names()) {
      EXPECT_EQ(f.info(n).shape, ck.info(n).shape) << n;
      for (double v : f.to_double(n)) EXPECT_GE(v, 0.0) << n;
    }
    EXPECT_GT(run_json()["nodes"]["fisher"]["summary"][model]["trace"].get<double>(), 0.0);
  }
}

TEST_F(ModelNodes, AHubFromAManifestAndItsErrors) {
  auto r = run(kZoo);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto hub = dir_ / "out" / "zoo" / "hub.toml";
  const auto target = dir_ / "out" / "zoo" / "target";
  const std::string load = fmt::format(R"([pipeline]
name = "from-files"
[[node]]
id = "task"
type = "dataset.load"
params = {{ labels = {{ train = "{0}/train_labels.npy", test = "{0}/test_labels.npy" }}, inputs = {{ train = "{0}/train_inputs.npy", test = "{0}/test_inputs.npy" }} }}
)",
                                       target.string());
  r = run(load + fmt::format(R"([[node]]
id = "features"
type = "adapter.mlp"
inputs = {{ data = "task" }}
params = {{ manifest = "{}", only = ["far"] }}
)",
                             hub.string()),
          {}, "out2");
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // Neither the models input nor a manifest: a problem before anything runs (the hub's data
  // check), and the node says the same when it runs without the checks.
  const std::string no_hub = load + R"([[node]]
id = "features"
type = "adapter.mlp"
inputs = { data = "task" }
)";
  r = run(no_hub);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no models: connect the `models` input or give the `manifest` parameter"));
  r = run(no_hub, {"--no-data-check"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no models: connect the `models` input or give the `manifest` parameter"));

  // L-BFGS only fits a linear probe: a pipeline error before anything runs, naming the node.
  r = run(std::string(kZoo) + R"([[node]]
id = "tune"
type = "tune.peft"
inputs = { data = "zoo.data", models = "zoo.models" }
params = { mode = "lora", optimizer = "lbfgs" }
)");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("tune"));
  EXPECT_THAT(r.err, HasSubstr("lbfgs fits a convex head only"));

  // A dataset without model inputs.
  r = run(R"([pipeline]
name = "no-inputs"
[[node]]
id = "task"
type = "dataset.load"
params = { labels = ")" +
          (target / "train_labels.npy").string() + R"(" }
[[node]]
id = "features"
type = "adapter.mlp"
inputs = { data = "task" }
params = { manifest = ")" +
          hub.string() + R"(" }
)");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("has no split with model inputs"));
}

TEST_F(ModelNodes, TheZooIsTheSameWithAnyNumberOfJobs) {
  auto a = run(kZoo, {"--jobs", "1"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const std::string one = read_file(dir_ / "out" / "zoo" / "checkpoints" / "far.safetensors");
  auto b = run(kZoo, {"--jobs", "2"}, "out_b");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(read_file(dir_ / "out_b" / "zoo" / "checkpoints" / "far.safetensors"), one);
}

}  // namespace
