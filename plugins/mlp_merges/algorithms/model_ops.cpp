#include "mlp_merges/algorithms/model_ops.hpp"

#include <fmt/format.h>

#include "caulk/error.hpp"

namespace caulk::mlp_merges {

namespace {
std::string shape_of(const mlp::ParamRef<const float>& p) {
  return p.is_bias ? fmt::format("[{}]", p.rows) : fmt::format("[{}, {}]", p.rows, p.cols);
}
std::string output_name(mlp::Output o) { return o == mlp::Output::Softmax ? "softmax" : "identity"; }
}  // namespace

void check_same_architecture(const std::vector<Model<float>>& models, const std::vector<std::string>& names) {
  if (models.empty()) return;
  const auto& first = models.front();
  const auto ref = mlp::parameters(first);
  for (std::size_t i = 1; i < models.size(); ++i) {
    const auto& m = models[i];
    const std::string a = names.at(0), b = names.at(i);
    if (m.activation != first.activation)
      throw Error(fmt::format("checkpoints of different architectures: model '{}' uses activation {} but '{}' uses {}", b,
                              mlp::activation_name(m.activation), a, mlp::activation_name(first.activation)));
    if (m.output != first.output)
      throw Error(fmt::format("checkpoints of different architectures: model '{}' has {} outputs but '{}' has {} outputs", b,
                              output_name(m.output), a, output_name(first.output)));
    if (m.feature_layer != first.feature_layer)
      throw Error(fmt::format("checkpoints of different architectures: model '{}' has its features at layer {} but '{}' at layer {}", b,
                              m.feature_layer, a, first.feature_layer));
    const auto other = mlp::parameters(m);
    for (std::size_t k = 0; k < std::max(ref.size(), other.size()); ++k) {
      if (k >= other.size())
        throw Error(
            fmt::format("checkpoints of different architectures: model '{}' has no tensor '{}' (model '{}' has)", b, ref[k].name, a));
      if (k >= ref.size() || other[k].name != ref[k].name)
        throw Error(fmt::format("checkpoints of different architectures: model '{}' has tensor '{}' where '{}' has {}", b, other[k].name, a,
                                k < ref.size() ? "'" + ref[k].name + "'" : "none"));
      if (other[k].rows != ref[k].rows || other[k].cols != ref[k].cols)
        throw Error(fmt::format("checkpoints of different architectures: tensor '{}' has shape {} in model '{}' but {} in '{}'",
                                ref[k].name, shape_of(other[k]), b, shape_of(ref[k]), a));
    }
  }
}

Model<float> average_models(const std::vector<const Model<float>*>& models, const std::vector<double>& weights) {
  if (models.empty()) throw Error("no models to average");
  if (!weights.empty() && weights.size() != models.size())
    throw Error(fmt::format("{} weights for {} models", weights.size(), models.size()));
  double total = 0;
  for (std::size_t i = 0; i < models.size(); ++i) total += weights.empty() ? 1.0 : weights[i];
  if (!(total != 0)) throw Error("the averaging weights sum to zero");
  Model<double> sum = mlp::zeros_like(*models.front()).cast<double>();
  auto out_params = mlp::parameters(sum);
  for (std::size_t i = 0; i < models.size(); ++i) {
    const double w = (weights.empty() ? 1.0 : weights[i]) / total;
    const auto in = mlp::parameters(*models[i]);
    for (std::size_t k = 0; k < out_params.size(); ++k)
      for (std::size_t e = 0; e < out_params[k].size(); ++e) out_params[k].data[e] += w * double(in[k].data[e]);
  }
  return sum.cast<float>();
}

Model<float> average_models(const std::vector<Model<float>>& models, const std::vector<double>& weights) {
  std::vector<const Model<float>*> p;
  for (const auto& m : models) p.push_back(&m);
  return average_models(p, weights);
}

template <class S>
Model<S> head_of(const Model<S>& m) {
  Model<S> h;
  h.activation = m.activation;
  h.output = m.output;
  h.feature_layer = 0;
  const int first = m.feature_layer + 1;
  for (int l = first; l < m.num_layers(); ++l) h.layers.push_back(m.layers[l]);
  for (const auto& a : m.adapters)
    if (a.after >= first) {
      auto moved = a;
      moved.after -= first;
      h.adapters.push_back(std::move(moved));
    }
  for (const auto& lo : m.loras)
    if (lo.layer >= first) {
      auto moved = lo;
      moved.layer -= first;
      h.loras.push_back(std::move(moved));
    }
  return h;
}
template Model<float> head_of(const Model<float>&);
template Model<double> head_of(const Model<double>&);

Model<float> scale_parameters(const Model<float>& m, double s, int layer) {
  Model<float> out = m;
  if (layer >= m.num_layers()) throw Error(fmt::format("layer {} does not exist: the model has layers 0..{}", layer, m.num_layers() - 1));
  if (layer >= 0) {
    out.layers[layer].W *= float(s);
    out.layers[layer].b *= float(s);
    return out;
  }
  for (auto& p : mlp::parameters(out))
    for (std::size_t e = 0; e < p.size(); ++e) p.data[e] = float(double(p.data[e]) * s);
  return out;
}

}  // namespace caulk::mlp_merges
