// Small random MLPs and matrices for the mlp_merges tests, and hand-written forward passes that do
// not go through the runtime under test.
#pragma once
#include <cmath>
#include <random>
#include <vector>

#include "caulk/mlp/mlp.hpp"

namespace caulk::mlp_merges::testing {

using mlp::Mat;

inline Mat<double> random_matrix(Eigen::Index r, Eigen::Index c, std::mt19937_64& rng, double scale = 1.0) {
  std::normal_distribution<double> nd(0.0, scale);
  Mat<double> m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = nd(rng);
  return m;
}

// widths = {inputs, hidden..., outputs}; the feature layer is the last hidden one.
inline mlp::Model<float> random_model(const std::vector<int>& widths, std::uint64_t seed, bool biases = true,
                                      mlp::Output out = mlp::Output::Softmax) {
  std::mt19937_64 rng(seed);
  mlp::Model<float> m;
  m.activation = mlp::Activation::Relu;
  m.output = out;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    mlp::Dense<float> d;
    d.W = random_matrix(widths[l + 1], widths[l], rng, 1.0 / std::sqrt(double(widths[l]))).cast<float>();
    d.b = biases ? Mat<double>(random_matrix(widths[l + 1], 1, rng, 0.3)).col(0).cast<float>().eval()
                 : mlp::Vec<float>::Zero(widths[l + 1]).eval();
    m.layers.push_back(d);
  }
  m.feature_layer = m.num_layers() - 2;
  return m;
}

// ReLU of a matrix, by hand.
inline Mat<double> relu(Mat<double> z) {
  for (Eigen::Index i = 0; i < z.size(); ++i) z.data()[i] = z.data()[i] > 0 ? z.data()[i] : 0.0;
  return z;
}

// Softmax of each row, by hand.
inline Mat<double> softmax_rows(Mat<double> z) {
  for (Eigen::Index i = 0; i < z.rows(); ++i) {
    double mx = z(i, 0);
    for (Eigen::Index c = 1; c < z.cols(); ++c) mx = std::max(mx, z(i, c));
    double s = 0;
    for (Eigen::Index c = 0; c < z.cols(); ++c) s += (z(i, c) = std::exp(z(i, c) - mx));
    for (Eigen::Index c = 0; c < z.cols(); ++c) z(i, c) /= s;
  }
  return z;
}

// Rows = samples (N x P) through a ReLU MLP without adapters: the activated output of each hidden
// layer (hidden[l] = input of layer l + 1) and the N x C outputs (softmax or identity).
struct HandForward {
  std::vector<Mat<double>> hidden;
  Mat<double> output;
};
inline HandForward hand_forward(const mlp::Model<float>& m, const Mat<double>& X_rows) {
  HandForward f;
  Mat<double> h = X_rows;
  for (int l = 0; l < m.num_layers(); ++l) {
    Mat<double> z = h * m.layers[l].W.cast<double>().transpose();
    for (Eigen::Index i = 0; i < z.rows(); ++i) z.row(i) += m.layers[l].b.cast<double>().transpose();
    if (l + 1 < m.num_layers()) {
      h = relu(z);
      f.hidden.push_back(h);
    } else {
      f.output = m.output == mlp::Output::Softmax ? softmax_rows(z) : z;
    }
  }
  return f;
}

}  // namespace caulk::mlp_merges::testing
