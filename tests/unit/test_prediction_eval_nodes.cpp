// eval.classification and eval.regression run in a real pipeline: the evaluators plugin is loaded
// from the build tree as the CLI loads it, and in-process test nodes publish the Dataset and
// Predictions artifacts each test prepares (no bundled node produces Predictions yet). Checked:
// the run.json summary of every model of every input, the table on stdout, and the errors for
// the wrong kind of predictions or dataset, duplicate model names, a missing split and a row count
// that does not match the dataset.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/executor.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/registry.hpp"
#include "temp_dir.hpp"

using namespace caulk;
using ::testing::HasSubstr;

namespace {

// Publishes a copy of the artifact the test stored under this node's id (a fresh copy, since the
// engine stamps the producer on what is published).
template <class T>
class Prepared : public Node {
 public:
  Prepared(const std::map<std::string, std::shared_ptr<const Artifact>>* store, std::string port) : store_(store), port_(std::move(port)) {}
  void run(NodeContext& ctx) override {
    const auto& stored = dynamic_cast<const T&>(*store_->at(ctx.id()));
    ctx.publish(port_, std::make_shared<T>(stored));
  }

 private:
  const std::map<std::string, std::shared_ptr<const Artifact>>* store_;
  std::string port_;
};

Matrix rows(std::initializer_list<std::initializer_list<double>> values) {
  Matrix m(static_cast<Eigen::Index>(values.size()), static_cast<Eigen::Index>(values.begin()->size()));
  Eigen::Index i = 0;
  for (const auto& row : values) {
    Eigen::Index j = 0;
    for (double v : row) m(i, j++) = v;
    ++i;
  }
  return m;
}

// The four-sample, three-class case of test_prediction_metrics.cpp, worked out there by hand:
// accuracy 1/2, log loss 0.7469410259762036, ECE 1/4, macro-F1 4/9.
const Matrix kHandProbs = rows({{0.7, 0.2, 0.1}, {0.1, 0.6, 0.3}, {0.2, 0.2, 0.6}, {0.5, 0.4, 0.1}});
const std::vector<int> kHandLabels = {0, 2, 2, 1};
// One-hot on the true class: accuracy 1, log loss 0, ECE 0, macro-F1 1.
const Matrix kPerfectProbs = rows({{1, 0, 0}, {0, 0, 1}, {0, 0, 1}, {0, 1, 0}});

class PredictionEvalNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto plugin = Registry::bundled_plugin_dir() / "evaluators.so";
    ASSERT_TRUE(registry_.load_plugin(plugin)) << plugin << ": " << registry_.plugins().back().error << " (build the 'evaluators' target)";
    add_prepared<Dataset>("test.prepared_dataset", "data");
    add_prepared<Predictions>("test.prepared_predictions", "predictions");

    auto task = std::make_shared<Dataset>();
    task->kind = TaskKind::Classification;
    task->class_names = {"cat", "dog", "eel"};
    task->splits.push_back(classification_split("test", kHandLabels));
    task->splits.push_back(classification_split("valid", {0, 1}));
    store_["task"] = task;

