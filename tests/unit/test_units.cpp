// Distributable units (caulk/units.hpp): descriptions and results survive the wire exactly, a
// node's run_unit is found by add_node<N> alone, the local dispatcher keeps index order, names
// every failing unit and hands units the node's own objects, and a batch rebuilt on another rank
// from its header gives the same results.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>

#include "caulk/context.hpp"
#include "caulk/registry.hpp"
#include "caulk/units.hpp"
#include "cli.hpp"

using namespace caulk;
using ::testing::HasSubstr;

namespace {

// What a description goes through between ranks.
Json over_the_wire(const Json& j) { return Json::from_cbor(Json::to_cbor(j)); }

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(UnitDescriptions, MatricesKeepEveryBitIncludingNonFiniteValues) {
  Matrix m(2, 3);
  m << 0.1, -0.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), 1e-310, -1.0 / 3.0;
  const Matrix back = matrix_from_json(over_the_wire(matrix_to_json(m)));
  ASSERT_EQ(back.rows(), 2);
  ASSERT_EQ(back.cols(), 3);
  for (Eigen::Index i = 0; i < m.size(); ++i) EXPECT_TRUE(same_bits(m.data()[i], back.data()[i])) << i;
  // A matrix whose bytes do not match its shape is refused, not read past its end.
  Json bad = matrix_to_json(m);
  bad["rows"] = 3;
  EXPECT_THROW(matrix_from_json(bad), Error);
}

TEST(UnitDescriptions, ParamsKeepTheirKindsAndOrder) {
  Value::Table table{{"zeta", Value(1)}, {"alpha", Value(2.5)}};
  Params p("n", {{"count", Value(std::int64_t{3})},
                 {"rate", Value(3.0)},
                 {"name", Value("x")},
                 {"flag", Value(true)},
                 {"list", Value(Value::Array{Value(1), Value("two")})},
                 {"table", Value(table)}});
  const Params back = params_from_json("n", over_the_wire(params_to_json(p)));
  EXPECT_EQ(back.integer("count"), 3);
  EXPECT_TRUE(back.get("count").is_int());
  EXPECT_TRUE(back.get("rate").is_float()) << "3.0 must stay a float, not become the integer 3";
  EXPECT_EQ(back.real("rate"), 3.0);
  EXPECT_EQ(back.string("name"), "x");
  EXPECT_TRUE(back.flag("flag"));
  EXPECT_EQ(back.get("list"), p.get("list"));
  ASSERT_EQ(back.get("table").as_table().size(), 2u);
  EXPECT_EQ(back.get("table").as_table()[0].first, "zeta");
  EXPECT_EQ(back.get("table"), p.get("table"));
}

TEST(UnitDescriptions, DatasetKeepsOnlyTheNamedSplitWithItsLabels) {
  Dataset d;
  d.kind = TaskKind::Classification;
  d.class_names = {"cat", "dog", "eel"};
  DatasetSplit train, test;
  train.name = "train";
  train.rows = 4;
  train.classes = {2, 0, 1, 2};
  train.labels_file = "/data/train.npy";
  train.inputs = ArrayFile{"/data/x.npy", {}};
  test.name = "test";
  test.rows = 1;
  test.classes = {1};
  d.splits = {train, test};
  auto back = dataset_from_json(over_the_wire(dataset_to_json(d, "train")));
  EXPECT_EQ(back->kind, TaskKind::Classification);
  EXPECT_EQ(back->class_names, d.class_names);
  ASSERT_EQ(back->splits.size(), 1u);
  EXPECT_EQ(back->split("train").classes, train.classes);
  EXPECT_EQ(back->split("train").rows, 4u);
  EXPECT_EQ(back->split("train").labels_file, train.labels_file);
  ASSERT_TRUE(back->split("train").inputs.has_value());
  EXPECT_EQ(back->split("train").inputs->path, "/data/x.npy");
  EXPECT_THROW(back->split("test"), Error);

  Dataset r;
  r.kind = TaskKind::Regression;
  DatasetSplit s;
  s.name = "train";
  s.rows = 2;
  s.targets = Matrix::Constant(2, 2, 0.25);
  s.targets(1, 0) = -7.5;
  r.splits = {s};
  auto rb = dataset_from_json(over_the_wire(dataset_to_json(r)));
  EXPECT_EQ(rb->kind, TaskKind::Regression);
  EXPECT_EQ(rb->split("train").targets, s.targets);
}

