#include "caulk/mlp/mlp.hpp"

#include <fmt/format.h>

#include <cmath>

#include "caulk/error.hpp"
#include "caulk/parallel.hpp"

namespace caulk::mlp {

std::string activation_name(Activation a) {
  switch (a) {
    case Activation::Relu:
      return "relu";
    case Activation::Gelu:
      return "gelu";
    case Activation::Tanh:
      return "tanh";
  }
  return "?";
}

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::Relu;
  if (name == "gelu") return Activation::Gelu;
  if (name == "tanh") return Activation::Tanh;
  throw Error(fmt::format("unknown activation '{}' (known: relu, gelu, tanh)", name));
}

template <class S>
const Adapter<S>* Model<S>::adapter_after(int layer) const {
  for (const auto& a : adapters)
    if (a.after == layer) return &a;
  return nullptr;
}

template <class S>
const Lora<S>* Model<S>::lora_of(int layer) const {
  for (const auto& l : loras)
    if (l.layer == layer) return &l;
  return nullptr;
}

template <class S>
std::size_t Model<S>::parameter_count() const {
  std::size_t n = 0;
  for (const auto& p : parameters(*this)) n += p.size();
  return n;
}

template <class S>
template <class T>
Model<T> Model<S>::cast() const {
  Model<T> m;
  m.activation = activation;
  m.output = output;
  m.feature_layer = feature_layer;
  for (const auto& l : layers) m.layers.push_back({l.W.template cast<T>(), l.b.template cast<T>()});
  for (const auto& a : adapters)
    m.adapters.push_back(
        {a.after, {a.down.W.template cast<T>(), a.down.b.template cast<T>()}, {a.up.W.template cast<T>(), a.up.b.template cast<T>()}});
  for (const auto& l : loras) m.loras.push_back({l.layer, l.A.template cast<T>(), l.B.template cast<T>(), l.scale});
  return m;
}

template <class S>
void validate(const Model<S>& m) {
  const int L = m.num_layers();
  if (L < 2) throw Error(fmt::format("an MLP needs at least two layers (features and a head), this one has {}", L));
  for (int l = 0; l < L; ++l) {
    const auto& d = m.layers[l];
    if (d.W.rows() == 0 || d.W.cols() == 0) throw Error(fmt::format("tensor 'layers.{}.weight' is empty", l));
    if (d.b.size() != d.W.rows())
      throw Error(fmt::format("tensor 'layers.{}.bias' has {} entries but 'layers.{}.weight' has {} rows", l, d.b.size(), l, d.W.rows()));
    if (l > 0 && d.W.cols() != m.layers[l - 1].W.rows())
      throw Error(fmt::format("tensor 'layers.{}.weight' takes {} inputs but layer {} has {} outputs", l, d.W.cols(), l - 1,
                              m.layers[l - 1].W.rows()));
  }
  if (m.feature_layer < 0 || m.feature_layer > L - 2)
    throw Error(fmt::format("feature_layer {} is out of range: a {}-layer MLP has features at layers 0..{}", m.feature_layer, L, L - 2));
  int previous = -1;
  for (const auto& a : m.adapters) {
    if (a.after < 0 || a.after > L - 2 || a.after <= previous)
      throw Error(fmt::format("adapter after layer {} is out of range or repeated (allowed: 0..{}, once each)", a.after, L - 2));
    previous = a.after;
    const auto h = m.layers[a.after].out();
    if (a.down.W.cols() != h || a.up.W.rows() != h || a.up.W.cols() != a.down.W.rows() || a.down.b.size() != a.down.W.rows() ||
        a.up.b.size() != a.up.W.rows())
      throw Error(fmt::format("tensors 'adapters.{}.*' do not fit layer {} of width {}", a.after, a.after, h));
  }
  previous = -1;
  for (const auto& l : m.loras) {
    if (l.layer < 0 || l.layer >= L || l.layer <= previous)
      throw Error(fmt::format("LoRA on layer {} is out of range or repeated", l.layer));
    previous = l.layer;
    const auto& d = m.layers[l.layer];
    if (l.A.cols() != d.in() || l.B.rows() != d.out() || l.A.rows() != l.B.cols() || l.A.rows() == 0)
      throw Error(fmt::format("tensors 'lora.{}.A' ({}x{}) and 'lora.{}.B' ({}x{}) do not fit layer {} ({}x{})", l.layer, l.A.rows(),
                              l.A.cols(), l.layer, l.B.rows(), l.B.cols(), l.layer, d.out(), d.in()));
  }
}