    auto rtask = std::make_shared<Dataset>();
    rtask->kind = TaskKind::Regression;
    DatasetSplit s;
    s.name = "test";
    s.targets = rows({{0.5, 1}, {-1, 1}, {7, -6}});  // scikit-learn's multi-output r2_score example
    s.rows = 3;
    rtask->splits.push_back(s);
    store_["rtask"] = rtask;
  }

  static DatasetSplit classification_split(const std::string& name, const std::vector<int>& classes) {
    DatasetSplit s;
    s.name = name;
    s.classes = classes;
    s.rows = classes.size();
    return s;
  }

  template <class T>
  void add_prepared(const std::string& type, const std::string& port) {
    NodeSpec spec(type, "Publish an artifact the test prepared");
    spec.output(port, std::string(T::kType), "the prepared artifact");
    const auto* store = &store_;
    registry_.add_node_type(
        NodeType{spec, [store, port] { return std::unique_ptr<Node>(new Prepared<T>(store, port)); }, "test", nullptr, nullptr, nullptr});
  }

  // Stores Predictions under `id`: one model per (name, split -> matrix).
  void predictions(const std::string& id, TaskKind kind, std::vector<ModelPredictions> models) {
    auto p = std::make_shared<Predictions>();
    p->kind = kind;
    p->models = std::move(models);
    store_[id] = p;
  }

  // Runs a pipeline: `judge` of `type` fed by the prepared predictions `inputs` and dataset `data`.
  RunReport run(const std::string& type, const std::vector<std::string>& inputs, const std::string& data, const std::string& params = "") {
    std::string text = "[pipeline]\nname = \"prediction-evals\"\n";
    std::string list;
    for (const auto& id : inputs) {
      text += "[[node]]\nid = \"" + id + "\"\ntype = \"test.prepared_predictions\"\n";
      list += (list.empty() ? "\"" : ", \"") + id + "\"";
    }
    text += "[[node]]\nid = \"" + data + "\"\ntype = \"test.prepared_dataset\"\n";
    text += "[[node]]\nid = \"judge\"\ntype = \"" + type + "\"\ninputs = { predictions = [" + list + "], data = \"" + data + "\" }\n";
    if (!params.empty()) text += "params = { " + params + " }\n";
    Pipeline p = validate_pipeline(parse_pipeline_file(dir_.write("p.toml", text)), registry_);
    RunOptions o;
    o.out_dir = dir_ / "out";
    o.jobs = 2;
    o.out = &out_;
    o.err = &err_;
    return run_pipeline(p, o);
  }

  nlohmann::json run_json() { return nlohmann::json::parse(caulk::testing::read_file(dir_ / "out" / "run.json")); }

  static const NodeOutcome& judge(const RunReport& r) { return r.nodes.back(); }

  Registry registry_;  // first, so it is destroyed last
  std::map<std::string, std::shared_ptr<const Artifact>> store_;
  caulk::testing::TempDir dir_;
  std::ostringstream out_, err_;
};

TEST_F(PredictionEvalNodes, ClassificationSummaryHasEveryModelOfEveryInput) {
  predictions("p1", TaskKind::Classification, {{"hand", {{"test", kHandProbs}}}, {"perfect", {{"test", kPerfectProbs}}}});
  predictions("p2", TaskKind::Classification, {{"uniform", {{"test", Matrix::Constant(4, 3, 1.0 / 3)}}}});
  RunReport r = run("eval.classification", {"p1", "p2"}, "task", "digits = 3");
  ASSERT_TRUE(r.ok) << judge(r).error;

  const auto summary = run_json()["nodes"]["judge"]["summary"];
  ASSERT_EQ(summary.size(), 3u) << summary.dump();
  const auto& hand = summary["hand"];
  EXPECT_DOUBLE_EQ(hand["accuracy"].get<double>(), 0.5);
  EXPECT_NEAR(hand["log_loss"].get<double>(), 0.7469410259762036, 1e-15);
  EXPECT_NEAR(hand["ece"].get<double>(), 0.25, 1e-15);
  EXPECT_NEAR(hand["macro_f1"].get<double>(), 4.0 / 9, 1e-15);
  const auto& perfect = summary["perfect"];
  EXPECT_EQ(perfect["accuracy"].get<double>(), 1.0);
  EXPECT_EQ(perfect["log_loss"].get<double>(), 0.0);
  EXPECT_EQ(perfect["ece"].get<double>(), 0.0);
  EXPECT_EQ(perfect["macro_f1"].get<double>(), 1.0);
  // Uniform rows: every argmax is class 0 (lowest index on ties), right for row 0 only: accuracy
  // 1/4; log loss ln 3; all four confidences 1/3 in one bin: |1/4 - 1/3| = 1/12; F1 of class 0
  // = 2 / (2 + 3 + 0) = 2/5, classes 1 and 2 (true, never predicted) 0: macro-F1 2/15.
  const auto& uniform = summary["uniform"];
  EXPECT_DOUBLE_EQ(uniform["accuracy"].get<double>(), 0.25);
  EXPECT_NEAR(uniform["log_loss"].get<double>(), std::log(3.0), 1e-15);
  EXPECT_NEAR(uniform["ece"].get<double>(), 1.0 / 12, 1e-15);
  EXPECT_NEAR(uniform["macro_f1"].get<double>(), 2.0 / 15, 1e-15);

  // The table on stdout, with 3 significant digits (ln 3 = 1.0986 -> 1.1, 1/12 -> 0.0833).
  EXPECT_THAT(out_.str(), HasSubstr("Classification metrics on split 'test'\nmodel    accuracy  log_loss  ece     macro_f1\n"));
  EXPECT_THAT(out_.str(), HasSubstr("\nhand          0.5     0.747    0.25     0.444\n"));
  EXPECT_THAT(out_.str(), HasSubstr("\nuniform      0.25       1.1  0.0833     0.133\n"));
}

