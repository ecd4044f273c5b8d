// The TorchScript family: a module saved by torch.jit.save, run on libtorch (docs/models.md).
//
// Parameters are the module's named_parameters(), plus a new head ("head.weight", "head.bias")
// and LoRA factors ("<weight>.lora_A", "<weight>.lora_B") when tuning adds them. Every parameter
// is a leaf tensor held here; the module's slot of a weight with LoRA holds W0 + scale B A instead
// (detached between passes, the graph-connected sum during forward()), which is how the module
// sees the reparameterised weight without knowing about it.
//
// Internal to libcaulk_models_torch.so: only the two entry points in torchscript_model.cpp are
// exported. Keep the files that include libtorch few (each takes seconds to compile).
#pragma once
#include <torch/script.h>

#include <atomic>
#include <optional>

#include "caulk/models/model.hpp"

namespace caulk::models::torchscript {

struct Param {
  std::string name;
  at::Tensor value;                         // the leaf tensor (W0 for a weight with LoRA)
  std::optional<torch::jit::Module> owner;  // the submodule whose slot holds it (none: head, factors)
  std::string attribute;                    // the slot's name in `owner`
  bool trainable = true;
};

struct Lora {
  std::string weight;  // the reparameterised parameter's name
  double scale = 1;    // alpha / rank
};

class TorchScriptModel final : public Model {
 public:
  static std::unique_ptr<TorchScriptModel> open(const ModelSource& source);

  std::string family() const override { return "torchscript"; }
  OutputKind output_kind() const override { return kind_; }
  std::vector<std::int64_t> input_shape() const override { return {}; }
  std::optional<io::DType> input_dtype() const override { return std::nullopt; }
  std::int64_t feature_dim() const override { return feature_dim_.load(); }
  std::int64_t output_dim() const override { return output_dim_.load(); }

  Outputs run(const InputBatch& x, bool want_features, bool want_outputs) const override;

  std::vector<ParameterInfo> parameters() const override;
  void read_parameter(const std::string& name, std::span<float> out) const override;
  void write_parameter(const std::string& name, std::span<const float> values) override;

  void replace_head(std::int64_t outputs, OutputKind kind, std::uint64_t seed, std::int64_t features = -1) override;
  std::vector<std::string> head_parameters() const override;
  void set_trainable(const std::vector<std::string>& names) override;
  std::vector<std::string> trainable() const override;
  std::vector<std::string> add_lora(const std::vector<std::string>& weights, int rank, double alpha, std::uint64_t seed) override;
  void fold_lora() override;

  std::unique_ptr<ForwardPass> forward(const InputBatch& x) override;
  void backward(ForwardPass& pass, const RowMatrixF* d_features, const RowMatrixF* d_outputs, Gradients& grad) override;
  FisherDiagonal fisher_diagonal(const InputBatch& x, bool sampled, std::uint64_t seed) override;

  void save(const std::filesystem::path& path) const override;
  std::unique_ptr<Model> clone() const override;

 private:
  TorchScriptModel(std::string name, std::filesystem::path file, torch::jit::Module module, std::string feature_method);

  // A DataError "FILE: model 'NAME': problem".
  [[noreturn]] void fail(const std::string& problem) const;
  std::size_t index_of(const std::string& name) const;  // in params_; throws Error
  at::Tensor to_tensor(const InputBatch& x) const;
  // Features (N x D) and outputs (N x C) of a batch, with autograd when grad mode is on; the
  // slots of weights with LoRA hold graph-connected sums during the call when `graph`.
  std::pair<at::Tensor, at::Tensor> compute(const at::Tensor& input, bool want_features, bool want_outputs, bool graph) const;
  // The slot value of a weight with LoRA: W0 + scale B A (graph-connected or detached).
  at::Tensor effective_weight(const Lora& lora, bool graph) const;
  void refresh_slots();  // puts every LoRA weight's detached sum in its slot
  void set_slot(const Param& p, const at::Tensor& value) const;
  const Lora* lora_of(const std::string& weight) const;

  torch::jit::Module module_;
  std::string feature_method_;  // "" = forward's output
  std::vector<Param> params_;   // named_parameters() order; factors after their weight; head last
  std::vector<Lora> loras_;
  std::optional<std::string> head_prefix_;  // "head" (or "caulk_head" when the module has a "head")
  OutputKind kind_ = OutputKind::Logits;
  mutable std::atomic<std::int64_t> feature_dim_{-1}, output_dim_{-1};
};

// The first useful line of libtorch's exception text (which carries TorchScript tracebacks and
// C++ backtraces): the last "...Error: message" line, or else the first line.
std::string short_error(const std::exception& e);

// Once per process: one intra-op and one inter-op thread (callers parallelise over batches, so
// results do not depend on --jobs).
void configure_threads();

}  // namespace caulk::models::torchscript
