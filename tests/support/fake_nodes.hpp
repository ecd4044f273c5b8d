// In-process node types for engine tests (no plugin needed).
#pragma once
#include <atomic>
#include <cmath>
#include <fstream>
#include <sstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/parallel.hpp"
#include "caulk/registry.hpp"
#include "caulk/run_observer.hpp"

namespace caulk::testing {

// Emits a Dataset with `rows` rows; fails when param fail = true.
class FakeSource : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("test.source", "Emit a dataset");
    s.output("data", "Dataset", "a dataset");
    s.param(ParamSpec::integer("rows", 3, "rows").range(1, 100));
    s.param(ParamSpec::flag("fail", false, "fail when running"));
    s.param(ParamSpec::path("file", "a file").optional());
    return s;
  }
  void run(NodeContext& ctx) override {
    if (ctx.params().flag("fail")) throw Error("asked to fail");
    auto d = std::make_shared<Dataset>();
    DatasetSplit s;
    s.name = "train";
    s.rows = static_cast<std::size_t>(ctx.params().integer("rows"));
    d->splits.push_back(s);
    ctx.summary()["rows"] = s.rows;
    ctx.publish("data", d);
  }
};

class FakeEmbed : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("test.embed", "Emit embeddings");
    s.output("features", "Embeddings", "features");
    s.param(ParamSpec::choice("kind", "a", {"alpha", "beta", "a"}, "a choice"));
    return s;
  }
  void run(NodeContext& ctx) override { ctx.publish("features", std::make_shared<Embeddings>()); }
};

class FakeRank : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("test.rank", "Score models");
    s.input("features", "Embeddings", "features");
    s.input("data", "Dataset", "data");
    s.output("scores", "Scores", "scores");
    s.param(ParamSpec::integer("max_iter", 11, "iterations").range(1, 100));
    s.param(ParamSpec::real("eps", 1e-3, "tolerance").range(0, 1));
    s.param(ParamSpec::string("label", "x", "free text"));
    return s;
  }
  void run(NodeContext& ctx) override {
    auto scores = std::make_shared<Scores>();
    auto data = ctx.input<Dataset>("data");
    scores->scores.push_back({"m", static_cast<double>(data->splits.front().rows) * ctx.params().real("eps"), 0});
    ctx.summary()["score"] = scores->scores.front().score;
    ctx.publish("scores", scores);
  }
};

class FakeCollect : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("test.collect", "Collect scores");
    s.inputs_many("scores", "Scores", "several scores");
    s.input_optional("extra", "Dataset", "optional");
    s.output("table", "Table", "a table");
    return s;
  }
  void run(NodeContext& ctx) override {
    ctx.summary()["inputs"] = ctx.inputs<Scores>("scores").size();
    auto table = std::make_shared<Table>();
    table->title = "collected";
    table->columns = {"name", "count", "value", "empty"};
    table->rows.push_back({std::string("scores"), static_cast<long long>(ctx.inputs<Scores>("scores").size()), 0.5, TableCell{}});
    table->rows.push_back({std::string("nan"), 0LL, std::nan(""), std::string("")});
    ctx.publish("table", table);
  }
};

// Declares an output it never publishes.
class FakeForgetful : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("test.forgetful", "Forgets its output");
    s.input("data", "Dataset", "data");
    s.output("table", "Table", "never published");
    return s;
  }
  void run(NodeContext&) override {}
};

// A node as a third-party plugin would write it: publishes a Figure (a hand-written Vega-Lite spec,
// no caulk chart builder) and a Table, so tests see them in run.json and drawn in report.html.
class FakeFigure : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("test.figure", "Publish a chart and a table");
    s.input("data", "Dataset", "data");
    s.output("chart", "Figure", "rows of the data as one bar");
    s.output("numbers", "Table", "the same number");
    return s;
  }
  void run(NodeContext& ctx) override {
    const double rows = static_cast<double>(ctx.input<Dataset>("data")->splits.front().rows);
    auto figure = std::make_shared<Figure>();
    figure->title = "Rows of the data";
    figure->caption = "One bar: how many rows the source emitted.";
    figure->spec = Json{{"$schema", "https://vega.github.io/schema/vega-lite/v6.json"},
                        {"title", {{"text", "Rows of the data (third-party chart)"}}},
                        {"description", "One bar"},
                        {"data", {{"values", Json::array({Json{{"what", "rows"}, {"value", rows}}})}}},
                        {"mark", "bar"},
                        {"encoding",
                         {{"x", {{"field", "value"}, {"type", "quantitative"}, {"title", "rows (count)"}}},
                          {"y", {{"field", "what"}, {"type", "nominal"}, {"title", "what"}}}}}};
    ctx.publish("chart", figure);
    auto table = std::make_shared<Table>();
    table->title = "Rows";
    table->columns = {"what", "value"};
    table->rows.push_back({std::string("rows"), rows});
    ctx.publish("numbers", table);
  }
};

