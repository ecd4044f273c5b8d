// Distributable units (caulk/units.hpp): descriptions and results survive the wire exactly, the
// local dispatcher keeps index order and names every failing unit, and plugins register unit
// functions by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

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

// ------------------------------------------------------------------ running units locally

Json square_or_fail(const Json& d) {
  const int x = d.at("x").get<int>();
  if (x % 3 == 2) throw Error("x = " + std::to_string(x) + " is refused");
  return Json{{"square", x * x}};
}
constexpr UnitKind kSquare{"test.square", &square_or_fail};

TEST(LocalUnits, ResultsComeBackInUnitOrder) {
  Params params;
  NodeContext ctx("n", "t", params, {}, nullptr);
  std::vector<Json> d;
  std::vector<std::string> names;
  for (int x : {0, 3, 1, 4, 6}) {
    d.push_back(Json{{"x", x}});
    names.push_back("m" + std::to_string(x));
  }
  const auto results = ctx.run_units("model", names, kSquare, d);
  ASSERT_EQ(results.size(), 5u);
  const int expected[] = {0, 9, 1, 16, 36};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(results[i].at("square"), expected[i]);
}

TEST(LocalUnits, EveryFailingUnitIsNamedWithoutARankInOneProcess) {
  Params params;
  NodeContext ctx("n", "t", params, {}, nullptr);
  std::vector<Json> d;
  std::vector<std::string> names;
  for (int x = 0; x < 6; ++x) {
    d.push_back(Json{{"x", x}});
    names.push_back("m" + std::to_string(x));
  }
  try {
    ctx.run_units("model", names, kSquare, d);
    FAIL() << "units 2 and 5 fail";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_THAT(what, HasSubstr("2 of 6 models failed"));
    EXPECT_THAT(what, HasSubstr("model 'm2': x = 2 is refused"));
    EXPECT_THAT(what, HasSubstr("model 'm5': x = 5 is refused"));
    EXPECT_THAT(what, ::testing::Not(HasSubstr("rank")));
  }
  EXPECT_THROW(ctx.run_units("model", {"only one name"}, kSquare, d), Error);
}

TEST(UnitFunctions, RegisteredByNameOnceAndFoundByPlugins) {
  Registry r;
  r.add_unit_function(kSquare, "here");
  EXPECT_EQ(r.find_unit_function("test.square"), &square_or_fail);
  EXPECT_EQ(r.find_unit_function("test.nothing"), nullptr);
  EXPECT_THROW(r.add_unit_function(kSquare, "there"), Error);

  Registry loaded;
  ASSERT_TRUE(loaded.load_plugin(caulk::testing::test_plugin("test_units")));
  EXPECT_NE(loaded.find_unit_function("test_units.slow"), nullptr);
  EXPECT_NE(loaded.find_node("test.slow_units"), nullptr);
}

}  // namespace
