#include "caulk/mlp/backprop.hpp"

#include <fmt/format.h>

#include <cmath>

#include "caulk/error.hpp"
#include "caulk/parallel.hpp"

namespace caulk::mlp {

template <class S>
double loss_and_output_gradient(const Model<S>& m, const Trace<S>& t, const Targets<S>& y, double divisor, Mat<S>* dz) {
  const Mat<S>& z = t.pre.back();
  const Eigen::Index n = z.cols();
  double total = 0;
  if (m.output == Output::Softmax) {
    if (static_cast<Eigen::Index>(y.classes.size()) != n)
      throw Error(fmt::format("{} labels for a batch of {} samples", y.classes.size(), n));
    for (Eigen::Index i = 0; i < n; ++i) {
      const int c = y.classes[i];
      if (c < 0 || c >= z.rows()) throw Error(fmt::format("class {} is outside the model's {} outputs", c, z.rows()));
      const double mx = z.col(i).maxCoeff();
      double sum = 0;
      for (Eigen::Index k = 0; k < z.rows(); ++k) sum += std::exp(double(z(k, i)) - mx);
      total += mx + std::log(sum) - double(z(c, i));
    }
    if (dz) {
      *dz = t.output;
      for (Eigen::Index i = 0; i < n; ++i) (*dz)(y.classes[i], i) -= S(1);
      *dz /= S(divisor);
    }
  } else {
    if (y.values.rows() != z.rows() || y.values.cols() != n)
      throw Error(fmt::format("targets are {}x{} but the model gives {}x{}", y.values.rows(), y.values.cols(), z.rows(), n));
    const double scale = divisor * double(z.rows());
    total = (z - y.values).template cast<double>().squaredNorm();
    total *= double(divisor) / scale;  // mean over target columns; the divisor is applied below
    if (dz) *dz = (z - y.values) * S(2.0 / scale);
  }
  return total / divisor;
}

namespace {

// Where parameter gradients go: plain sums, or weighted per-sample squares.
template <class S>
struct Sink {
  std::vector<ParamRef<S>> grads;
  const std::vector<bool>& trainable;
  const Vec<S>* weights;