// A run observer that writes what it was shown into OUT/observed.json: each hook in order, the
// run's status in memory, and run.json's statuses as it read them when the run had finished.
class FakeObserver : public RunObserver {
 public:
  static NodeSpec spec() {
    NodeSpec s("test.observer", "Write what the run's hooks showed into OUT/observed.json");
    s.param(ParamSpec::flag("fail", false, "fail when the run finishes"));
    s.param(ParamSpec::string("file", "observed.json", "the file it writes, in the run's folder"));
    return s;
  }
  void run_started(const RunReport& r, ObserverContext&) override { events_.push_back("run " + std::to_string(r.nodes.size())); }
  void node_started(const RunReport& r, std::size_t i, ObserverContext&) override { events_.push_back("start " + r.nodes[i].id); }
  void node_finished(const RunReport& r, std::size_t i, ObserverContext&) override {
    events_.push_back("end " + r.nodes[i].id + " " + std::string(to_string(r.nodes[i].status)));
  }
  void run_finished(const RunReport& r, ObserverContext& ctx) override {
    if (ctx.params().flag("fail")) throw Error("the observer failed");
    std::ifstream in(ctx.out_dir() / "run.json");
    std::stringstream text;
    text << in.rdbuf();
    const Json seen = Json::parse(text.str());
    Json statuses = Json::object();
    for (const auto& [id, node] : seen["nodes"].items()) statuses[id] = node["status"];
    Json out = Json::object();
    out["events"] = events_;
    out["status"] = to_string(r.status());
    out["saw_status"] = seen["status"];
    out["saw"] = statuses;
    io::write_file_atomic(ctx.out_dir() / ctx.params().string("file"), out.dump());
  }

 private:
  std::vector<std::string> events_;
};

// Reads a parameter its spec does not declare, keeping a default of its own: the bug a node's
// Params refuses (issue 19: one definition per parameter and default).
class FakeUndeclaredReader : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("test.undeclared_reader", "Read a parameter the spec does not declare");
    s.output("table", "Table", "nothing");
    s.param(ParamSpec::integer("rows", 3, "declared"));
    return s;
  }
  void run(NodeContext& ctx) override {
    const auto& p = ctx.params();
    const double scale = p.has("scale") ? p.real("scale") : 1.0;  // "scale" is not in spec()
    ctx.summary()["scale"] = scale;
  }
};

// Says in its summary how wide the pool it runs on is (parallel_width) and how many test.width
// nodes have run on its thread so far, this one included (a new thread starts at 1).
class FakeWidth : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("test.width", "Say the width of the pool this node runs on");
    s.param(ParamSpec::integer("tag", 0, "makes two nodes differ").range(0, 100));
    return s;
  }
  void run(NodeContext& ctx) override {
    thread_local unsigned runs_on_this_thread = 0;
    (void)ctx.params().integer("tag");
    ctx.summary()["width"] = parallel_width();
    ctx.summary()["runs_on_this_thread"] = ++runs_on_this_thread;
  }
};

inline void register_fake_nodes(Registry& r) {
  PluginInfo info;
  info.name = "fake";
  info.status = PluginStatus::loaded;
  PluginRegistrar reg(r, info, nullptr);
  reg.add_node<FakeSource>();
  reg.add_node<FakeEmbed>();
  reg.add_node<FakeRank>();
  reg.add_node<FakeCollect>();
  reg.add_node<FakeForgetful>();
  reg.add_observer<FakeObserver>();
  reg.add_node<FakeUndeclaredReader>();
  reg.add_node<FakeFigure>();
  reg.add_node<FakeWidth>();
}

}  // namespace caulk::testing
