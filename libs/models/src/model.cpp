// The interface's non-virtual parts and the generic Fisher information.
#include "caulk/models/model.hpp"

#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <numeric>

#include "caulk/error.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::models {

ForwardPass::~ForwardPass() = default;
Model::~Model() = default;

std::int64_t InputBatch::sample_size() const {
  return std::accumulate(shape.begin() + (shape.empty() ? 0 : 1), shape.end(), std::int64_t{1}, std::multiplies<>());
}

InputBatch InputBatch::slice(std::int64_t first, std::int64_t count) const {
  if (first < 0 || count < 0 || first + count > rows())
    throw Error(fmt::format("samples [{}, {}) are outside a batch of {}", first, first + count, rows()));
  InputBatch s = *this;
  s.shape[0] = count;
  s.data = static_cast<const std::byte*>(data) + first * sample_size() * static_cast<std::int64_t>(io::dtype_size(dtype));
  return s;
}

std::int64_t ParameterInfo::size() const { return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>()); }

std::string Model::describe() const { return fmt::format("model '{}' ({})", name_, file_.string()); }

std::size_t draw_class(std::span<const double> p, std::uint64_t draw) {
  const double u = double(draw >> 11) * 0x1.0p-53;
  double cumulative = 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    cumulative += p[k];
    if (u < cumulative) return k;
  }
  // Rounding left the cumulative sum just below u: the last class with mass.
  for (std::size_t k = p.size(); k-- > 0;)
    if (p[k] > 0) return k;
  return p.empty() ? 0 : p.size() - 1;
}

// Per sample: one forward pass, then one backward pass per class (classification: from
// d log p(y|x) / d logits = e_y - p, weighted by p(y|x)) or per output column (regression: from
// e_t, weight 1), squaring the gradients. Every parameter trains for the duration.
FisherDiagonal Model::fisher_diagonal(const InputBatch& x, bool sampled, std::uint64_t seed) {
  const bool logits = output_kind() == OutputKind::Logits;
  if (sampled && !logits)
    throw Error(
        fmt::format("{}: the sampled Fisher information draws classes; this model's outputs are values (use the exact one)", describe()));
  const std::vector<std::string> was_trainable = trainable();
  std::vector<std::string> all;
  for (const auto& p : parameters()) all.push_back(p.name);
  set_trainable(all);

  FisherDiagonal total;
  for (const auto& p : parameters()) {
    total.names.push_back(p.name);
    total.values.emplace_back(static_cast<std::size_t>(p.size()), 0.0);
  }
  seeding::SeededUniform rng(seed);
  try {
    for (std::int64_t i = 0; i < x.rows(); ++i) {
      auto pass = forward(x.slice(i, 1));
      const RowMatrixF& z = pass->values.outputs;
      const Eigen::Index classes = z.cols();
      std::vector<double> p(static_cast<std::size_t>(classes), 1.0);
      if (logits) {
        const double mx = z.maxCoeff();
        double sum = 0;
        for (Eigen::Index k = 0; k < classes; ++k) sum += p[k] = std::exp(double(z(0, k)) - mx);
        for (double& v : p) v /= sum;
      }
      std::vector<std::size_t> classes_used;
      if (sampled)
        classes_used.push_back(draw_class(p, rng.next_u64()));
      else
        for (Eigen::Index k = 0; k < classes; ++k) classes_used.push_back(static_cast<std::size_t>(k));
      for (std::size_t y : classes_used) {
        const double weight = sampled ? 1.0 : p[y];
        if (weight == 0) continue;
        RowMatrixF d = RowMatrixF::Zero(1, classes);
        if (logits)
          for (Eigen::Index k = 0; k < classes; ++k) d(0, k) = float((k == Eigen::Index(y) ? 1.0 : 0.0) - p[k]);
        else
          d(0, Eigen::Index(y)) = 1;
        Gradients g;
        backward(*pass, nullptr, &d, g);
        for (std::size_t t = 0; t < g.names.size(); ++t)
          for (std::size_t j = 0; j < g.values[t].size(); ++j) total.values[t][j] += weight * double(g.values[t][j]) * g.values[t][j];
      }
    }
  } catch (...) {
    set_trainable(was_trainable);
    throw;
  }
  set_trainable(was_trainable);
  return total;
}

}  // namespace caulk::models
