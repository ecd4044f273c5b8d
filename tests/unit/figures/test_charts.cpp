// The chart builders nodes publish Figures with (caulk/figures/charts.hpp): each spec valid
// Vega-Lite holding the numbers it was given, worked out by hand here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "caulk/error.hpp"
#include "caulk/figures/charts.hpp"
#include "caulk/figures/summaries.hpp"
#include "reports/report_test_support.hpp"

using namespace caulk;
using namespace caulk::figures;
using caulk::report::testing::expect_valid_vega_lite;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {
std::vector<std::string> labels(const Json& values) {
  std::vector<std::string> out;
  for (const auto& v : values) out.push_back(v["label"]);
  return out;
}
}  // namespace

TEST(FigureCharts, BarsAreDrawnBestFirstAndNonFiniteValuesLeftOut) {
  const Json higher = bar_chart({"h", "", ""}, "model", "score", {{"m1", 3.0}, {"m2", 1.0}, {"m3", 2.0}, {"nan", std::nan("")}});
  expect_valid_vega_lite(higher);
  EXPECT_THAT(labels(higher["data"]["values"]), ElementsAre("m1", "m3", "m2"));
  const Json lower = bar_chart({"l", "", ""}, "model", "score", {{"m1", -1.0}, {"m2", -3.0}, {"m3", -2.0}}, true);
  EXPECT_THAT(labels(lower["data"]["values"]), ElementsAre("m2", "m3", "m1"));
}

// Labels of many close points printed over each other: only the points with the largest y carry
// a text label; every point stays in the points layer, its name in the tooltip.
TEST(FigureCharts, AScatterLabelsOnlyItsTopPointsAndKeepsEveryPoint) {
  std::vector<LabelledPoint> points;
  for (int i = 0; i < 12; ++i) points.push_back({"model-" + std::to_string(i), double(i % 5), double(i) / 10});
  points.push_back({"not finite", std::nan(""), 1.0});
  const Json spec = scatter_chart({"s", "", ""}, "score", "accuracy", points, 3);
  expect_valid_vega_lite(spec);
  ASSERT_EQ(spec["layer"].size(), 2u);
  EXPECT_EQ(spec["layer"][0]["data"]["values"].size(), 12u);
  EXPECT_EQ(spec["layer"][0]["encoding"]["tooltip"][0]["field"], "label");
  EXPECT_THAT(labels(spec["layer"][1]["data"]["values"]), ElementsAre("model-9", "model-10", "model-11"));
  // Few points: every one is labelled.
  const Json few = scatter_chart({"s", "", ""}, "x", "y", {{"a", 1, 2}, {"b", 2, 1}});
  EXPECT_EQ(few["layer"][1]["data"]["values"].size(), 2u);
}

TEST(FigureCharts, LearningCurvesDrawTheMeasuredPointsAndTheFittedPowerLaws) {
  std::vector<SeriesPoint> measured;
  for (int n : {10, 100, 1000})
    for (int seed : {0, 1}) measured.push_back({"strong", double(n), 0.1 + 1.0 / n + 0.01 * seed});
  const Json spec = learning_curve_chart({"curves", "", ""}, "test error on split 'test'", measured, {{"strong", 2.0, 0.5, 0.1}}, 0.3);
  expect_valid_vega_lite(spec);
  const Json& layers = spec["layer"];
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0]["data"]["values"].size(), 6u);
  EXPECT_EQ(layers[0]["encoding"]["x"]["scale"]["type"], "log");
  // The fitted line, sampled from n = 10 to 1000, is a n^-b + c at every sample.
  const Json& fitted = layers[1]["data"]["values"];
  ASSERT_GE(fitted.size(), 10u);
  EXPECT_NEAR(fitted.front()["x"].get<double>(), 10.0, 1e-9);
  EXPECT_NEAR(fitted.back()["x"].get<double>(), 1000.0, 1e-9);
  for (const auto& v : fitted) EXPECT_NEAR(v["y"].get<double>(), 2.0 / std::sqrt(v["x"].get<double>()) + 0.1, 1e-12);
  EXPECT_EQ(layers[2]["data"]["values"][0]["y"], 0.3);
  EXPECT_THAT(layers[0]["encoding"]["y"]["title"].get<std::string>(), HasSubstr("test error on split 'test'"));
}

TEST(FigureCharts, ALineChartMarksTheHighlightedPoints) {
  LineChartOptions o;
  o.x_title = "weight of a";
  o.y_title = "accuracy";
  o.highlighted = {{"lambda = 1", 0.5, 0.75}};
  const Json spec = line_chart({"search", "", ""}, o, {{"lambda = 1", 0.2, 0.7}, {"lambda = 1", 0.5, 0.75}, {"lambda = 2", 0.5, 0.65}});
  expect_valid_vega_lite(spec);
  ASSERT_EQ(spec["layer"].size(), 3u);
  EXPECT_EQ(spec["layer"][2]["data"]["values"], Json::parse(R"([{"series": "lambda = 1", "x": 0.5, "y": 0.75, "note": "chosen"}])"));
}

TEST(FigureCharts, ConcatenatedChartsKeepTheirOwnDataUnderOneSchema) {
  const Json a = bar_chart({"a", "", ""}, "m", "v", {{"x", 1.0}}), b = scatter_chart({"b", "", ""}, "x", "y", {{"p", 1, 2}, {"q", 2, 3}});
  const Json spec = concat_charts({"both", "", ""}, {a, b}, 2);
  expect_valid_vega_lite(spec);
  ASSERT_EQ(spec["concat"].size(), 2u);
  EXPECT_FALSE(spec["concat"][0].contains("$schema"));
  EXPECT_EQ(spec["concat"][1]["layer"][0]["data"], b["layer"][0]["data"]);
  EXPECT_EQ(spec["columns"], 2);
}

