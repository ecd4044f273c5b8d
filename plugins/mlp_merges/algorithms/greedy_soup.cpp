#include "mlp_merges/algorithms/greedy_soup.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "caulk/error.hpp"
#include "caulk/metrics/prediction_metrics.hpp"
#include "mlp_merges/algorithms/model_ops.hpp"

namespace caulk::mlp_merges {

GreedySoupResult greedy_soup(const std::vector<mlp::Model<float>>& models, const std::function<double(const mlp::Model<float>&)>& score,
                             bool higher) {
  std::vector<double> individual;
  for (const auto& m : models) individual.push_back(score(m));
  return greedy_soup(models, individual, score, higher);
}

GreedySoupResult greedy_soup(const std::vector<mlp::Model<float>>& models, const std::vector<double>& individual,
                             const std::function<double(const mlp::Model<float>&)>& score, bool higher) {
  if (models.empty()) throw Error("greedy soup: no ingredients");
  if (individual.size() != models.size())
    throw Error(fmt::format("greedy soup: {} scores for {} ingredients", individual.size(), models.size()));
  const auto soup_of = [&](const std::vector<std::size_t>& members) {
    std::vector<const mlp::Model<float>*> soup;
    for (std::size_t i : members) soup.push_back(&models[i]);
    return members.size() == 1 ? models[members[0]] : average_models(soup);
  };
  const GreedySoupSteps steps = greedy_soup_steps(
      individual, [&](const std::vector<std::size_t>& m) { return score(soup_of(m)); }, higher);
  GreedySoupResult r;
  r.order = steps.order;
  r.individual = steps.individual;
  r.candidate = steps.candidate;
  r.kept = steps.kept;
  r.score = steps.score;
  r.soup = soup_of(steps.members);  // recomputed exactly as it was scored
  return r;
}

GreedySoupSteps greedy_soup_steps(const std::vector<double>& individual,
                                  const std::function<double(const std::vector<std::size_t>& members)>& score_soup, bool higher) {
  if (individual.empty()) throw Error("greedy soup: no ingredients");
  const std::size_t K = individual.size();
  GreedySoupSteps r;
  r.individual = individual;
  r.candidate.assign(K, 0.0);
  r.kept.assign(K, false);
  auto better = [&](double a, double b) { return higher ? a > b : a < b; };
  r.order.resize(K);
  std::iota(r.order.begin(), r.order.end(), std::size_t{0});
  std::stable_sort(r.order.begin(), r.order.end(), [&](std::size_t a, std::size_t b) { return better(r.individual[a], r.individual[b]); });
  r.members = {r.order[0]};
  r.kept[r.order[0]] = true;
  r.score = r.candidate[r.order[0]] = r.individual[r.order[0]];
  for (std::size_t k = 1; k < K; ++k) {
    const std::size_t i = r.order[k];
    r.members.push_back(i);
    const double s = score_soup(r.members);
    r.candidate[i] = s;
    if (better(s, r.score)) {  // strictly: a tie leaves the ingredient out
      r.kept[i] = true;
      r.score = s;
    } else {
      r.members.pop_back();
    }
  }
  return r;
}

SoupMetric parse_soup_metric(const std::string& name) {
  if (name == "accuracy") return SoupMetric::Accuracy;
  if (name == "log_loss") return SoupMetric::LogLoss;
  if (name == "mse") return SoupMetric::Mse;
  throw Error(fmt::format("unknown metric '{}' (known: accuracy, log_loss, mse)", name));
}

bool higher_is_better(SoupMetric m) { return m == SoupMetric::Accuracy; }

double model_metric(const mlp::Model<float>& m, const mlp::Samples& data, SoupMetric metric) {
  const bool softmax = m.output == mlp::Output::Softmax;
  if (softmax == (metric == SoupMetric::Mse))
    throw Error(softmax ? "mse judges regression models; this model outputs class probabilities (use accuracy or log_loss)"
                        : "accuracy and log_loss judge classification models; this model outputs regression values (use mse)");
  const Mat<double> out = mlp::run_batches(m, data.X, false, true).outputs.cast<double>();
  switch (metric) {
    case SoupMetric::Accuracy:
      return metrics::accuracy(out, data.y.classes);
    case SoupMetric::LogLoss:
      return metrics::log_loss(out, data.y.classes);
    case SoupMetric::Mse:
      return metrics::mean_squared_error(out, data.y.values.transpose().cast<double>());
  }
  return 0;
}

}  // namespace caulk::mlp_merges
