#include "mlp_merges/algorithms/ensembles.hpp"

#include "caulk/lbfgs.hpp"
#include <fmt/format.h>

#include <limits>

#include "caulk/error.hpp"
#include "mlp_merges/algorithms/model_ops.hpp"

namespace caulk::mlp_merges {

using mlp::Mat;

namespace {
void check_models(const std::vector<mlp::Model<float>>& models, const Mat<float>& X) {
  if (models.empty()) throw Error("an ensemble needs at least one model");
  for (std::size_t k = 0; k < models.size(); ++k) {
    if (models[k].input_dim() != X.rows())
      throw Error(fmt::format("model {} takes {} inputs but the data has {} columns", k, models[k].input_dim(), X.rows()));
    if (models[k].output_dim() != models[0].output_dim() || models[k].output != models[0].output)
      throw Error(fmt::format("model {} has {} {} outputs but model 0 has {} {}", k, models[k].output_dim(),
                              models[k].output == mlp::Output::Softmax ? "softmax" : "identity", models[0].output_dim(),
                              models[0].output == mlp::Output::Softmax ? "softmax" : "identity"));
  }
}

void check_inputs(const mlp::Model<float>& m, const Mat<float>& X) {
  if (m.input_dim() != X.rows()) throw Error(fmt::format("the model takes {} inputs but the data has {} columns", m.input_dim(), X.rows()));
}

// (1/K) sum_k parts[k], summed in order from zero; `what` names a part's columns.
Mat<double> mean_in_order(const std::vector<Mat<double>>& parts, const char* what) {
  if (parts.empty()) throw Error("an ensemble needs at least one model");
  Mat<double> sum = Mat<double>::Zero(parts[0].rows(), parts[0].cols());
  for (std::size_t k = 0; k < parts.size(); ++k) {
    if (parts[k].rows() != sum.rows() || parts[k].cols() != sum.cols())
      throw Error(fmt::format("model {} gives {} rows of {} {} but model 0 gives {} rows of {}", k, parts[k].rows(), parts[k].cols(), what,
                              sum.rows(), sum.cols()));
    sum += parts[k];
  }
  return sum / double(parts.size());
}

}  // namespace

Mat<double> model_outputs(const mlp::Model<float>& m, const Mat<float>& X) {
  check_inputs(m, X);
  return mlp::run_batches(m, X, false, true).outputs.cast<double>();
}

Mat<double> model_features(const mlp::Model<float>& m, const Mat<float>& X) {
  check_inputs(m, X);
  return mlp::run_batches(m, X, true, false).features.cast<double>();
}

Mat<double> mean_of_outputs(const std::vector<Mat<double>>& outputs) { return mean_in_order(outputs, "outputs"); }

Mat<double> mean_of_features(const std::vector<Mat<double>>& features) {
  for (std::size_t k = 1; k < features.size(); ++k)
    if (features[k].cols() != features[0].cols())
      throw Error(fmt::format("model {} has {} features but model 0 has {}: features can only be averaged at one width", k,
                              features[k].cols(), features[0].cols()));
  return mean_in_order(features, "features");
}

Mat<double> output_ensemble(const std::vector<mlp::Model<float>>& models, const Mat<float>& X) {
  check_models(models, X);
  std::vector<Mat<double>> outputs;
  for (const auto& m : models) outputs.push_back(model_outputs(m, X));
  return mean_of_outputs(outputs);
}

Mat<double> mean_features(const std::vector<mlp::Model<float>>& models, const Mat<float>& X) {
  check_models(models, X);
  for (std::size_t k = 0; k < models.size(); ++k)
    if (models[k].feature_dim() != models[0].feature_dim())
      throw Error(fmt::format("model {} has {} features but model 0 has {}: features can only be averaged at one width", k,
                              models[k].feature_dim(), models[0].feature_dim()));
  std::vector<Mat<double>> features;
  for (const auto& m : models) features.push_back(model_features(m, X));
  return mean_of_features(features);
}

Mat<double> apply_head(const mlp::Model<float>& head, const Mat<double>& features) {
  if (features.cols() != head.input_dim())
    throw Error(fmt::format("the head reads {} features but {} were given", head.input_dim(), features.cols()));
  const mlp::Model<double> h = head.cast<double>();
  return mlp::forward<double>(h, features.transpose()).transpose();
}

Model<float> averaged_head(const std::vector<mlp::Model<float>>& models) {
  std::vector<Model<float>> heads;
  std::vector<std::string> names;
  for (std::size_t k = 0; k < models.size(); ++k) {
    heads.push_back(head_of(models[k]));
    names.push_back(fmt::format("model {}", k));
  }
  try {
    check_same_architecture(heads, names);
  } catch (const Error& e) {
    throw Error(fmt::format("the heads cannot be averaged: {}", e.what()));
  }
  return average_models(heads);
}

mlp::Model<float> refit_linear_head(const Mat<double>& F, const mlp::Targets<float>& y, int outputs, mlp::Output output,
                                    const RefitOptions& o) {
  const Eigen::Index C = outputs, D = F.cols(), n = F.rows();
  if (n == 0) throw Error("no training samples to refit the head on");
  if (output == mlp::Output::Softmax) {
    if (y.classes.size() != static_cast<std::size_t>(n)) throw Error(fmt::format("{} labels for {} samples", y.classes.size(), n));
    for (int c : y.classes)
      if (c < 0 || c >= outputs) throw Error(fmt::format("label {} is outside the {} classes", c, outputs));
  } else if (y.values.rows() != C || y.values.cols() != n) {
    throw Error(fmt::format("targets are {}x{}, expected {}x{}", y.values.rows(), y.values.cols(), C, n));
  }
  const Mat<double> F_by_column = F.transpose();  // the runtime's layout: one column per sample
  auto objective = [&](const Eigen::VectorXd& p, Eigen::VectorXd& g) {
    return mlp::linear_head_objective(F_by_column, y, outputs, output, o.weight_decay, p, g);
  };
  Eigen::VectorXd p = Eigen::VectorXd::Zero(C * D + C);
  LBFGSpp::LBFGSParam<double> param;
  param.epsilon = o.tolerance;
  param.epsilon_rel = o.tolerance;
  param.max_iterations = o.max_iterations;
  minimize_lbfgs(objective, p, param);
  const Eigen::VectorXd& best = p;
  mlp::Model<float> head;
  head.output = output;
  head.feature_layer = 0;
  head.layers.push_back({Eigen::Map<const Mat<double>>(best.data(), C, D).cast<float>(), best.tail(C).cast<float>()});
  return head;
}

}  // namespace caulk::mlp_merges