  bool wanted(std::size_t k) const { return trainable.empty() || trainable[k]; }
  void linear(std::size_t k, const Mat<S>& delta, const Mat<S>& input, S scale = S(1)) {
    if (!wanted(k)) return;
    Eigen::Map<Mat<S>> G(grads[k].data, grads[k].rows, grads[k].cols);
    if (!weights) {
      G.noalias() += scale * (delta * input.transpose());
    } else {
      Mat<S> d2 = delta.array().square().rowwise() * weights->transpose().array();
      G.noalias() += (scale * scale) * (d2 * input.array().square().matrix().transpose());
    }
  }
  void bias(std::size_t k, const Mat<S>& delta) {
    if (!wanted(k)) return;
    Eigen::Map<Vec<S>> g(grads[k].data, grads[k].rows);
    if (!weights)
      g.noalias() += delta.rowwise().sum();
    else
      g.noalias() += delta.array().square().matrix() * *weights;
  }
};

// The layer whose block (its weights, its LoRA, the adapter after it) holds parameter k.
template <class S>
int block_of(const Model<S>& m, std::size_t k) {
  const std::size_t L = m.layers.size(), nA = m.adapters.size();
  if (k < 2 * L) return static_cast<int>(k / 2);
  if (k < 2 * L + 4 * nA) return m.adapters[(k - 2 * L) / 4].after;
  return m.loras[(k - 2 * L - 4 * nA) / 2].layer;
}

}  // namespace

template <class S>
void backward(const Model<S>& m, const Trace<S>& t, Mat<S> dz, const std::vector<bool>& trainable, Model<S>& grad,
              const Vec<S>* sample_weights) {
  const int L = m.num_layers();
  const std::size_t nA = m.adapters.size(), lora_base = 2 * L + 4 * nA;
  int lowest = L;
  const std::size_t count = 2 * L + 4 * nA + 2 * m.loras.size();
  if (!trainable.empty() && trainable.size() != count)
    throw Error(fmt::format("trainable mask has {} entries for {} parameter tensors", trainable.size(), count));
  for (std::size_t k = 0; k < count; ++k)
    if (trainable.empty() || trainable[k]) lowest = std::min(lowest, block_of(m, k));
  if (lowest == L) return;  // nothing to train

  Sink<S> sink{parameters(grad), trainable, sample_weights};
  // Indices of LoRA and adapter entries by layer, matching the order the trace recorded them.
  std::vector<int> lora_index(L, -1), adapter_index(L, -1);
  for (std::size_t i = 0; i < m.loras.size(); ++i) lora_index[m.loras[i].layer] = static_cast<int>(i);
  for (std::size_t i = 0; i < nA; ++i) adapter_index[m.adapters[i].after] = static_cast<int>(i);

  for (int l = L - 1; l >= lowest; --l) {
    const auto& d = m.layers[l];
    sink.linear(2 * l, dz, t.input[l]);
    sink.bias(2 * l + 1, dz);
    Mat<S> bdz;
    const int li = lora_index[l];
    if (li >= 0) {
      const auto& lo = m.loras[li];
      const S s = S(lo.scale);
      sink.linear(lora_base + 2 * li + 1, dz, t.lora_hidden[li], s);  // B: s dz (A h)^T
      bdz = lo.B.transpose() * dz;
      sink.linear(lora_base + 2 * li, bdz, t.input[l], s);  // A: s (B^T dz) h^T
    }
    if (l == lowest) break;
    Mat<S> dh = d.W.transpose() * dz;
    if (li >= 0) dh.noalias() += S(m.loras[li].scale) * (m.loras[li].A.transpose() * bdz);
    const int ai = adapter_index[l - 1];
    if (ai >= 0) {
      const auto& a = m.adapters[ai];
      const std::size_t base = 2 * L + 4 * ai;
      sink.linear(base + 2, dh, t.adapter_act[ai]);
      sink.bias(base + 3, dh);
      Mat<S> du = a.up.W.transpose() * dh;
      multiply_activation_derivative(m.activation, t.adapter_pre[ai], du);
      sink.linear(base, du, t.adapter_in[ai]);
      sink.bias(base + 1, du);
      dh.noalias() += a.down.W.transpose() * du;
    }
    multiply_activation_derivative(m.activation, t.pre[l - 1], dh);
    dz = std::move(dh);
  }
}

template <class S>
double accumulate_gradient(const Model<S>& m, const Mat<S>& X, const Targets<S>& y, double divisor, const std::vector<bool>& trainable,
                           Model<S>& grad) {
  Trace<S> t;
  forward(m, X, &t);
  Mat<S> dz;
  const double loss = loss_and_output_gradient(m, t, y, divisor, &dz);
  backward(m, t, std::move(dz), trainable, grad);
  return loss;
}

Model<double> fisher_diagonal(const Model<double>& m, const Mat<double>& X, int batch) {
  const Eigen::Index n = X.cols();
  if (n == 0) throw Error("the Fisher information needs at least one sample");
  const Eigen::Index blocks = (n + batch - 1) / batch;
  // A fixed number of lanes, each summing its blocks in order, so the result does not depend on
  // the number of threads.
  const std::size_t lanes = static_cast<std::size_t>(std::min<Eigen::Index>(blocks, 8));
  std::vector<Model<double>> partial(lanes, zeros_like(m));
  const std::vector<bool> all;
  caulk::parallel_for(lanes, [&](std::size_t lane) {
    for (Eigen::Index b = static_cast<Eigen::Index>(lane); b < blocks; b += static_cast<Eigen::Index>(lanes)) {
      const Eigen::Index first = b * batch, count = std::min<Eigen::Index>(batch, n - first);
      Trace<double> t;
      forward(m, Mat<double>(X.middleCols(first, count)), &t);
      const Eigen::Index outputs = t.output.rows();
      for (Eigen::Index c = 0; c < outputs; ++c) {
        Mat<double> dz;
        Vec<double> w;
        if (m.output == Output::Softmax) {
          // d log p(c|x) / dz = e_c - p, weighted by p(c|x).
          dz = -t.output;
          dz.row(c).array() += 1.0;
          w = t.output.row(c).transpose();
        } else {
          dz = Mat<double>::Zero(outputs, count);
          dz.row(c).setOnes();
          w = Vec<double>::Ones(count);
        }
        backward(m, t, std::move(dz), all, partial[lane], &w);
      }
    }
  });
  Model<double> total = std::move(partial[0]);
  auto sum = parameters(total);
  for (std::size_t lane = 1; lane < lanes; ++lane) {
    auto part = parameters(partial[lane]);
    for (std::size_t k = 0; k < sum.size(); ++k)
      for (std::size_t i = 0; i < sum[k].size(); ++i) sum[k].data[i] += part[k].data[i];
  }
  for (auto& p : sum)
    for (std::size_t i = 0; i < p.size(); ++i) p.data[i] /= double(n);
  return total;
}

#define CAULK_BACKPROP_INSTANTIATE(S)                                                                                                     \
  template double loss_and_output_gradient<S>(const Model<S>&, const Trace<S>&, const Targets<S>&, double, Mat<S>*);                      \
  template double accumulate_gradient<S>(const Model<S>&, const Mat<S>&, const Targets<S>&, double, const std::vector<bool>&, Model<S>&); \
  template void backward<S>(const Model<S>&, const Trace<S>&, Mat<S>, const std::vector<bool>&, Model<S>&, const Vec<S>*);
CAULK_BACKPROP_INSTANTIATE(float)
CAULK_BACKPROP_INSTANTIATE(double)

}  // namespace caulk::mlp
