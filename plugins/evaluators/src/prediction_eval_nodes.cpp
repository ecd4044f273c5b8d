// eval.classification and eval.regression: judge the predictions of one or several producers on
// one split of a dataset. Each model becomes a row of the `metrics` table and an entry of the
// node's run.json summary; the metrics themselves are prediction_metrics.hpp's.
#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/data_check.hpp"
#include "caulk/figures/charts.hpp"
#include "caulk/metrics/prediction_metrics.hpp"
#include "evaluators/src/nodes.hpp"

namespace caulk::evaluators {

namespace {

// What differs between the two nodes.
struct Task {
  TaskKind kind;
  const char* node_type;   // "eval.classification"
  const char* what;        // "class probabilities", for messages
  const char* other_node;  // the node type that judges the other kind
};

constexpr Task kClassification{TaskKind::Classification, "eval.classification", "class probabilities", "eval.regression"};
constexpr Task kRegression{TaskKind::Regression, "eval.regression", "regression values", "eval.classification"};

std::string model_names(const Predictions& p) {
  std::string out;
  for (const auto& m : p.models) out += (out.empty() ? "'" : ", '") + m.model + "'";
  return out.empty() ? "no models" : "models " + out;
}

NodeSpec common_spec(const Task& task, const std::string& summary, const std::string& columns) {
  NodeSpec s(task.node_type, summary);
  s.inputs_many("predictions", "Predictions", fmt::format("{} of one or several producers (model names must differ)", task.what));
  s.input("data", "Dataset", fmt::format("the {} dataset holding the truth", task_kind_name(task.kind)));
  s.output("metrics", "Table", "one row per model: " + columns);
  s.output("figure", "Figure",
           fmt::format("the {} of every model as bars, best first (drawn in report.html)",
                       task.kind == TaskKind::Classification ? "accuracy" : "mean squared error"));
  s.param(ParamSpec::string("split", "test", "the split to judge the predictions on"));
  s.param(ParamSpec::integer("digits", 4, "significant digits on stdout").range(1, 17));
  // Before running: the split judged on is one the data have (caulk/data_check.hpp).
  s.data_check = [](DataCheck& check) {
    const Json* labels = check.expect_split("split", "data");
    if (!labels || !labels->contains("rows")) return;
    const std::string& split = check.params().string("split");
    for (const auto* p : check.inputs("predictions")) {
      if (!p || !p->contains("splits") || !p->at("splits").contains(split)) continue;
      const auto& pred = p->at("splits").at(split);
      if (pred.at("rows") != labels->at("rows"))
        check.problem_at(p->at("where"),
                         fmt::format("predictions on split '{}' ({}) have {} rows but the labels ({}) have {}, which node "
                                     "'{}' judges them against; give predictions of the same samples, in the same order",
                                     split, pred.at("file").get<std::string>(), pred.at("rows").get<std::size_t>(),
                                     labels->at("file").get<std::string>(), labels->at("rows").get<std::size_t>(), check.node_id()));
    }
  };
  return s;
}

// A model to judge: its predictions on the split, and which node produced them (for messages).
struct Judged {
  std::string model, producer;
  const Matrix* values;
};

// Every model of every input in input order, with its matrix on `split`. Throws Error when an
// input holds the other kind of predictions, when a model name occurs twice (models are keyed by
// name in run.json), when a model has no predictions on the split, or when its shape does not fit
// the dataset's split (`rows` rows, `columns` columns: classes or target columns).
std::vector<Judged> collect(const Task& task, const std::vector<std::shared_ptr<const Predictions>>& inputs, const std::string& split,
                            std::size_t rows, std::size_t columns, const std::string& data_node) {
  std::vector<Judged> out;
  std::map<std::string, std::string> producer_of;
  for (const auto& p : inputs) {
    if (p->kind != task.kind)
      throw Error(fmt::format("'{}' produced {} predictions ({}), but {} judges {}; connect it to {}", p->producer_node,
                              task_kind_name(p->kind), model_names(*p), task.node_type, task.what, task.other_node));
    for (const auto& m : p->models) {
      auto [it, fresh] = producer_of.emplace(m.model, p->producer_node);
      if (!fresh)
        throw Error(it->second == p->producer_node
                        ? fmt::format("model '{}' appears twice in the predictions of '{}'", m.model, p->producer_node)
                        : fmt::format("model '{}' is predicted by both '{}' and '{}'; each model must have a distinct name", m.model,
                                      it->second, p->producer_node));
      const Matrix* values = nullptr;
      try {
        values = &m.on(split);
      } catch (const Error& e) {
        throw Error(fmt::format("predictions of '{}': {}", p->producer_node, e.what()));
      }
      if (static_cast<std::size_t>(values->rows()) != rows)
        throw Error(fmt::format("model '{}' of '{}' has {} rows of predictions on split '{}', but the dataset of '{}' has {} rows there",
                                m.model, p->producer_node, values->rows(), split, data_node, rows));
      if (static_cast<std::size_t>(values->cols()) != columns)
        throw Error(fmt::format("model '{}' of '{}' has {} columns of predictions on split '{}', but the dataset of '{}' has {} {}",
                                m.model, p->producer_node, values->cols(), split, data_node, columns,
                                task.kind == TaskKind::Classification ? "classes" : "target columns"));
      out.push_back({m.model, p->producer_node, values});
    }
  }
  return out;
}

const Dataset& dataset_of_kind(const Task& task, const Dataset& data) {
  if (data.kind != task.kind)
    throw Error(fmt::format("the dataset of '{}' is a {} task, but {} needs a {} dataset (use {})", data.producer_node,
                            task_kind_name(data.kind), task.node_type, task_kind_name(task.kind), task.other_node));
  return data;
}

// The headline metric of every model as bars, best first.
std::shared_ptr<Figure> metric_figure(const NodeContext& ctx, const Task& task, const std::string& split, std::vector<figures::Bar> bars) {
  const bool classification = task.kind == TaskKind::Classification;
  return figures::make_figure(
      figures::bar_chart({fmt::format("{} of every model ({})", classification ? "Held-out accuracy" : "Held-out MSE", ctx.id()),
                          "on split '" + split + "'",
                          fmt::format("Bars: the {} of each model and combination, best first", classification ? "accuracy" : "mse")},
                         "model or method",
                         classification ? "accuracy (fraction correct, higher is better)" : "mean squared error (lower is better)",
                         std::move(bars), !classification),
      fmt::format("The {} of each model on split '{}', best first.", classification ? "accuracy" : "mean squared error", split));
}

// Runs `metrics` on one model, naming the model, its producer and the split when it throws.
template <class F>
auto judge(const Judged& j, const std::string& split, F&& metrics) {
  try {
    return metrics(*j.values);
  } catch (const Error& e) {
    throw Error(fmt::format("model '{}' of '{}' on split '{}': {}", j.model, j.producer, split, e.what()));
  }
}

class ClassificationEval : public Node {
 public:
  static NodeSpec spec() {
    return common_spec(kClassification,
                       "Judge class probabilities against a classification dataset: accuracy, log loss (clipped at 1e-15), "
                       "expected calibration error (15 bins), macro-F1",
                       "model, accuracy, log_loss, ece, macro_f1");
  }

