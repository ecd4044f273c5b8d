// Small problems for the averagers' tests.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "averagers/algorithms/combination.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::avg::testing {

// Uniform in [lo, hi) from a seeded stream.
class Draw {
 public:
  explicit Draw(std::uint64_t seed) : u_(seed) {}
  double uniform(double lo = 0, double hi = 1) { return lo + (hi - lo) * 0.5 * (u_.next(1.0) + 1.0); }
  double normal() {
    double a = 0;
    while (a <= 0) a = uniform();
    return std::sqrt(-2 * std::log(a)) * std::cos(2 * M_PI * uniform());
  }

 private:
  seeding::SeededUniform u_;
};

// A regression stack of K models with C outputs on N rows, random values.
inline Stack random_regression(int N, int K, int C, std::uint64_t seed) {
  Draw d(seed);
  std::vector<Matrix> preds(static_cast<std::size_t>(K), Matrix(N, C));
  Matrix y(N, C);
  for (int i = 0; i < N; ++i)
    for (int c = 0; c < C; ++c) {
      y(i, c) = d.normal();
      for (int k = 0; k < K; ++k) preds[static_cast<std::size_t>(k)](i, c) = y(i, c) + (0.3 + 0.3 * k) * d.normal() + 0.2 * k;
    }
  std::vector<const Matrix*> ptrs;
  std::vector<std::string> names;
  for (int k = 0; k < K; ++k) {
    ptrs.push_back(&preds[static_cast<std::size_t>(k)]);
    names.push_back(std::string("m").append(std::to_string(k)));
  }
  return make_stack(TaskKind::Regression, names, ptrs, &y, nullptr, "test");
}

// A classification stack: K models' probability rows over C classes on N rows.
inline Stack random_classification(int N, int K, int C, std::uint64_t seed) {
  Draw d(seed);
  std::vector<Matrix> preds(static_cast<std::size_t>(K), Matrix(N, C));
  std::vector<int> classes;
  for (int i = 0; i < N; ++i) {
    const int y = static_cast<int>(d.uniform() * C) % C;
    classes.push_back(y);
    for (int k = 0; k < K; ++k) {
      double sum = 0;
      for (int c = 0; c < C; ++c) {
        const double v = std::exp(d.normal() + (c == y ? 1.0 - 0.15 * k : 0.0));
        preds[static_cast<std::size_t>(k)](i, c) = v;
        sum += v;
      }
      preds[static_cast<std::size_t>(k)].row(i) /= sum;
    }
  }
  std::vector<const Matrix*> ptrs;
  std::vector<std::string> names;
  for (int k = 0; k < K; ++k) {
    ptrs.push_back(&preds[static_cast<std::size_t>(k)]);
    names.push_back(std::string("m").append(std::to_string(k)));
  }
  return make_stack(TaskKind::Classification, names, ptrs, nullptr, &classes, "test");
}

}  // namespace caulk::avg::testing
