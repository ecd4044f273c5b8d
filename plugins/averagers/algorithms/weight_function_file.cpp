// The file format of a fitted weight function (JSON, full double precision; docs/averaging.md).
#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "averagers/algorithms/weight_function.hpp"
#include "caulk/error.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/json_text.hpp"
#include "caulk/json.hpp"

namespace caulk::avg {

namespace {

Json matrix_json(const Matrix& m) {
  Json rows = Json::array();
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    std::vector<double> r(static_cast<std::size_t>(m.cols()));
    for (Eigen::Index j = 0; j < m.cols(); ++j) r[static_cast<std::size_t>(j)] = m(i, j);
    rows.push_back(r);
  }
  return rows;
}

Matrix json_matrix(const Json& j, const std::string& what, Eigen::Index cols = -1) {
  if (!j.is_array()) throw Error(fmt::format("'{}' must be an array of rows", what));
  Matrix m;
  for (std::size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_array()) throw Error(fmt::format("'{}' row {} is not an array", what, i));
    const auto r = j[i].get<std::vector<double>>();
    if (i == 0) m.resize(static_cast<Eigen::Index>(j.size()), cols >= 0 ? cols : static_cast<Eigen::Index>(r.size()));
    if (static_cast<Eigen::Index>(r.size()) != m.cols())
      throw Error(fmt::format("'{}' row {} has {} values, expected {}", what, i, r.size(), m.cols()));
    for (std::size_t c = 0; c < r.size(); ++c) m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)) = r[c];
  }
  return m;
}

Vector json_vec(const Json& j, const std::string& what) {
  if (!j.is_array()) throw Error(fmt::format("'{}' must be an array", what));
  const auto v = j.get<std::vector<double>>();
  return Eigen::Map<const Vector>(v.data(), static_cast<Eigen::Index>(v.size()));
}

Json vec_json(const Vector& v) { return std::vector<double>(v.data(), v.data() + v.size()); }

Json loss_json(const Loss& l) { return Json{{"kind", loss_name(l.kind)}, {"delta", l.delta}, {"tau", l.tau}}; }

Loss json_loss(const Json& j) {
  Loss l;
  if (!j.is_object() || !j.contains("kind")) throw Error("'loss' needs a 'kind'");
  l.kind = parse_loss(j["kind"].get<std::string>());
  l.delta = j.value("delta", 1.0);
  l.tau = j.value("tau", 0.5);
  return l;
}

const Json& required(const Json& j, const char* key) {
  if (!j.contains(key)) throw Error(fmt::format("'{}' is missing", key));
  return j[key];
}

}  // namespace

Json WeightFunction::to_json() const {
  Json j;
  j["format"] = kWeightFunctionFormat;
  j["version"] = 1;
  j["weight_function"] = weight_function_name(kind);
  j["task"] = std::string(task_kind_name(task));
  j["outputs"] = outputs;
  j["models"] = models;
  j["loss"] = loss_json(loss);
  j["penalty"] = penalty;
  if (kind == WeightFunctionKind::SoftmaxLinear) {
    j["basis"] = basis.to_json();
    j["theta"] = matrix_json(theta);
  } else {
    j["standardise"] = Json{{"mean", vec_json(mean)}, {"scale", vec_json(scale)}};
  }
  if (kind == WeightFunctionKind::Mlp) {
    Json layers = Json::array();
    for (const auto& l : net.layers) layers.push_back(Json{{"weight", matrix_json(l.W)}, {"bias", vec_json(l.b)}});
    j["activation"] = mlp::activation_name(net.activation);
    j["layers"] = layers;
  }
  if (kind == WeightFunctionKind::Kernel) {
    j["bandwidth"] = bandwidth;
    j["z"] = matrix_json(fit_u);
    j["predictions"] = matrix_json(fit_stack.F);
    if (task == TaskKind::Regression)
      j["targets"] = matrix_json(fit_stack.Y);
    else
      j["classes"] = fit_stack.classes;
  }
  return j;
}

