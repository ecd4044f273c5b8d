#include "mergers/src/native_models.hpp"

#include <fmt/format.h>

#include "caulk/error.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/models/inputs.hpp"
#include "caulk/models/mlp_model.hpp"

namespace caulk::mergers {

mlp::Mat<float> split_inputs(const Dataset& data, const std::string& split) {
  const DatasetSplit& s = models::split_with_inputs(data, split);
  const MatrixView X = s.inputs->open(fmt::format("inputs of split '{}'", split));
  if (X.scalar_type() == ScalarType::F32 && X.row_major()) {  // N x P row-major is P x N column-major
    mlp::Mat<float> copy = Eigen::Map<const mlp::Mat<float>>(static_cast<const float*>(X.data()), static_cast<Eigen::Index>(X.cols()),
                                                             static_cast<Eigen::Index>(X.rows()));
    X.check_intact();  // read from the mapping directly
    return copy;
  }
  return X.to_double().transpose().cast<float>();
}

mlp::Model<float> load_native(const std::filesystem::path& path, const std::string& model, const std::string& who) {
  try {
    return mlp::load_model(path);
  } catch (const Error& e) {
    throw Error(
        fmt::format("{} runs models with caulk's native MLP runtime, so it applies only to native MLP checkpoints (format \"caulk.mlp\", "
                    "e.g. from zoo.pretrain or tune.peft); model '{}' cannot be loaded as one: {}",
                    who, model, e.what()));
  }
}

Matrix predict(const mlp::Model<float>& m, const mlp::Mat<float>& X, const std::string& model, const std::string& split) {
  if (m.input_dim() != X.rows())
    throw Error(fmt::format("model '{}' takes {} inputs but split '{}' has {} columns", model, m.input_dim(), split, X.rows()));
  return mlp::run_batches(m, X, false, true).outputs.cast<double>();
}

Matrix predict_model(const models::ModelSource& source, const Dataset& data, const std::string& split, std::int64_t batch_size) {
  const std::unique_ptr<models::Model> model = models::open_model(source);
  if (const auto* mlp = dynamic_cast<const models::MlpModel*>(model.get()))
    return predict(mlp->mlp(), split_inputs(data, split), source.name, split);
  const models::ModelInputs inputs = models::ModelInputs::of_split(data, split);
  const models::Outputs out = models::run_in_batches(*model, inputs, batch_size, false, true);
  if (model->output_kind() == models::OutputKind::Logits) return models::softmax_rows(out.outputs);
  return out.outputs.cast<double>();
}

}  // namespace caulk::mergers