TEST(UnitDescriptions, ModelFilesTravelAsPathsAndInMemoryArraysAsTheirValues) {
  auto values = std::make_shared<RowMatrixF>(2, 2);
  *values << 1.5f, -2.0f, 3.25f, 4.0f;
  ModelEmbedding m;
  m.name = "alpha";
  m.checkpoint = "/hub/alpha.safetensors";
  m.features["train"] = ArrayFile{"/hub/alpha.train.npy", {}};
  m.features["test"] = ArrayFile{"/hub/alpha.test.npy", {}};
  m.source_probs["train"] = ArrayFile{{}, MatrixView::of(values)};
  const ModelEmbedding back = model_embedding_from_json(over_the_wire(model_embedding_to_json(m, "train")));
  EXPECT_EQ(back.name, "alpha");
  EXPECT_EQ(back.checkpoint, m.checkpoint);
  EXPECT_EQ(back.features.size(), 1u) << "only the split the unit needs";
  EXPECT_EQ(back.features.at("train").path, "/hub/alpha.train.npy");
  const ArrayFile& probs = back.source_probs.at("train");
  ASSERT_TRUE(probs.in_memory());
  EXPECT_EQ(probs.memory.scalar_type(), ScalarType::F32);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) EXPECT_EQ(probs.memory(i, j), static_cast<double>((*values)(i, j)));
}

// ------------------------------------------------------------------ a node's own units

// A node defined here, made distributable by its run_unit alone (no other registration): unit i
// squares payload x, offset by the node's parameter and by the row count of its Dataset's split.
// It also records what its context gave it, so the test can check the unit saw the node's own
// objects in this process.
struct Seen {
  const Params* params = nullptr;
  const Dataset* data = nullptr;
  std::string node_id, type;
};
Seen g_seen;
std::mutex g_seen_mutex;

class SquareNode : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("test.square", "squares its units' x, plus offset and the rows of the data");
    s.input("data", "Dataset", "rows to add");
    s.output("table", "Table", "unused");
    s.param(ParamSpec::integer("offset", 0, "added to each square"));
    return s;
  }
  static Json run_unit(UnitContext& ctx, const Json& payload) {
    {
      std::lock_guard lock(g_seen_mutex);
      g_seen = {&ctx.params(), ctx.dataset("data").get(), ctx.node_id(), ctx.type()};
    }
    const int x = payload.at("x").get<int>();
    if (x % 3 == 2) throw Error("x = " + std::to_string(x) + " is refused");
    const auto rows = static_cast<std::int64_t>(ctx.input<Dataset>("data")->split("train").rows);
    return Json{{"square", x * x + ctx.params().integer("offset") + rows}};
  }
  void run(NodeContext&) override {}
};

// A node without run_unit: add_node<N> leaves it local.
class LocalOnlyNode : public SquareNode {
 public:
  static NodeSpec spec() {
    NodeSpec s = SquareNode::spec();
    s.type = "test.local_only";
    return s;
  }
};

struct SquareFixture {
  SquareFixture() {
    PluginRegistrar registrar(registry, info, nullptr);
    registrar.add_node<SquareNode>();
    registrar.add_node<LocalOnlyNode>();
    auto d = std::make_shared<Dataset>();
    DatasetSplit s;
    s.name = "train";
    s.rows = 100;
    s.classes.assign(100, 0);
    d->class_names = {"only"};
    d->splits = {s};
    data = d;
  }
  NodeContext context(const std::string& type = "test.square") const {
    return NodeContext("sq", type, params, {{"data", {data}}}, nullptr, registry.find_node(type));
  }
  Registry registry;
  PluginInfo info;
  Params params{"sq", {{"offset", Value(std::int64_t{7})}}};
  std::shared_ptr<const Dataset> data;
};

TEST(NodeUnits, AddNodeFindsRunUnitWithNoOtherRegistration) {
  SquareFixture f;
  ASSERT_NE(f.registry.find_node("test.square"), nullptr);
  EXPECT_EQ(f.registry.find_node("test.square")->run_unit, &SquareNode::run_unit);
  EXPECT_EQ(f.registry.find_node("test.local_only")->run_unit, &SquareNode::run_unit)
      << "a derived class inherits its base's run_unit (the rankers rely on it)";
}

