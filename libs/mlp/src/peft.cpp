#include "caulk/mlp/peft.hpp"

#include <fmt/format.h>

#include <cmath>

#include "caulk/error.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::mlp {

PeftMode parse_peft_mode(const std::string& name) {
  if (name == "linear_probe") return PeftMode::LinearProbe;
  if (name == "partial") return PeftMode::Partial;
  if (name == "adapter") return PeftMode::Adapter;
  if (name == "lora") return PeftMode::Lora;
  if (name == "full") return PeftMode::Full;
  throw Error(fmt::format("unknown tuning mode '{}' (known: linear_probe, partial, adapter, lora, full)", name));
}

std::string peft_mode_name(PeftMode m) {
  switch (m) {
    case PeftMode::LinearProbe:
      return "linear_probe";
    case PeftMode::Partial:
      return "partial";
    case PeftMode::Adapter:
      return "adapter";
    case PeftMode::Lora:
      return "lora";
    case PeftMode::Full:
      return "full";
  }
  return "?";
}

namespace {

using seeding::SeededUniform;

void init_uniform(Mat<float>& m, double bound, SeededUniform& rng) {
  for (Eigen::Index j = 0; j < m.cols(); ++j)
    for (Eigen::Index i = 0; i < m.rows(); ++i) m(i, j) = float(rng.next(bound));
}
void init_uniform(Vec<float>& v, double bound, SeededUniform& rng) {
  for (Eigen::Index i = 0; i < v.size(); ++i) v(i) = float(rng.next(bound));
}
Dense<float> new_linear(int out, int in, SeededUniform& rng) {
  Dense<float> d;
  d.W.resize(out, in);
  d.b.resize(out);
  const double bound = 1.0 / std::sqrt(double(in));
  init_uniform(d.W, bound, rng);
  init_uniform(d.b, bound, rng);
  return d;
}
}  // namespace

TuningSetup prepare_tuning(const Model<float>& pretrained, const PeftOptions& o) {
  validate(pretrained);
  if (o.outputs < 1) throw Error("the target task needs at least one output");
  seeding::SeededUniform rng(o.seed);
  TuningSetup s;
  Model<float>& m = s.model;
  m.activation = pretrained.activation;
  m.output = o.output;
  m.feature_layer = pretrained.feature_layer;
  m.layers.assign(pretrained.layers.begin(), pretrained.layers.begin() + pretrained.feature_layer + 1);
  for (const auto& a : pretrained.adapters)
    if (a.after < pretrained.feature_layer + 1) m.adapters.push_back(a);
  for (const auto& l : pretrained.loras)
    if (l.layer <= pretrained.feature_layer) m.loras.push_back(l);
  m.layers.push_back(new_linear(o.outputs, pretrained.feature_dim(), rng));
  const int L = m.num_layers(), head = L - 1;
  if (m.adapter_after(pretrained.feature_layer) && o.mode == PeftMode::Adapter)
    throw Error("the pre-trained model already has an adapter after its feature layer");

  std::vector<int> trained_layers{head};
  switch (o.mode) {
    case PeftMode::LinearProbe:
      break;
    case PeftMode::Partial:
      if (o.partial_layers < 1 || o.partial_layers > L)
        throw Error(fmt::format("partial tuning of the last {} layers: the tuned model has {} (1..{})", o.partial_layers, L, L));
      for (int l = L - o.partial_layers; l < head; ++l) trained_layers.push_back(l);
      break;
    case PeftMode::Full:
      for (int l = 0; l < head; ++l) trained_layers.push_back(l);
      break;
    case PeftMode::Adapter: {
      if (o.rank < 1) throw Error("adapter width (rank) must be at least 1");
      const int after = o.adapter_after < 0 ? m.feature_layer : o.adapter_after;
      if (after > m.feature_layer)
        throw Error(fmt::format("an adapter after layer {} would sit in the head; allowed: 0..{}", after, m.feature_layer));
      if (m.adapter_after(after)) throw Error(fmt::format("layer {} already has an adapter", after));
      Adapter<float> a;
      a.after = after;
      const int h = m.layers[after].out();
      a.down = new_linear(o.rank, h, rng);
      a.up.W = Mat<float>::Zero(h, o.rank);  // the model is unchanged at start
      a.up.b = Vec<float>::Zero(h);
      m.adapters.push_back(std::move(a));
      std::sort(m.adapters.begin(), m.adapters.end(), [](const auto& x, const auto& y) { return x.after < y.after; });
      break;
    }
    case PeftMode::Lora: {
      if (o.rank < 1) throw Error("LoRA rank must be at least 1");
      std::vector<int> layers = o.lora_layers;
      if (layers.empty())
        for (int l = 0; l <= m.feature_layer; ++l) layers.push_back(l);
      std::sort(layers.begin(), layers.end());
      for (int l : layers) {
        if (l < 0 || l > m.feature_layer)
          throw Error(fmt::format("LoRA on layer {}: allowed layers are 0..{} (the head trains in full)", l, m.feature_layer));
        if (m.lora_of(l)) throw Error(fmt::format("layer {} already has LoRA (or is listed twice)", l));
        Lora<float> lo;
        lo.layer = l;
        lo.A.resize(o.rank, m.layers[l].in());
        init_uniform(lo.A, 1.0 / std::sqrt(double(m.layers[l].in())), rng);
        lo.B = Mat<float>::Zero(m.layers[l].out(), o.rank);
        lo.scale = (o.lora_alpha > 0 ? o.lora_alpha : double(o.rank)) / double(o.rank);
        m.loras.push_back(std::move(lo));
      }
      std::sort(m.loras.begin(), m.loras.end(), [](const auto& x, const auto& y) { return x.layer < y.layer; });
      break;
    }
  }
  validate(m);

  auto params = parameters(m);
  s.trainable.assign(params.size(), false);
  for (std::size_t k = 0; k < params.size(); ++k) {
    const std::string& n = params[k].name;
    bool train = false;
    for (int l : trained_layers)
      if (n == fmt::format("layers.{}.weight", l) || n == fmt::format("layers.{}.bias", l)) train = true;
    if (o.mode == PeftMode::Adapter) {
      const std::string prefix = fmt::format("adapters.{}.", o.adapter_after < 0 ? m.feature_layer : o.adapter_after);
      if (n.rfind(prefix, 0) == 0) train = true;
    }
    if (o.mode == PeftMode::Lora && n.rfind("lora.", 0) == 0) train = true;
    if (o.mode == PeftMode::Full) train = true;
    if (train) {
      s.trainable[k] = true;
      s.trainable_names.push_back(n);
      s.trainable_count += params[k].size();
    }
  }
  return s;
}

Model<float> fold_lora(const Model<float>& m) {
  Model<float> out = m;
  for (const auto& lo : m.loras) out.layers[lo.layer].W.noalias() += float(lo.scale) * (lo.B * lo.A);
  out.loras.clear();
  return out;
}

}  // namespace caulk::mlp
