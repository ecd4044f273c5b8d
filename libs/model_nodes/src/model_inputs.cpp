#include "caulk/model_nodes/model_inputs.hpp"

#include <fmt/format.h>

#include "caulk/models/inputs.hpp"

namespace caulk::models {

mlp::Samples split_samples(const Dataset& data, const std::string& split) {
  const DatasetSplit& s = split_with_inputs(data, split);
  const MatrixView X = s.inputs->open(fmt::format("inputs of split '{}'", split));
  mlp::Samples out;
  if (X.scalar_type() == ScalarType::F32 && X.row_major()) {
    out.X = Eigen::Map<const mlp::Mat<float>>(static_cast<const float*>(X.data()), static_cast<Eigen::Index>(X.cols()),
                                              static_cast<Eigen::Index>(X.rows()));
    X.check_intact();  // read from the mapping directly
  } else {
    out.X = X.to_double().transpose().cast<float>();
  }
  if (data.kind == TaskKind::Classification)
    out.y.classes = s.classes;
  else
    out.y.values = s.targets.transpose().cast<float>();
  return out;
}

std::vector<std::string> splits_with_inputs(const Dataset& data) {
  std::vector<std::string> out;
  for (const auto& s : data.splits)
    if (s.inputs) out.push_back(s.name);
  return out;
}

}  // namespace caulk::models
