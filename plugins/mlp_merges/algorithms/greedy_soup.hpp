// Greedy soup (docs/merge-studies.md; Wortsman et al., "Model soups", ICML 2022): sort the
// ingredients by their own held-out score, best first (equal scores keep the given order); start
// the soup with the best; for each next ingredient, keep it only if the uniform average of the soup
// plus it scores strictly better than the soup does.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "caulk/mlp/mlp.hpp"
#include "caulk/mlp/training.hpp"

namespace caulk::mlp_merges {

struct GreedySoupResult {
  std::vector<std::size_t> order;  // ingredient indices, best individual score first
  std::vector<double> individual;  // per ingredient (input order): its own score
  // Per ingredient (input order): the score of the soup it was tried in (the soup so far plus it;
  // for the first ingredient its own score).
  std::vector<double> candidate;
  std::vector<bool> kept;  // per ingredient (input order)
  double score = 0;        // the final soup's score
  mlp::Model<float> soup;
};

// `score` judges a model on held-out data; `higher_is_better` says which way is better.
GreedySoupResult greedy_soup(const std::vector<mlp::Model<float>>& models, const std::function<double(const mlp::Model<float>&)>& score,
                             bool higher_is_better);
// The same with the ingredients' own scores given (individual[i] = score(models[i]), computed
// elsewhere, e.g. on other processes): `score` then judges only the soups tried.
GreedySoupResult greedy_soup(const std::vector<mlp::Model<float>>& models, const std::vector<double>& individual,
                             const std::function<double(const mlp::Model<float>&)>& score, bool higher_is_better);

// The same over ingredients of any kind: `score_soup` judges the uniform average of the listed
// ingredients (indices, in the order they joined); individual[i] is ingredient i's own score. The
// result's `soup` stays empty; `members` lists the final soup's ingredients.
struct GreedySoupSteps {
  std::vector<std::size_t> order;
  std::vector<double> individual, candidate;
  std::vector<bool> kept;
  double score = 0;
  std::vector<std::size_t> members;
};
GreedySoupSteps greedy_soup_steps(const std::vector<double>& individual,
                                  const std::function<double(const std::vector<std::size_t>& members)>& score_soup, bool higher_is_better);

// The held-out metrics a soup can be judged by: accuracy (higher is better) and log loss
// (clipped at 1e-15, as eval.classification) for softmax models; mean squared error for
// regression models (both lower is better).
enum class SoupMetric { Accuracy, LogLoss, Mse };
SoupMetric parse_soup_metric(const std::string& name);  // throws Error listing the names
bool higher_is_better(SoupMetric m);
// The metric of a model's predictions on the samples (class indices or target values).
double model_metric(const mlp::Model<float>& m, const mlp::Samples& data, SoupMetric metric);

}  // namespace caulk::mlp_merges
