// Helpers of the model-interface tests: arrays from .npy files, input batches, relative errors.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "caulk/io/npy.hpp"
#include "caulk/models/model.hpp"

namespace caulk::models::testing {

// An .npy array kept alive with a batch view of it (N x ...).
struct NpyBatch {
  io::NpyArray array;
  InputBatch batch;
  explicit NpyBatch(const std::filesystem::path& path) : array(io::NpyArray::open(path)) {
    batch.dtype = array.dtype();
    for (auto s : array.shape()) batch.shape.push_back(static_cast<std::int64_t>(s));
    batch.data = array.data();
  }
};

// Every element as double, in C order.
inline std::vector<double> npy_values(const std::filesystem::path& path) {
  const auto a = io::NpyArray::open(path);
  std::vector<double> out(a.size());
  io::convert_to_double(a.data(), a.dtype(), a.size(), out.data());
  return out;
}

inline std::vector<float> npy_floats(const std::filesystem::path& path) {
  const auto v = npy_values(path);
  return std::vector<float>(v.begin(), v.end());
}

// N x (product of the other dimensions), float32.
inline RowMatrixF npy_matrix(const std::filesystem::path& path) {
  const auto a = io::NpyArray::open(path);
  const Eigen::Index n = a.shape().empty() ? 1 : static_cast<Eigen::Index>(a.shape()[0]);
  const Eigen::Index cols = n == 0 ? 0 : static_cast<Eigen::Index>(a.size()) / n;
  RowMatrixF m(n, cols);
  io::convert_to_float(a.data(), a.dtype(), a.size(), m.data());
  return m;
}

// max |a - b| / max |b|: the largest error relative to the largest reference entry.
template <class A, class B>
double relative_error(const A& a, const B& b) {
  double worst = 0, scale = 0;
  EXPECT_EQ(std::size(a), std::size(b));
  auto ia = std::begin(a);
  for (auto ib = std::begin(b); ib != std::end(b) && ia != std::end(a); ++ia, ++ib) {
    worst = std::max(worst, std::abs(double(*ia) - double(*ib)));
    scale = std::max(scale, std::abs(double(*ib)));
  }
  return scale > 0 ? worst / scale : worst;
}

inline double relative_error(const RowMatrixF& a, const RowMatrixF& b) {
  EXPECT_EQ(a.rows(), b.rows());
  EXPECT_EQ(a.cols(), b.cols());
  if (a.rows() != b.rows() || a.cols() != b.cols()) return INFINITY;
  const double scale = b.cwiseAbs().maxCoeff();
  const double worst = (a - b).cwiseAbs().maxCoeff();
  return scale > 0 ? worst / scale : worst;
}

inline std::vector<float> read(const Model& m, const std::string& name) {
  for (const auto& p : m.parameters())
    if (p.name == name) {
      std::vector<float> v(static_cast<std::size_t>(p.size()));
      m.read_parameter(name, v);
      return v;
    }
  ADD_FAILURE() << "no parameter " << name;
  return {};
}

inline std::vector<std::string> names_of(const std::vector<ParameterInfo>& params) {
  std::vector<std::string> out;
  for (const auto& p : params) out.push_back(p.name);
  return out;
}

}  // namespace caulk::models::testing