WeightFunction WeightFunction::from_json(const Json& j) {
  if (!j.is_object() || j.value("format", "") != kWeightFunctionFormat)
    throw Error(fmt::format("not a weight function file (its \"format\" is not \"{}\")", kWeightFunctionFormat));
  if (j.value("version", 0) != 1) throw Error("unsupported weight function file version (expected 1)");
  WeightFunction w;
  w.kind = parse_weight_function(required(j, "weight_function").get<std::string>());
  const std::string task = required(j, "task").get<std::string>();
  if (task != "regression" && task != "classification")
    throw Error(fmt::format("'task' is '{}' (expected regression or classification)", task));
  w.task = task == "regression" ? TaskKind::Regression : TaskKind::Classification;
  w.outputs = required(j, "outputs").get<int>();
  w.models = required(j, "models").get<std::vector<std::string>>();
  if (w.models.empty() || w.outputs < 1) throw Error("the weight function needs models and outputs >= 1");
  w.loss = json_loss(required(j, "loss"));
  w.penalty = j.value("penalty", 0.0);
  const auto K = static_cast<Eigen::Index>(w.models.size());
  if (w.kind == WeightFunctionKind::SoftmaxLinear) {
    w.basis = Basis::from_json(required(j, "basis"));
    w.theta = json_matrix(required(j, "theta"), "theta", w.basis.size());
    if (w.theta.rows() != K) throw Error(fmt::format("'theta' has {} rows for {} models", w.theta.rows(), K));
    return w;
  }
  const Json& st = required(j, "standardise");
  w.mean = json_vec(required(st, "mean"), "standardise.mean");
  w.scale = json_vec(required(st, "scale"), "standardise.scale");
  if (w.mean.size() != w.scale.size() || w.mean.size() == 0) throw Error("'standardise' mean and scale differ in length");
  if (w.kind == WeightFunctionKind::Mlp) {
    const Json& layers = required(j, "layers");
    if (!layers.is_array() || layers.size() != 2) throw Error("'layers' must hold the hidden and the output layer");
    w.net.activation = mlp::parse_activation(j.value("activation", "tanh"));
    w.net.output = mlp::Output::Softmax;
    w.net.feature_layer = 0;
    for (const auto& l : layers)
      w.net.layers.push_back({json_matrix(required(l, "weight"), "weight"), json_vec(required(l, "bias"), "bias")});
    mlp::validate(w.net);
    if (w.net.input_dim() != w.mean.size() || w.net.output_dim() != K)
      throw Error("the MLP's shape does not match its covariates and models");
    return w;
  }
  w.bandwidth = required(j, "bandwidth").get<double>();
  if (!(w.bandwidth > 0)) throw Error("'bandwidth' must be positive");
  w.fit_u = json_matrix(required(j, "z"), "z", w.mean.size());
  Stack& s = w.fit_stack;
  s.kind = w.task;
  s.K = static_cast<int>(K);
  s.C = w.outputs;
  s.models = w.models;
  s.F = json_matrix(required(j, "predictions"), "predictions", K * w.outputs);
  if (s.F.rows() != w.fit_u.rows()) throw Error("'predictions' and 'z' differ in rows");
  if (w.task == TaskKind::Regression) {
    s.Y = json_matrix(required(j, "targets"), "targets", w.outputs);
    if (s.Y.rows() != s.F.rows()) throw Error("'targets' and 'predictions' differ in rows");
  } else {
    s.classes = required(j, "classes").get<std::vector<int>>();
    if (static_cast<Eigen::Index>(s.classes.size()) != s.F.rows()) throw Error("'classes' and 'predictions' differ in rows");
  }
  return w;
}

void WeightFunction::save(const std::filesystem::path& file, const Json& extra) const {
  Json j = to_json();
  if (extra.is_object())
    for (const auto& [k, v] : extra.items()) j[k] = v;
  io::write_file_atomic(file, json_text(j, 1) + "\n");
}

WeightFunction WeightFunction::load(const std::filesystem::path& file, Json* extra) {
  const std::string text = io::read_text_file(file);
  try {
    const Json j = Json::parse(text);
    WeightFunction w = from_json(j);
    if (extra) *extra = j;
    return w;
  } catch (const Json::exception& e) {
    throw DataError(file.string(), std::string("malformed weight function file: ") + e.what());
  } catch (const Error& e) {
    throw DataError(file.string(), e.what());
  }
}

}  // namespace caulk::avg
