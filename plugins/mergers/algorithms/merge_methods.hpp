// The element-wise merge methods (formulas in docs/mergers.md). Each is a
// MergeMethod for the engine; every coefficient may vary per tensor (TensorParameter rules).
//
// Weights are per model, in the inputs' order. `base` is the pre-trained model theta_0 that
// task-vector methods subtract: d_i = theta_i - theta_0.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mergers/algorithms/merge_engine.hpp"
#include "mergers/algorithms/tensor_rules.hpp"

namespace caulk::merge {

// theta = sum_i w_i theta_i / sum_i w_i (normalize), or sum_i w_i theta_i.
class LinearMerge : public MergeMethod {
 public:
  LinearMerge(std::vector<TensorParameter> weights, bool normalize) : weights_(std::move(weights)), normalize_(normalize) {}
  std::string name() const override { return "linear"; }
  void check(const MergeInputs& inputs) const override;
  std::unique_ptr<TensorState> start(const std::string& tensor, std::size_t elements, std::size_t models) const override;
  void combine(TensorState* s, const Chunk<float>& c, float* out) const override;
  void combine(TensorState* s, const Chunk<double>& c, double* out) const override;

 private:
  std::vector<TensorParameter> weights_;
  bool normalize_;
};

// theta = theta_0 + lambda sum_i w_i d_i   (divided by sum_i w_i when normalize).
class TaskArithmeticMerge : public MergeMethod {
 public:
  TaskArithmeticMerge(std::vector<TensorParameter> weights, TensorParameter lambda, bool normalize)
      : weights_(std::move(weights)), lambda_(std::move(lambda)), normalize_(normalize) {}
  std::string name() const override { return "task arithmetic"; }
  bool uses_base() const override { return true; }
  void check(const MergeInputs& inputs) const override;
  std::unique_ptr<TensorState> start(const std::string& tensor, std::size_t elements, std::size_t models) const override;
  void combine(TensorState* s, const Chunk<float>& c, float* out) const override;
  void combine(TensorState* s, const Chunk<double>& c, double* out) const override;

 private:
  std::vector<TensorParameter> weights_;
  TensorParameter lambda_;
  bool normalize_;
};

// TIES: per model, keep the round(density * n) largest |d_i| (ties at the threshold: the first
// ones in storage order); elect each entry's sign as the sign of sum_i w_i kept_i (a zero sum
// elects +, as mergekit does); theta = theta_0 + lambda * (sum over kept entries agreeing with the
// elected sign of w_i d_i), divided by the sum of their w_i when `normalize` (the disjoint mean of
// the TIES paper and mergekit's ties; 0 where none agrees).
class TiesMerge : public MergeMethod {
 public:
  TiesMerge(std::vector<TensorParameter> weights, TensorParameter density, TensorParameter lambda, bool normalize = true)
      : weights_(std::move(weights)), density_(std::move(density)), lambda_(std::move(lambda)), normalize_(normalize) {}
  std::string name() const override { return "TIES"; }
  bool uses_base() const override { return true; }
  void check(const MergeInputs& inputs) const override;
  int statistics_passes(Precision p) const override { return p == Precision::F32 ? 2 : 4; }
  std::unique_ptr<TensorState> start(const std::string& tensor, std::size_t elements, std::size_t models) const override;
  void observe(TensorState* s, int pass, const Chunk<float>& c) const override;
  void observe(TensorState* s, int pass, const Chunk<double>& c) const override;
  void end_pass(TensorState* s, int pass) const override;
  void combine(TensorState* s, const Chunk<float>& c, float* out) const override;
  void combine(TensorState* s, const Chunk<double>& c, double* out) const override;

 private:
  std::vector<TensorParameter> weights_;
  TensorParameter density_, lambda_;
  bool normalize_;
};

// DARE: every task-vector entry is kept with probability `density` (dropped with p = 1 - density)
// and the kept ones rescaled by 1 / density; then task arithmetic (Combine::Linear) or TIES sign
// election (Combine::Ties) and the sum of the agreeing entries; `normalize` divides either sum by
// its weights (all of them, or the agreeing ones), as mergekit's dare_linear and dare_ties do
// (both default to false there). The draw for element j of tensor T of model M is the
// (j+1)-th output of a SplitMix64 stream seeded from (seed, T, M): the same whatever the chunking,
// the order of the models or --jobs.
class DareMerge : public MergeMethod {
 public:
  enum class Combine { Linear, Ties };
  DareMerge(std::vector<TensorParameter> weights, TensorParameter density, TensorParameter lambda, Combine combine, bool normalize,
            std::uint64_t seed)
      : weights_(std::move(weights)),
        density_(std::move(density)),
        lambda_(std::move(lambda)),
        combine_(combine),
        normalize_(normalize),
        seed_(seed) {}
  std::string name() const override { return "DARE"; }
  bool uses_base() const override { return true; }
  void check(const MergeInputs& inputs) const override;
  void prepare(const MergeInputs& inputs, std::size_t chunk_elements) override;
  std::unique_ptr<TensorState> start(const std::string& tensor, std::size_t elements, std::size_t models) const override;
  void combine(TensorState* s, const Chunk<float>& c, float* out) const override;
  void combine(TensorState* s, const Chunk<double>& c, double* out) const override;
  // The uniform draw in [0, 1) that decides element `element` of `tensor` in `model`.
  static double draw(std::uint64_t seed, const std::string& tensor, const std::string& model, std::uint64_t element);

