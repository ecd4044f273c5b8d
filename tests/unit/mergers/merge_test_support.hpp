// Small random checkpoints for the merge tests, and the independent reference computations'
// helpers: every value is read back and computed in double here, never through the engine.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "caulk/io/dtype.hpp"
#include "caulk/io/safetensors.hpp"
#include "temp_dir.hpp"

namespace caulk::merge_test {

namespace fs = std::filesystem;
using io::DType;

// A tensor's shape; the test checkpoints hold a few of them, of odd sizes so chunks do not align.
struct Shape {
  std::string name;
  std::vector<std::size_t> dims;
  std::size_t count() const {
    std::size_t n = 1;
    for (auto d : dims) n *= d;
    return n;
  }
};

inline const std::vector<Shape>& small_shapes() {
  static const std::vector<Shape> s{
      {"layers.0.weight", {7, 5}}, {"layers.0.bias", {7}}, {"layers.1.weight", {3, 7}}, {"layers.1.bias", {3}}, {"norm.scale", {1}}};
  return s;
}

// The value as stored in `t` (so reference computations use exactly what the file holds).
inline double stored(double x, DType t) {
  switch (t) {
    case DType::F16:
      return io::f16_to_f32(io::f32_to_f16(static_cast<float>(x)));
    case DType::BF16:
      return io::bf16_to_f32(io::f32_to_bf16(static_cast<float>(x)));
    case DType::F32:
      return static_cast<float>(x);
    default:
      return x;
  }
}

inline std::vector<std::byte> encode_values(const std::vector<double>& v, DType t) {
  std::vector<std::byte> out(v.size() * io::dtype_size(t));
  for (std::size_t i = 0; i < v.size(); ++i) {
    unsigned char* p = reinterpret_cast<unsigned char*>(out.data()) + i * io::dtype_size(t);
    if (t == DType::F64) {
      std::memcpy(p, &v[i], 8);
    } else if (t == DType::F32) {
      const float f = static_cast<float>(v[i]);
      std::memcpy(p, &f, 4);
    } else {
      const std::uint16_t h = t == DType::F16 ? io::f32_to_f16(static_cast<float>(v[i])) : io::f32_to_bf16(static_cast<float>(v[i]));
      std::memcpy(p, &h, 2);
    }
  }
  return out;
}

// "m" + number, built with append (GCC 12 warns falsely, -Wrestrict, on "literal" + std::string).
inline std::string numbered(const char* prefix, std::size_t n) {
  std::string s(prefix);
  s.append(std::to_string(n));
  return s;
}

// Values per tensor name.
using Values = std::map<std::string, std::vector<double>>;

// Writes `values` as `t` and returns the values as stored (rounded to t).
inline Values write_checkpoint(const fs::path& path, const Values& values, DType t, const std::vector<Shape>& shapes = small_shapes()) {
  std::vector<io::Tensor> tensors;
  Values as_stored;
  for (const Shape& s : shapes) {
    const auto& v = values.at(s.name);
    tensors.push_back({s.name, t, s.dims, encode_values(v, t)});
    auto& out = as_stored[s.name];
    for (double x : v) out.push_back(stored(x, t));
  }
  io::write_safetensors(path, tensors);
  return as_stored;
}

// Random values: around `center` (another checkpoint, for fine-tuned copies of a base) with noise.
inline Values random_values(std::uint64_t seed, double scale, const Values* center = nullptr,
                            const std::vector<Shape>& shapes = small_shapes()) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  Values v;
  for (const Shape& s : shapes)
    for (std::size_t i = 0; i < s.count(); ++i) v[s.name].push_back((center ? center->at(s.name)[i] : 0.0) + normal(rng));
  return v;
}

inline Values read_checkpoint(const fs::path& path) {
  const io::Checkpoint c = io::Checkpoint::open(path);
  Values v;
  for (const auto& name : c.names()) v[name] = c.to_double(name);
  return v;
}

inline DType dtype_of(const fs::path& path, const std::string& tensor) { return io::Checkpoint::open(path).info(tensor).dtype; }

// Half a unit in the last place of `x` in dtype t (the largest error of one correct rounding).
inline double half_ulp(double x, DType t) {
  const int bits = t == DType::F16 ? 11 : t == DType::BF16 ? 8 : t == DType::F32 ? 24 : 53;
  const double ax = std::fabs(x);
  const int min_exp = t == DType::F16 ? -14 : t == DType::F64 ? -1022 : -126;
  int e = ax > 0 ? std::ilogb(ax) : min_exp;
  if (e < min_exp) e = min_exp;
  return std::ldexp(1.0, e - bits);  // ulp = 2^(e - bits + 1)
}

// Every element of `got` within one output rounding (plus float arithmetic error `slack` relative
// to the magnitude of the inputs) of `expected`.
inline void expect_close(const Values& got, const Values& expected, DType out, double slack, const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  for (const auto& [name, e] : expected) {
    const auto& g = got.at(name);
    ASSERT_EQ(g.size(), e.size()) << what << " " << name;
    for (std::size_t i = 0; i < e.size(); ++i) {
      const double tolerance = half_ulp(e[i], out) * 1.0000001 + slack;
      EXPECT_NEAR(g[i], e[i], tolerance) << what << ": tensor " << name << " element " << i;
    }
  }
}

}  // namespace caulk::merge_test