TEST_F(PredictionEvalNodes, RegressionSummaryHasEveryModel) {
  // scikit-learn's multi-output example (worked out in test_prediction_metrics.cpp): MSE 4.25/6,
  // MAE 0.75, R^2 = ((1 - 7.5/217) + (1 - 27/294)) / 2. And the exact predictions: 0, 0, 1.
  predictions("reg", TaskKind::Regression,
              {{"linear", {{"test", rows({{0, 2}, {-1, 2}, {8, -5}})}}}, {"oracle", {{"test", rows({{0.5, 1}, {-1, 1}, {7, -6}})}}}});
  RunReport r = run("eval.regression", {"reg"}, "rtask");
  ASSERT_TRUE(r.ok) << judge(r).error;
  const auto summary = run_json()["nodes"]["judge"]["summary"];
  ASSERT_EQ(summary.size(), 2u) << summary.dump();
  EXPECT_NEAR(summary["linear"]["mse"].get<double>(), 4.25 / 6, 1e-15);
  EXPECT_NEAR(summary["linear"]["mae"].get<double>(), 0.75, 1e-15);
  EXPECT_NEAR(summary["linear"]["r2"].get<double>(), ((1 - 7.5 / 217) + (1 - 27.0 / 294)) / 2, 1e-15);
  EXPECT_EQ(summary["oracle"]["mse"].get<double>(), 0.0);
  EXPECT_EQ(summary["oracle"]["mae"].get<double>(), 0.0);
  EXPECT_EQ(summary["oracle"]["r2"].get<double>(), 1.0);
  // The table on stdout, with the default 4 significant digits.
  EXPECT_THAT(out_.str(), HasSubstr("Regression metrics on split 'test'\nmodel   mse     mae   r2"));
  EXPECT_THAT(out_.str(), HasSubstr("\nlinear  0.7083  0.75  0.9368\n"));
}

TEST_F(PredictionEvalNodes, RegressionOnOneRowWritesNullRSquared) {
  auto one = std::make_shared<Dataset>();
  one->kind = TaskKind::Regression;
  DatasetSplit s;
  s.name = "test";
  s.targets = rows({{2.0}});
  s.rows = 1;
  one->splits.push_back(s);
  store_["one"] = one;
  predictions("reg", TaskKind::Regression, {{"m", {{"test", rows({{1.5}})}}}});
  RunReport r = run("eval.regression", {"reg"}, "one");
  ASSERT_TRUE(r.ok) << judge(r).error;
  const auto m = run_json()["nodes"]["judge"]["summary"]["m"];
  EXPECT_DOUBLE_EQ(m["mse"].get<double>(), 0.25);
  EXPECT_TRUE(m["r2"].is_null()) << m.dump();
}

TEST_F(PredictionEvalNodes, RegressionPredictionsIntoClassificationNameProducerAndModels) {
  predictions("reg", TaskKind::Regression, {{"linear", {{"test", Matrix::Zero(4, 3)}}}});
  RunReport r = run("eval.classification", {"reg"}, "task");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(judge(r).status, NodeStatus::Failed);
  EXPECT_THAT(judge(r).error, HasSubstr("'reg' produced regression predictions (models 'linear'), but eval.classification judges "
                                        "class probabilities; connect it to eval.regression"));
  EXPECT_EQ(run_json()["nodes"]["judge"]["status"], "failed");
}

TEST_F(PredictionEvalNodes, ClassificationPredictionsIntoRegressionAreRefused) {
  predictions("p1", TaskKind::Classification, {{"hand", {{"test", kHandProbs}}}});
  RunReport r = run("eval.regression", {"p1"}, "rtask");
  EXPECT_THAT(judge(r).error, HasSubstr("'p1' produced classification predictions (models 'hand'), but eval.regression"));
}