namespace {
template <class P, class M>
std::vector<ParamRef<P>> collect(M& m) {
  std::vector<ParamRef<P>> out;
  auto add = [&](std::string name, auto& t, bool bias) {
    out.push_back({std::move(name), t.data(), static_cast<int>(t.rows()), static_cast<int>(t.cols()), bias});
  };
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    add(fmt::format("layers.{}.weight", l), m.layers[l].W, false);
    add(fmt::format("layers.{}.bias", l), m.layers[l].b, true);
  }
  for (auto& a : m.adapters) {
    add(fmt::format("adapters.{}.down.weight", a.after), a.down.W, false);
    add(fmt::format("adapters.{}.down.bias", a.after), a.down.b, true);
    add(fmt::format("adapters.{}.up.weight", a.after), a.up.W, false);
    add(fmt::format("adapters.{}.up.bias", a.after), a.up.b, true);
  }
  for (auto& l : m.loras) {
    add(fmt::format("lora.{}.A", l.layer), l.A, false);
    add(fmt::format("lora.{}.B", l.layer), l.B, false);
  }
  return out;
}
}  // namespace

template <class S>
std::vector<ParamRef<S>> parameters(Model<S>& m) {
  return collect<S>(m);
}
template <class S>
std::vector<ParamRef<const S>> parameters(const Model<S>& m) {
  return collect<const S>(m);
}

template <class S>
Model<S> zeros_like(const Model<S>& m) {
  Model<S> z = m;
  for (auto& p : parameters(z)) std::fill(p.data, p.data + p.size(), S(0));
  return z;
}

// ---------------------------------------------------------------------------------------------

template <class S>
void apply_activation(Activation a, const Mat<S>& z, Mat<S>& h) {
  switch (a) {
    case Activation::Relu:
      h = z.cwiseMax(S(0));
      break;
    case Activation::Tanh:
      h = z.array().tanh();
      break;
    case Activation::Gelu:  // exact (erf) GELU, PyTorch's default
      h = z.unaryExpr([](S x) { return S(0.5) * x * (S(1) + std::erf(x * S(M_SQRT1_2))); });
      break;
  }
}

template <class S>
void multiply_activation_derivative(Activation a, const Mat<S>& z, Mat<S>& g) {
  switch (a) {
    case Activation::Relu:
      g = (z.array() > S(0)).select(g, S(0));
      break;
    case Activation::Tanh:
      g.array() *= S(1) - z.array().tanh().square();
      break;
    case Activation::Gelu:
      g.array() *= z.unaryExpr([](S x) {
                      const S cdf = S(0.5) * (S(1) + std::erf(x * S(M_SQRT1_2)));
                      const S pdf = std::exp(S(-0.5) * x * x) * S(0.3989422804014327);  // 1/sqrt(2 pi)
                      return cdf + x * pdf;
                    }).array();
      break;
  }
}

template <class S>
void softmax_columns(Mat<S>& z) {
  for (Eigen::Index j = 0; j < z.cols(); ++j) {
    auto c = z.col(j);
    c.array() -= c.maxCoeff();
    c = c.array().exp();
    c /= c.sum();
  }
}

