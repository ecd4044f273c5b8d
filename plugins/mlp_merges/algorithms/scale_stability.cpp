#include "mlp_merges/algorithms/scale_stability.hpp"

#include "caulk/error.hpp"
#include "caulk/metrics/prediction_metrics.hpp"
#include "mlp_merges/algorithms/model_ops.hpp"

namespace caulk::mlp_merges {

std::vector<ScalePoint> scale_stability(const mlp::Model<float>& m, const mlp::Samples& data, const std::vector<double>& scales,
                                        int layer) {
  if (m.output != mlp::Output::Softmax)
    throw Error("scale stability compares predicted classes: the model must output class probabilities (softmax)");
  if (data.size() == 0) throw Error("scale stability needs at least one sample");
  if (data.y.classes.size() != static_cast<std::size_t>(data.size())) throw Error("scale stability needs a class label per sample");
  auto classes = [&](const mlp::Model<float>& model) {
    return metrics::predicted_classes(mlp::run_batches(model, data.X, false, true).outputs.cast<double>());
  };
  const std::vector<int> reference = classes(m);
  std::vector<ScalePoint> out;
  for (double s : scales) {
    const std::vector<int> predicted = classes(scale_parameters(m, s, layer));
    out.push_back({s, metrics::fraction_correct(predicted, data.y.classes), metrics::fraction_correct(predicted, reference)});
  }
  return out;
}

}  // namespace caulk::mlp_merges