TEST(FigureCharts, AFigureIsTitledByItsSpec) {
  const auto f = make_figure(bar_chart({"Scores of r", "", ""}, "m", "v", {{"x", 1.0}}), "One line.");
  EXPECT_EQ(f->type_name(), "Figure");
  EXPECT_EQ(f->title, "Scores of r");
  EXPECT_EQ(f->caption, "One line.");
  EXPECT_EQ(f->spec["data"]["values"][0]["label"], "x");
  EXPECT_TRUE(f->images.empty());
}

// ------------------------------------------------------------------------------ binning

TEST(FigureCharts, WeightsAreAveragedOverEqualWidthBins) {
  CovariateWeights d;
  d.models = {"a", "b"};
  d.covariate_names = {"z0"};
  d.covariates = {{0.0}, {0.1}, {0.9}, {1.0}, {0.5}};
  d.weights = {{1.0, 0.0}, {0.5, 0.5}, {0.0, 1.0}, {0.2, 0.8}, {0.4, 0.6}};
  const auto cells = bin_weights(d, 2);
  // Bins [0, 0.5) and [0.5, 1]; 0.5 falls in the second.
  ASSERT_EQ(cells.size(), 4u);
  EXPECT_EQ(cells[0].model, 0u);
  EXPECT_DOUBLE_EQ(cells[0].mean_weight, 0.75);
  EXPECT_DOUBLE_EQ(cells[0].x_lo, 0.0);
  EXPECT_DOUBLE_EQ(cells[0].x_hi, 0.5);
  EXPECT_EQ(cells[0].rows, 2u);
  EXPECT_DOUBLE_EQ(cells[1].mean_weight, (0.0 + 0.2 + 0.4) / 3);
  EXPECT_DOUBLE_EQ(cells[2].mean_weight, 0.25);
  EXPECT_DOUBLE_EQ(cells[3].mean_weight, (1.0 + 0.8 + 0.6) / 3);
  d.weights.pop_back();
  EXPECT_THROW(bin_weights(d, 2), Error);
}

TEST(FigureCharts, OneCovariateGivesALinePerModelWithinTheUnitInterval) {
  CovariateWeights d;
  d.models = {"a", "b"};
  d.covariate_names = {"z0"};
  for (int i = 0; i < 10; ++i) {
    d.covariates.push_back({double(i)});
    d.weights.push_back({i / 9.0, 1 - i / 9.0});
  }
  Json spec = covariate_weights_chart({"w", "", ""}, d, 5);
  expect_valid_vega_lite(spec);
  EXPECT_EQ(spec["layer"][0]["data"]["values"].size(), 10u);
  EXPECT_EQ(spec["layer"][0]["encoding"]["y"]["scale"]["domain"], Json::parse("[0, 1]"));
}

TEST(FigureCharts, TwoCovariatesGiveAHeatMapPerModel) {
  CovariateWeights d;
  d.models = {"a", "b"};
  d.covariate_names = {"z0", "z1"};
  for (int i = 0; i < 40; ++i) {
    d.covariates.push_back({i / 39.0, (i % 7) / 6.0});
    d.weights.push_back({i / 39.0, 1 - i / 39.0});
  }
  const Json spec = covariate_weights_chart({"w", "", ""}, d);
  expect_valid_vega_lite(spec);
  EXPECT_TRUE(spec.contains("facet"));
  EXPECT_EQ(spec["spec"]["mark"]["type"], "rect");
}

// ------------------------------------------------------------------------------ summaries

TEST(FigureSummaries, TheDatasetTableCountsRowsAndClassesPerSplit) {
  Dataset d;
  d.class_names = {"0", "1", "2"};
  DatasetSplit train;
  train.name = "train";
  train.rows = 4;
  train.classes = {0, 2, 2, 0};
  DatasetSplit test;
  test.name = "test";
  test.rows = 3;
  test.classes = {0, 1, 2};
  d.splits = {train, test};
  const Table t = dataset_summary_table(d);
  EXPECT_EQ(t.title, "Dataset: classification, 3 classes");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0], (std::vector<TableCell>{std::string("train"), 4LL, 2LL, TableCell{}, TableCell{}}));
  EXPECT_EQ(t.rows[1], (std::vector<TableCell>{std::string("test"), 3LL, 3LL, TableCell{}, TableCell{}}));
}

TEST(FigureSummaries, TheHubTableGivesEachModelsFeatureSizes) {
  Matrix a = Matrix::Zero(5, 3), p = Matrix::Zero(5, 10);
  Embeddings hub;
  hub.hub = "demo";
  ModelEmbedding m;
  m.name = "alpha";
  m.features["train"] = ArrayFile{{}, MatrixView::borrow(a)};
  m.source_probs["train"] = ArrayFile{{}, MatrixView::borrow(p)};
  hub.models.push_back(m);
  const Table t = hub_summary_table(hub);
  EXPECT_EQ(t.title, "Hub 'demo': 1 model(s), feature sizes per split");
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0], (std::vector<TableCell>{std::string("alpha"), std::string("train"), 5LL, 3LL, 10LL}));
}