TEST_F(PredictionEvalNodes, DatasetOfTheOtherKindIsRefused) {
  predictions("reg", TaskKind::Regression, {{"linear", {{"test", Matrix::Zero(4, 3)}}}});
  RunReport r = run("eval.regression", {"reg"}, "task");
  EXPECT_THAT(judge(r).error, HasSubstr("the dataset of 'task' is a classification task, but eval.regression needs a regression dataset"));
  predictions("p1", TaskKind::Classification, {{"hand", {{"test", kHandProbs}}}});
  r = run("eval.classification", {"p1"}, "rtask");
  EXPECT_THAT(judge(r).error, HasSubstr("the dataset of 'rtask' is a regression task, but eval.classification needs a classification"));
}

TEST_F(PredictionEvalNodes, DuplicateModelNamesAcrossInputsAreNamed) {
  predictions("p1", TaskKind::Classification, {{"hand", {{"test", kHandProbs}}}});
  predictions("p2", TaskKind::Classification, {{"other", {{"test", kPerfectProbs}}}, {"hand", {{"test", kPerfectProbs}}}});
  RunReport r = run("eval.classification", {"p1", "p2"}, "task");
  EXPECT_EQ(judge(r).status, NodeStatus::Failed);
  EXPECT_THAT(judge(r).error, HasSubstr("model 'hand' is predicted by both 'p1' and 'p2'"));
}

TEST_F(PredictionEvalNodes, DuplicateModelNameWithinOneInputIsNamed) {
  predictions("p1", TaskKind::Classification, {{"hand", {{"test", kHandProbs}}}, {"hand", {{"test", kPerfectProbs}}}});
  RunReport r = run("eval.classification", {"p1"}, "task");
  EXPECT_THAT(judge(r).error, HasSubstr("model 'hand' appears twice in the predictions of 'p1'"));
}

TEST_F(PredictionEvalNodes, MissingSplitIsNamed) {
  // The dataset has 'valid'; the model has predictions for 'test' only.
  predictions("p1", TaskKind::Classification, {{"hand", {{"test", kHandProbs}}}});
  RunReport r = run("eval.classification", {"p1"}, "task", "split = \"valid\"");
  EXPECT_THAT(judge(r).error, HasSubstr("predictions of 'p1': model 'hand' has no predictions for split 'valid'"));
  // A split the dataset lacks.
  r = run("eval.classification", {"p1"}, "task", "split = \"holdout\"");
  EXPECT_THAT(judge(r).error, HasSubstr("holdout"));
}

TEST_F(PredictionEvalNodes, RowAndColumnCountsMustMatchTheDataset) {
  predictions("p1", TaskKind::Classification, {{"short", {{"test", kHandProbs.topRows(3)}}}});
  RunReport r = run("eval.classification", {"p1"}, "task");
  EXPECT_THAT(judge(r).error,
              HasSubstr("model 'short' of 'p1' has 3 rows of predictions on split 'test', but the dataset of 'task' has 4 rows there"));
  predictions("p1", TaskKind::Classification, {{"narrow", {{"test", rows({{1, 0}, {0, 1}, {0, 1}, {1, 0}})}}}});
  r = run("eval.classification", {"p1"}, "task");
  EXPECT_THAT(judge(r).error, HasSubstr("model 'narrow' of 'p1' has 2 columns of predictions on split 'test', but the dataset of "
                                        "'task' has 3 classes"));
  predictions("reg", TaskKind::Regression, {{"wide", {{"test", Matrix::Zero(3, 3)}}}});
  r = run("eval.regression", {"reg"}, "rtask");
  EXPECT_THAT(judge(r).error, HasSubstr("model 'wide' of 'reg' has 3 columns of predictions on split 'test', but the dataset of "
                                        "'rtask' has 2 target columns"));
}

TEST_F(PredictionEvalNodes, InvalidProbabilitiesNameModelProducerAndSplit) {
  Matrix bad = kHandProbs;
  bad(1, 2) = std::nan("");
  predictions("p1", TaskKind::Classification, {{"hand", {{"test", kHandProbs}}}, {"broken", {{"test", bad}}}});
  RunReport r = run("eval.classification", {"p1"}, "task");
  EXPECT_THAT(judge(r).error, HasSubstr("model 'broken' of 'p1' on split 'test': the probability at (row 1, column 2) is not finite"));
}

}  // namespace
