// Node types that only tests need: a pass-through (so a type-correct cycle can be written), one
// declared not cacheable (as a node reading the clock would be), and a node whose per-unit work
// fails for chosen units.
#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/plugin.hpp"

namespace {

class Pass : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("test.pass", "Pass a dataset through");
    s.input("in", "Dataset", "a dataset");
    s.output("out", "Dataset", "the same dataset");
    return s;
  }
  void run(caulk::NodeContext& ctx) override {
    auto in = ctx.input<caulk::Dataset>("in");
    ctx.publish("out", std::make_shared<caulk::Dataset>(*in));
  }
};

class PassUncached : public Pass {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("test.uncached", "Pass a dataset through; never taken from the cache of re-runs");
    s.input("in", "Dataset", "a dataset");
    s.output("out", "Dataset", "the same dataset");
    s.not_cacheable();
    return s;
  }
};

class FailUnits : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("test.fail_units", "Fail the units named in 'fail'");
    s.input("features", "Embeddings", "models");
    s.output("scores", "Scores", "scores of the models that did not fail");
    s.param(caulk::ParamSpec::list("fail", "model names whose unit throws"));
    return s;
  }
  void run(caulk::NodeContext& ctx) override {
    auto e = ctx.input<caulk::Embeddings>("features");
    std::vector<std::string> names, fail;
    for (const auto& m : e->models) names.push_back(m.name);
    if (ctx.params().has("fail"))
      for (const auto& v : ctx.params().get("fail").as_array()) fail.push_back(v.as_string());
    ctx.for_each_unit("model", names, [&](std::size_t i) {
      for (const auto& f : fail)
        if (f == names[i]) throw caulk::Error("this unit was told to fail");
    });
    ctx.publish("scores", std::make_shared<caulk::Scores>());
  }
};

}  // namespace

CAULK_PLUGIN("test_nodes", "1.0", "Node types for the engine's tests") {
  registrar.add_node<Pass>();
  registrar.add_node<PassUncached>();
  registrar.add_node<FailUnits>();
}
