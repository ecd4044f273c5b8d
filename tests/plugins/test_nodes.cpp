// Node types that only tests need: a pass-through (so a type-correct cycle can be written), one
// declared not cacheable (as a node reading the clock would be), a node whose per-unit work fails
// for chosen units, a node that publishes a Figure as a third-party plugin would (a
// hand-written Vega-Lite spec, the framework's headers only), and an optional output and input.
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

class FigureBars : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("test.figure_bars", "Draw a ranker's scores as bars, with a hand-written Vega-Lite spec");
    s.input("scores", "Scores", "a ranker's scores");
    s.output("figure", "Figure", "the scores as bars");
    return s;
  }
  void run(caulk::NodeContext& ctx) override {
    auto scores = ctx.input<caulk::Scores>("scores");
    caulk::Json values = caulk::Json::array();
    for (const auto& s : scores->scores) values.push_back({{"model", s.model}, {"score", s.score}});
    auto figure = std::make_shared<caulk::Figure>();
    figure->title = "Third-party bars of " + scores->producer_node;
    figure->caption = "Drawn by a plugin the report knows nothing about.";
    figure->spec = {{"$schema", "https://vega.github.io/schema/vega-lite/v6.json"},
                    {"title", {{"text", figure->title}}},
                    {"description", "Bars: each model's score"},
                    {"data", {{"values", values}}},
                    {"mark", "bar"},
                    {"encoding",
                     {{"y", {{"field", "model"}, {"type", "nominal"}, {"title", "model"}}},
                      {"x", {{"field", "score"}, {"type", "quantitative"}, {"title", "score (higher is better)"}}}}}};
    ctx.publish("figure", std::move(figure));
  }
};

// A node with an optional output, published when `extra` is true, and a node that takes it on an
// optional input and says in its summary whether it got it.
class MaybeExtra : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("test.maybe_extra", "Pass a dataset through, and again on `extra` when asked");
    s.input("in", "Dataset", "a dataset");
    s.output("out", "Dataset", "the same dataset");
    s.output_optional("extra", "Dataset", "the same dataset again, published only when the parameter extra is true");
    s.param(caulk::ParamSpec::flag("extra", false, "publish the optional output"));
    return s;
  }
  void run(caulk::NodeContext& ctx) override {
    auto in = ctx.input<caulk::Dataset>("in");
    ctx.publish("out", std::make_shared<caulk::Dataset>(*in));
    if (ctx.params().flag("extra")) ctx.publish("extra", std::make_shared<caulk::Dataset>(*in));
  }
};

class OptionalIn : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("test.optional_in", "Say whether an optional dataset input came");
    s.input_optional("in", "Dataset", "a dataset, or nothing");
    return s;
  }
  void run(caulk::NodeContext& ctx) override { ctx.summary()["got_input"] = ctx.has_input("in"); }
};

}  // namespace

CAULK_PLUGIN("test_nodes", "1.0", "Node types for the engine's tests") {
  registrar.add_node<Pass>();
  registrar.add_node<PassUncached>();
  registrar.add_node<FailUnits>();
  registrar.add_node<FigureBars>();
  registrar.add_node<MaybeExtra>();
  registrar.add_node<OptionalIn>();
}
