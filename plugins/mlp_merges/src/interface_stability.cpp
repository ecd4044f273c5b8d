#include "mlp_merges/src/interface_stability.hpp"

#include <fmt/format.h>

#include "caulk/error.hpp"
#include "caulk/models/inputs.hpp"

namespace caulk::mlp_merges {

namespace {
std::vector<Eigen::Index> predicted_classes(const RowMatrixF& logits) {
  std::vector<Eigen::Index> out(static_cast<std::size_t>(logits.rows()));
  for (Eigen::Index i = 0; i < logits.rows(); ++i) logits.row(i).maxCoeff(&out[static_cast<std::size_t>(i)]);  // the first maximum
  return out;
}
}  // namespace

std::vector<ScalePoint> interface_scale_stability(const models::ModelSource& source, const Dataset& data, const std::string& split,
                                                  const std::vector<double>& scales) {
  const std::unique_ptr<models::Model> model = models::open_model(source);
  if (model->output_kind() != models::OutputKind::Logits)
    throw Error(fmt::format("{} outputs regression values; scale stability compares predicted classes", model->describe()));
  const DatasetSplit& part = data.split(split);
  const models::ModelInputs inputs = models::ModelInputs::of_split(data, split);
  const std::vector<models::ParameterInfo> infos = model->parameters();
  std::vector<std::vector<float>> original;
  for (const auto& p : infos) {
    original.emplace_back(static_cast<std::size_t>(p.size()));
    model->read_parameter(p.name, original.back());
  }
  const std::vector<Eigen::Index> unscaled = predicted_classes(models::run_in_batches(*model, inputs, 64, false, true).outputs);
  if (unscaled.size() != part.classes.size())
    throw Error(fmt::format("split '{}' has {} labels but {} samples of inputs", split, part.classes.size(), unscaled.size()));
  std::vector<ScalePoint> points;
  std::vector<float> scaled;
  for (double s : scales) {
    for (std::size_t t = 0; t < infos.size(); ++t) {
      scaled.resize(original[t].size());
      for (std::size_t j = 0; j < scaled.size(); ++j) scaled[j] = original[t][j] * float(s);
      model->write_parameter(infos[t].name, scaled);
    }
    const std::vector<Eigen::Index> classes = predicted_classes(models::run_in_batches(*model, inputs, 64, false, true).outputs);
    std::size_t correct = 0, same = 0;
    for (std::size_t i = 0; i < classes.size(); ++i) {
      correct += classes[i] == part.classes[i];
      same += classes[i] == unscaled[i];
    }
    points.push_back({s, double(correct) / double(classes.size()), double(same) / double(classes.size())});
  }
  return points;
}

}  // namespace caulk::mlp_merges