  void run(NodeContext& ctx) override {
    const std::string& split_name = ctx.params().string("split");
    auto data = ctx.input<Dataset>("data");
    const DatasetSplit& split = dataset_of_kind(kClassification, *data).split(split_name);
    const auto models = collect(kClassification, ctx.inputs<Predictions>("predictions"), split_name, split.classes.size(),
                                static_cast<std::size_t>(data->num_classes()), data->producer_node);

    auto table = std::make_shared<Table>();
    table->title = fmt::format("Classification metrics on split '{}'", split_name);
    table->columns = {"model", "accuracy", "log_loss", "ece", "macro_f1"};
    Json& summary = ctx.summary();
    std::vector<figures::Bar> bars;
    for (const auto& j : models) {
      const auto m = judge(j, split_name, [&](const Matrix& probs) { return metrics::classification_metrics(probs, split.classes); });
      table->rows.push_back({j.model, m.accuracy, m.log_loss, m.ece, m.macro_f1});
      bars.push_back({j.model, m.accuracy});
      summary[j.model] = Json{{"accuracy", m.accuracy}, {"log_loss", m.log_loss}, {"ece", m.ece}, {"macro_f1", m.macro_f1}};
    }
    ctx.print(table->to_text(static_cast<int>(ctx.params().integer("digits"))));
    ctx.publish("metrics", std::move(table));
    ctx.publish("figure", metric_figure(ctx, kClassification, split_name, std::move(bars)));
  }
};

class RegressionEval : public Node {
 public:
  static NodeSpec spec() {
    return common_spec(kRegression,
                       "Judge regression values against a regression dataset: mean squared error, mean absolute error, R^2 "
                       "(averaged over target columns, as scikit-learn)",
                       "model, mse, mae, r2");
  }

  void run(NodeContext& ctx) override {
    const std::string& split_name = ctx.params().string("split");
    auto data = ctx.input<Dataset>("data");
    const DatasetSplit& split = dataset_of_kind(kRegression, *data).split(split_name);
    const auto models =
        collect(kRegression, ctx.inputs<Predictions>("predictions"), split_name, static_cast<std::size_t>(split.targets.rows()),
                static_cast<std::size_t>(split.targets.cols()), data->producer_node);

    auto table = std::make_shared<Table>();
    table->title = fmt::format("Regression metrics on split '{}'", split_name);
    table->columns = {"model", "mse", "mae", "r2"};
    Json& summary = ctx.summary();
    std::vector<figures::Bar> bars;
    for (const auto& j : models) {
      const auto m = judge(j, split_name, [&](const Matrix& predicted) { return metrics::regression_metrics(predicted, split.targets); });
      table->rows.push_back({j.model, m.mse, m.mae, m.r2});
      bars.push_back({j.model, m.mse});
      // R^2 is NaN with fewer than two rows: null in run.json.
      summary[j.model] = Json{{"mse", m.mse}, {"mae", m.mae}, {"r2", m.r2}};
    }
    ctx.print(table->to_text(static_cast<int>(ctx.params().integer("digits"))));
    ctx.publish("metrics", std::move(table));
    ctx.publish("figure", metric_figure(ctx, kRegression, split_name, std::move(bars)));
  }
};

}  // namespace

void register_prediction_evals(PluginRegistrar& r) {
  r.add_node<ClassificationEval>();
  r.add_node<RegressionEval>();
}

}  // namespace caulk::evaluators
