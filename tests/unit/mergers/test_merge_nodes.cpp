// The merge nodes through the command line: manifests, chaining, and the errors a user meets.
#include <gtest/gtest.h>

#include "cli.hpp"
#include "merge_test_support.hpp"

namespace caulk::merge {
namespace {

using namespace caulk::merge_test;
using caulk::testing::run_caulk;

struct Nodes : ::testing::Test {
  caulk::testing::TempDir dir;
  Values base, a, b;
  void SetUp() override {
    const Values raw = random_values(1, 1.0);
    base = write_checkpoint(dir / "base.safetensors", raw, DType::F32);
    a = write_checkpoint(dir / "a.safetensors", random_values(2, 0.1, &raw), DType::F32);
    b = write_checkpoint(dir / "b.safetensors", random_values(3, 0.1, &raw), DType::F32);
  }
  void manifest(const std::string& extra = "") {
    dir.write("hub.toml",
              "[hub]\nname = \"t\"\n[[model]]\nname = \"base\"\ncheckpoint = \"base.safetensors\"\nbase = true\n" + extra +
                  "[[model]]\nname = \"a\"\ncheckpoint = \"a.safetensors\"\n[[model]]\nname = \"b\"\ncheckpoint = \"b.safetensors\"\n");
  }
  caulk::testing::CliResult run(const std::string& nodes) {
    dir.write(
        "p.toml",
        "[pipeline]\nname = \"t\"\n[[node]]\nid = \"load\"\ntype = \"checkpoint.load\"\nparams = { manifest = \"hub.toml\" }\n" + nodes);
    return run_caulk({"run", (dir / "p.toml").string(), "--out", (dir / "out").string()});
  }
};

TEST_F(Nodes, LoadMergeAndChain) {
  manifest();
  // The soup of a and b, then task arithmetic with the soup as a third model (the base from the
  // manifest), weights per model with a per-tensor rule.
  const auto r = run(R"(
[[node]]
id = "soup"
type = "merge.linear"
inputs = { checkpoints = "load" }
params = { output = "soup.safetensors" }

[[node]]
id = "ta"
type = "merge.task_arithmetic"
inputs = { checkpoints = ["load", "soup"] }
params = { output = "merged", lambda = 0.5, weights = { a = [{ match = "layers.1.*", value = 2.0 }] } }
)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Values soup = read_checkpoint(dir / "out" / "soup.safetensors");
  const Values ta = read_checkpoint(dir / "out" / "merged");  // a folder holding model.safetensors
  for (const auto& [name, x0] : base)
    for (std::size_t j = 0; j < x0.size(); ++j) {
      EXPECT_NEAR(soup.at(name)[j], (a.at(name)[j] + b.at(name)[j]) / 2, 1e-6);
      const double wa = name.starts_with("layers.1.") ? 2.0 : 1.0;
      const double want = x0[j] + 0.5 * (wa * (a.at(name)[j] - x0[j]) + (b.at(name)[j] - x0[j]) + (soup.at(name)[j] - x0[j]));
      EXPECT_NEAR(ta.at(name)[j], want, 1e-5) << name << " " << j;
    }
  EXPECT_NE(caulk::testing::read_file(dir / "out" / "run.json").find("\"tensors\""), std::string::npos);
}

TEST_F(Nodes, ManifestWithFisherFiles) {
  // Equal Fisher for a and b: Fisher merging gives their average.
  const Values f = random_values(9, 1.0);
  Values positive = f;
  for (auto& [name, v] : positive)
    for (double& x : v) x = x * x + 0.1;
  write_checkpoint(dir / "f.safetensors", positive, DType::F32);
  dir.write("hub.toml",
            "[hub]\nname = \"t\"\n[[model]]\nname = \"a\"\ncheckpoint = \"a.safetensors\"\nfisher = \"f.safetensors\"\n"
            "[[model]]\nname = \"b\"\ncheckpoint = \"b.safetensors\"\nfisher = \"f.safetensors\"\n");
  const auto r = run("[[node]]\nid = \"f\"\ntype = \"merge.fisher\"\ninputs = { checkpoints = \"load\" }\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Values got = read_checkpoint(dir / "out" / "f" / "f.safetensors");
  for (const auto& [name, x] : a)
    for (std::size_t j = 0; j < x.size(); ++j) EXPECT_NEAR(got.at(name)[j], (x[j] + b.at(name)[j]) / 2, 1e-6);
}

TEST_F(Nodes, TwoBasesAreRefusedWithTheirLocations) {
  dir.write("hub.toml",
            "[hub]\nname = \"t\"\n[[model]]\nname = \"a\"\ncheckpoint = \"a.safetensors\"\nbase = true\n"
            "[[model]]\nname = \"b\"\ncheckpoint = \"b.safetensors\"\nbase = true\n");
  const auto r = run("[[node]]\nid = \"m\"\ntype = \"merge.linear\"\ninputs = { checkpoints = \"load\" }\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("at most one base"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hub.toml:"), std::string::npos) << r.err;
}

TEST_F(Nodes, AnExistingOutputStaysUntouched) {
  manifest();
  dir.write("out/taken.safetensors", "keep me");
  const auto r = run(
      "[[node]]\nid = \"m\"\ntype = \"merge.linear\"\ninputs = { checkpoints = \"load\" }\nparams = { output = \"taken.safetensors\" }\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("already exists; set overwrite = true"), std::string::npos) << r.err;
  EXPECT_EQ(caulk::testing::read_file(dir / "out" / "taken.safetensors"), "keep me");
}

TEST_F(Nodes, BadRulesAreCaughtBeforeRunning) {
  manifest();
  const auto r =
      run("[[node]]\nid = \"m\"\ntype = \"merge.ties\"\ninputs = { checkpoints = \"load\" }\n"
          "params = { density = [{ match = \"re:layers.(\", value = 0.5 }] }\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("regular expression"), std::string::npos) << r.err;
  const auto unknown =
      run("[[node]]\nid = \"m\"\ntype = \"merge.linear\"\ninputs = { checkpoints = \"load\" }\nparams = { weights = { zz = 1 } }\n");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("names model 'zz'"), std::string::npos) << unknown.err;
}

TEST_F(Nodes, SearchSaysItNeedsNativeCheckpoints) {
  manifest();
  const auto r = run(R"(
[[node]]
id = "zoo"
type = "zoo.pretrain"
params = { seed = 1, source_samples = 100, epochs = 1, train = 20, validation = 20, test = 20, models = [{ name = "z", relatedness = 0.5, hidden = [4] }] }

[[node]]
id = "s"
type = "search.merge_coefficients"
inputs = { checkpoints = "load", data = "zoo.data" }
)");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("applies only to native MLP checkpoints"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("model 'a'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace caulk::merge
