// A node whose units are distributable (caulk/units.hpp), for the engine's tests of distributed
// runs: units that take a chosen time, fail on a chosen rank, and write a file each (atomically,
// from the rank that ran them), so a test can throw on rank 2 or kill a worker mid-unit.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/plugin.hpp"
#include "caulk/units.hpp"

namespace {

using caulk::Json;

class SlowUnits : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("test.slow_units", "Distributable units that sleep, may fail on one rank, and write a file each");
    s.input_optional("after", "Table", "runs after this node (to build chains)");
    s.input_optional("data", "Dataset", "when given, each unit also reports the rows of its train split (as its rank sees them)");
    s.output("table", "Table", "unit and value (i * i), in unit order");
    s.param(caulk::ParamSpec::integer("units", 6, "how many units").range(0, 1000));
    s.param(caulk::ParamSpec::integer("sleep_ms", 0, "how long each unit takes").range(0, 600000));
    s.param(caulk::ParamSpec::integer("fail_on_rank", -1, "units run on this rank throw (-1: none)").range(-1, 64));
    return s;
  }
  // Unit i: waits sleep_ms, fails when it runs on rank fail_on_rank, writes DIR/u<i>.txt and
  // returns i * i. Before waiting it leaves DIR/started.u<i>.rank<R>.pid<P> so a test knows who
  // holds it. The parameters come from the node's Params (the engine sends them), the rest from
  // the payload.
  static Json run_unit(caulk::UnitContext& ctx, const Json& payload) {
    const auto i = payload.at("index").get<int>();
    const std::filesystem::path dir = payload.at("dir").get<std::string>();
    const int rank = ctx.rank();
    std::ofstream(dir / fmt::format("started.u{}.rank{}.pid{}", i, rank, ::getpid())) << "started\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(ctx.params().integer("sleep_ms")));
    if (rank == ctx.params().integer("fail_on_rank")) throw caulk::Error(fmt::format("this unit was told to fail on rank {}", rank));
    caulk::io::AtomicFile f(dir / fmt::format("u{}.txt", i));
    f.write(fmt::format("unit {} complete\n", i));
    f.commit();
    Json result{{"value", i * i}};
    if (ctx.has_dataset("data")) result["rows"] = ctx.dataset("data")->split("train").rows;
    return result;
  }

  void run(caulk::NodeContext& ctx) override {
    const auto& p = ctx.params();
    const std::filesystem::path dir = ctx.out_dir() / ctx.id();
    std::filesystem::create_directories(dir);
    std::vector<std::string> names;
    std::vector<Json> payloads;
    for (int i = 0; i < p.integer("units"); ++i) {
      names.push_back(fmt::format("u{}", i));
      payloads.push_back(Json{{"index", i}, {"dir", dir.string()}});
    }
    const std::vector<Json> results = ctx.run_units("model", names, payloads);
    auto table = std::make_shared<caulk::Table>();
    table->title = "units";
    table->columns = {"unit", "value"};
    Json values = Json::array();
    for (std::size_t i = 0; i < results.size(); ++i) {
      table->rows.push_back({names[i], results[i].at("value").get<long long>()});
      values.push_back(results[i].at("value"));
    }
    ctx.summary()["values"] = values;
    if (ctx.has_input("data")) {
      Json rows = Json::array();
      for (const auto& r : results) rows.push_back(r.at("rows"));
      ctx.summary()["rows"] = rows;
    }
    ctx.publish("table", std::move(table));
  }
};

}  // namespace

CAULK_PLUGIN("test_units", "1.0", "Distributable units for the engine's tests") { registrar.add_node<SlowUnits>(); }
