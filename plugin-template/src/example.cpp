// An example caulk plugin: one ranker, "example.nearest_centroid".
//
// It scores each model of a hub by the leave-one-out accuracy of a nearest-centroid classifier on
// the model's features: a quick, assumption-light transferability baseline. It shows the whole
// contract of a node:
//   - spec(): ports with artifact types, parameters with type, default, range and a one-line doc;
//     the engine validates pipelines from it and `caulk nodes` prints it;
//   - run(): read validated inputs and parameters, do the work per model (units run concurrently,
//     bounded by --jobs), publish outputs, put headline numbers in the run.json summary;
//   - run_unit(): one model's work, which makes the node distributable: under mpirun any rank
//     runs it (docs/writing-plugins.md, "A distributed node"). Nothing else is registered.
#include <caulk/artifacts.hpp>
#include <caulk/context.hpp>
#include <caulk/plugin.hpp>

#include <cmath>
#include <limits>

namespace {

// The algorithm: a plain function of arrays, testable on its own.
double nearest_centroid_loo_accuracy(const caulk::Matrix& F, const std::vector<int>& y, int classes) {
  const Eigen::Index n = F.rows();
  caulk::Matrix sums = caulk::Matrix::Zero(classes, F.cols());
  std::vector<double> counts(classes, 0.0);
  for (Eigen::Index i = 0; i < n; ++i) {
    sums.row(y[i]) += F.row(i);
    counts[y[i]] += 1;
  }
  std::size_t correct = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    int best = -1;
    double best_distance = std::numeric_limits<double>::infinity();
    for (int c = 0; c < classes; ++c) {
      // Leave sample i out of its own class's centroid.
      double count = counts[c] - (c == y[i] ? 1 : 0);
      if (count <= 0) continue;
      Eigen::RowVectorXd centroid = sums.row(c);
      if (c == y[i]) centroid -= F.row(i);
      centroid /= count;
      double d = (F.row(i) - centroid).squaredNorm();
      if (d < best_distance) {
        best_distance = d;
        best = c;
      }
    }
    correct += best == y[i];
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

class NearestCentroid : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("example.nearest_centroid", "Rank models by leave-one-out nearest-centroid accuracy on their features");
    s.input("features", "Embeddings", "the hub's models: features on the target data");
    s.input("data", "Dataset", "the target task (classification)");
    s.output("scores", "Scores", "one accuracy per model (higher is better)");
    s.param(caulk::ParamSpec::string("split", "train", "the split to score on"));
    s.param(caulk::ParamSpec::integer("max_rows", 2000, "score on at most this many rows (the first ones)").range(2, 1e9));
    return s;
  }

  // One model scored, in this process or on any rank of an mpirun. The payload names the model and
  // its features file; the node's parameters and its Dataset come from the unit's context (the
  // very objects run() has, or on another rank copies the engine sent once). Returns small JSON.
  static caulk::Json run_unit(caulk::UnitContext& ctx, const caulk::Json& payload) {
    auto data = ctx.dataset("data");
    const auto& split = data->split(ctx.params().string("split"));
    const auto rows = std::min<std::size_t>(split.rows, static_cast<std::size_t>(ctx.params().integer("max_rows")));
    std::vector<int> y(split.classes.begin(), split.classes.begin() + static_cast<std::ptrdiff_t>(rows));
    const std::string name = payload.at("model").get<std::string>();
    const caulk::ArrayFile file = caulk::array_file_from_json(payload.at("features"));
    caulk::MatrixView features = file.open("features of model '" + name + "'");
    if (features.rows() != split.rows)
      throw caulk::Error("model '" + name + "' has " + std::to_string(features.rows()) + " rows, the labels " + std::to_string(split.rows));
    caulk::Matrix F;
    features.rows_to(0, rows, F);
    return {{"accuracy", nearest_centroid_loo_accuracy(F, y, data->num_classes())}};
  }

  void run(caulk::NodeContext& ctx) override {
    auto hub = ctx.input<caulk::Embeddings>("features");
    auto data = ctx.input<caulk::Dataset>("data");
    if (data->kind != caulk::TaskKind::Classification) throw caulk::Error("example.nearest_centroid needs a classification task");
    const auto& split = data->split(ctx.params().string("split"));

    // One unit per model: its payload, then the results in model order (wherever each ran).
    std::vector<std::string> names;
    std::vector<caulk::Json> payloads;
    for (const auto& m : hub->models) {
      names.push_back(m.name);
      payloads.push_back({{"model", m.name}, {"features", caulk::array_file_to_json(m.features_for(split.name))}});
    }
    const std::vector<caulk::Json> results = ctx.run_units("model", names, payloads);
    std::vector<double> accuracy;
    for (const auto& r : results) accuracy.push_back(r.at("accuracy").get<double>());

    auto scores = std::make_shared<caulk::Scores>();
    scores->method = "nearest_centroid";
    scores->higher_is_better = true;
    caulk::Json summary = caulk::Json::object();
    for (std::size_t i = 0; i < names.size(); ++i) {
      scores->scores.push_back({names[i], accuracy[i], 0.0});
      summary[names[i]] = accuracy[i];
    }
    ctx.summary()["scores"] = summary;
    ctx.summary()["higher_is_better"] = true;
    ctx.publish("scores", std::move(scores));
  }
};

}  // namespace

// The plugin's descriptor (checked by the engine before anything else) and its one entry point.
CAULK_PLUGIN("example", "1.0.0", "An example plugin: a nearest-centroid ranker") { registrar.add_node<NearestCentroid>(); }