namespace {
// Layer l on h: returns true after the output layer (then z holds the outputs), else h becomes the
// layer's activated, adapted output.
template <class S>
bool run_layer(const Model<S>& m, int l, Mat<S>& h, Mat<S>& z, Trace<S>* trace) {
  const auto& d = m.layers[l];
  z.noalias() = d.W * h;
  z.colwise() += d.b;
  if (const Lora<S>* lo = m.lora_of(l)) {
    Mat<S> ah = lo->A * h;
    z.noalias() += S(lo->scale) * (lo->B * ah);
    if (trace) trace->lora_hidden.push_back(std::move(ah));
  }
  if (trace) trace->input[l] = h;
  if (l == m.num_layers() - 1) {
    if (trace) trace->pre[l] = z;
    if (m.output == Output::Softmax) softmax_columns(z);
    if (trace) trace->output = z;
    return true;
  }
  apply_activation(m.activation, z, h);
  if (trace) trace->pre[l] = z;
  if (const Adapter<S>* a = m.adapter_after(l)) {
    Mat<S> u = a->down.W * h;
    u.colwise() += a->down.b;
    Mat<S> ua;
    apply_activation(m.activation, u, ua);
    if (trace) trace->adapter_in.push_back(h);
    h.noalias() += a->up.W * ua;
    h.colwise() += a->up.b;
    if (trace) {
      trace->adapter_pre.push_back(std::move(u));
      trace->adapter_act.push_back(std::move(ua));
    }
  }
  return false;
}
}  // namespace

template <class S>
Mat<S> forward(const Model<S>& m, const Mat<S>& X, Trace<S>* trace, int stop_after) {
  if (X.rows() != m.input_dim()) throw Error(fmt::format("the model takes {} inputs but the data has {} columns", m.input_dim(), X.rows()));
  if (trace) {
    *trace = Trace<S>{};
    trace->input.resize(m.num_layers());
    trace->pre.resize(m.num_layers());
  }
  Mat<S> h = X, z;
  for (int l = 0; l < m.num_layers(); ++l) {
    if (run_layer(m, l, h, z, trace)) return z;
    if (l == stop_after) return h;
  }
  return z;  // not reached: the output layer returns
}

RunOutputs run_batches(const Model<float>& m, const Eigen::Ref<const Mat<float>>& X, bool want_features, bool want_outputs, int batch) {
  if (X.rows() != m.input_dim()) throw Error(fmt::format("the model takes {} inputs but the data has {} columns", m.input_dim(), X.rows()));
  const Eigen::Index n = X.cols();
  RunOutputs out;
  if (want_features) out.features.resize(n, m.feature_dim());
  if (want_outputs) out.outputs.resize(n, m.output_dim());
  const std::size_t blocks = static_cast<std::size_t>((n + batch - 1) / batch);
  caulk::parallel_for(blocks, [&](std::size_t k) {
    const Eigen::Index first = static_cast<Eigen::Index>(k) * batch, count = std::min<Eigen::Index>(batch, n - first);
    Mat<float> h = X.middleCols(first, count), z;
    for (int l = 0; l < m.num_layers(); ++l) {
      if (run_layer<float>(m, l, h, z, nullptr)) break;
      if (l == m.feature_layer) {
        if (want_features) out.features.middleRows(first, count) = h.transpose();
        if (!want_outputs) return;
      }
    }
    out.outputs.middleRows(first, count) = z.transpose();
  });
  return out;
}

#define CAULK_MLP_INSTANTIATE(S)                                                       \
  template struct Model<S>;                                                            \
  template void validate<S>(const Model<S>&);                                          \
  template std::vector<ParamRef<S>> parameters<S>(Model<S>&);                          \
  template std::vector<ParamRef<const S>> parameters<S>(const Model<S>&);              \
  template Model<S> zeros_like<S>(const Model<S>&);                                    \
  template void apply_activation<S>(Activation, const Mat<S>&, Mat<S>&);               \
  template void multiply_activation_derivative<S>(Activation, const Mat<S>&, Mat<S>&); \
  template void softmax_columns<S>(Mat<S>&);                                           \
  template Mat<S> forward<S>(const Model<S>&, const Mat<S>&, Trace<S>*, int);
CAULK_MLP_INSTANTIATE(float)
CAULK_MLP_INSTANTIATE(double)
template Model<double> Model<float>::cast<double>() const;
template Model<float> Model<double>::cast<float>() const;
template Model<float> Model<float>::cast<float>() const;
template Model<double> Model<double>::cast<double>() const;

}  // namespace caulk::mlp