TEST(NodeUnits, ResultsComeBackInUnitOrderAndUnitsSeeTheNodesOwnObjects) {
  SquareFixture f;
  const NodeContext ctx = f.context();
  std::vector<Json> d;
  std::vector<std::string> names;
  for (int x : {0, 3, 1, 4, 6}) {
    d.push_back(Json{{"x", x}});
    names.push_back("m" + std::to_string(x));
  }
  const auto results = ctx.run_units("model", names, d);
  ASSERT_EQ(results.size(), 5u);
  const int expected[] = {0, 9, 1, 16, 36};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(results[i].at("square"), expected[i] + 7 + 100);
  EXPECT_EQ(g_seen.params, &f.params) << "in one process a unit gets the node's own Params object";
  EXPECT_EQ(g_seen.data, f.data.get()) << "in one process a unit gets the node's own Dataset";
  EXPECT_EQ(g_seen.node_id, "sq");
  EXPECT_EQ(g_seen.type, "test.square");
}

TEST(NodeUnits, EveryFailingUnitIsNamedWithoutARankInOneProcess) {
  SquareFixture f;
  const NodeContext ctx = f.context();
  std::vector<Json> d;
  std::vector<std::string> names;
  for (int x = 0; x < 6; ++x) {
    d.push_back(Json{{"x", x}});
    names.push_back("m" + std::to_string(x));
  }
  try {
    ctx.run_units("model", names, d);
    FAIL() << "units 2 and 5 fail";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_THAT(what, HasSubstr("2 of 6 models failed"));
    EXPECT_THAT(what, HasSubstr("model 'm2': x = 2 is refused"));
    EXPECT_THAT(what, HasSubstr("model 'm5': x = 5 is refused"));
    EXPECT_THAT(what, ::testing::Not(HasSubstr("rank")));
  }
  EXPECT_THROW(ctx.run_units("model", {"only one name"}, d), Error);
}

TEST(NodeUnits, ANodeTypeWithoutRunUnitIsRefusedWithTheReason) {
  Params params;
  NodeContext bare("n", "t", params, {}, nullptr);
  try {
    bare.run_units("model", {"a"}, {Json{{"x", 1}}});
    FAIL() << "no node type, no run_unit";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("node 'n' (t) calls run_units but its type declares no run_unit"));
  }
}

// What another rank does with a batch: rebuilds the shared data from the engine's header (sent
// once per batch), then runs each unit from its payload alone, with the same results.
TEST(NodeUnits, ABatchRebuiltFromItsHeaderGivesTheSameResults) {
  SquareFixture f;
  const NodeType* type = f.registry.find_node("test.square");
  UnitBatch batch;
  batch.node_type = type;
  batch.node_id = "sq";
  batch.params = &f.params;
  batch.datasets = {{"data", f.data}};
  batch.memory_limit = 12345;
  const auto remote = unit_batch_from_header(over_the_wire(unit_batch_header(batch)), type);
  EXPECT_EQ(remote->batch.node_id, "sq");
  EXPECT_EQ(remote->batch.memory_limit, 12345u);
  EXPECT_EQ(remote->params.integer("offset"), 7);
  EXPECT_NE(remote->batch.params, &f.params) << "another rank has its own copy";
  ASSERT_EQ(remote->batch.datasets.size(), 1u);
  EXPECT_EQ(remote->batch.datasets[0].second->split("train").rows, 100u);
  for (int x : {0, 4, 5}) {
    const UnitOutcome here = run_unit_caught(batch, Json{{"x", x}}, 0);
    const UnitOutcome there = run_unit_caught(remote->batch, Json{{"x", x}}, 1);
    EXPECT_EQ(here.result, there.result) << x;
    EXPECT_EQ(here.error, there.error) << x;
    EXPECT_EQ(there.rank, 1);
  }
  EXPECT_EQ(run_unit_caught(remote->batch, Json{{"x", 4}}, 1).result.at("square"), 16 + 7 + 100);
  EXPECT_EQ(g_seen.params, &remote->params);
  // A unit of a batch whose type has no run_unit fails with the reason, it does not crash.
  batch.node_type = f.registry.find_node("test.local_only");
  NodeType no_unit = *batch.node_type;
  no_unit.run_unit = nullptr;
  batch.node_type = &no_unit;
  EXPECT_THAT(run_unit_caught(batch, Json{{"x", 1}}, 0).error, HasSubstr("declares no run_unit"));
}

TEST(NodeUnits, TheTestPluginsNodeIsDistributableByItsRunUnitAlone) {
  Registry loaded;
  ASSERT_TRUE(loaded.load_plugin(caulk::testing::test_plugin("test_units")));
  ASSERT_NE(loaded.find_node("test.slow_units"), nullptr);
  EXPECT_NE(loaded.find_node("test.slow_units")->run_unit, nullptr);
}

}  // namespace