 private:
  std::vector<TensorParameter> weights_;
  TensorParameter density_, lambda_;
  Combine combine_;
  bool normalize_;
  std::uint64_t seed_;
  std::vector<std::string> model_names_;  // set by prepare()
};

// SLERP of two models at t: with cos = <a, b> / (|a| |b|) over the whole tensor (a norm <= 1e-8
// counts as 1, as mergekit does), theta = sin((1-t) w)/sin(w) a + sin(t w)/sin(w) b with
// w = acos(cos); linear (1-t) a + t b when |cos| > 0.9995. Norms and the dot product are summed in
// double whatever the precision.
class SlerpMerge : public MergeMethod {
 public:
  explicit SlerpMerge(TensorParameter t) : t_(std::move(t)) {}
  std::string name() const override { return "SLERP"; }
  void check(const MergeInputs& inputs) const override;
  int statistics_passes(Precision) const override { return 1; }
  std::unique_ptr<TensorState> start(const std::string& tensor, std::size_t elements, std::size_t models) const override;
  void observe(TensorState* s, int pass, const Chunk<float>& c) const override;
  void observe(TensorState* s, int pass, const Chunk<double>& c) const override;
  void end_pass(TensorState* s, int pass) const override;
  void combine(TensorState* s, const Chunk<float>& c, float* out) const override;
  void combine(TensorState* s, const Chunk<double>& c, double* out) const override;
  // The two coefficients (s_a, s_b) for a cosine and t; `linear` says whether it fell back.
  static std::pair<double, double> coefficients(double cosine, double t, bool* linear = nullptr);

 private:
  TensorParameter t_;
};

// Fisher merging: theta = sum_i c_i F'_i theta_i / sum_i c_i F'_i element-wise, with the floored
// Fisher F'_i = max(F_i, floor) (FloorMode::Max, Matena and Raffel's code) or F_i + floor
// (FloorMode::Add, FusionBench's), and c_i = lambda_i, divided when normalize_fisher by the
// whole-model L2 norm of F_i (Max) or by that norm + floor (Add, as FusionBench). Where the
// denominator is 0 (floor 0, no Fisher mass) the entry falls back to sum_i c_i theta_i / sum_i c_i.
// Negative or non-finite Fisher entries are errors.
class FisherMerge : public MergeMethod {
 public:
  enum class FloorMode { Max, Add };
  FisherMerge(std::vector<TensorParameter> lambdas, double floor, FloorMode mode, bool normalize_fisher)
      : lambdas_(std::move(lambdas)), floor_(floor), mode_(mode), normalize_(normalize_fisher) {}
  std::string name() const override { return "Fisher merging"; }
  bool uses_fisher() const override { return true; }
  void check(const MergeInputs& inputs) const override;
  void prepare(const MergeInputs& inputs, std::size_t chunk_elements) override;
  // The norms: each is a pass over a whole Fisher file, so other processes adopt them.
  std::vector<double> prepared_values() const override { return norms_; }
  void adopt_prepared(const MergeInputs& inputs, const std::vector<double>& norms, std::size_t chunk_elements) override;
  std::unique_ptr<TensorState> start(const std::string& tensor, std::size_t elements, std::size_t models) const override;
  void combine(TensorState* s, const Chunk<float>& c, float* out) const override;
  void combine(TensorState* s, const Chunk<double>& c, double* out) const override;
  // The whole-model L2 norms of the Fisher files (after prepare with normalize_fisher).
  const std::vector<double>& fisher_norms() const { return norms_; }

 private:
  std::vector<TensorParameter> lambdas_;
  double floor_;
  FloorMode mode_;
  bool normalize_;
  std::vector<double> norms_;
  std::vector<std::string> fisher_files_;
};

// The whole-model L2 norm of model i's Fisher file, streamed in chunks. Throws DataError naming
// the file, the tensor and the element of a NaN or infinite value.
double fisher_norm(const MergeInputs& inputs, std::size_t model, std::size_t chunk_elements);

}  // namespace caulk::merge
