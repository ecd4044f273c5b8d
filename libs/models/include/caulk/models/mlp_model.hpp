// The MLP family: caulk's native multilayer perceptron (docs/models.md) behind the model
// interface. Parameters are its checkpoint names (layers.{l}.weight, lora.{l}.A, ...); its Fisher
// is the vectorised one of the MLP runtime.
//
// Features are the activated output of the feature layer (after its adapter); outputs are the
// output layer's pre-activation: logits for a softmax MLP, values for an identity one.
// replace_head and add_lora follow the MLP's tuning set-up (prepare_tuning): the head keeps the
// checkpoint name layers.{feature_layer+1}, and LoRA goes on layers up to the features.
#pragma once
#include <memory>

#include "caulk/models/model.hpp"
#include "caulk/mlp/mlp.hpp"

namespace caulk::models {

class MlpModel final : public Model {
 public:
  MlpModel(std::string name, std::filesystem::path file, mlp::Model<float> model);
  // Loads a checkpoint (file or sharded folder; deltas resolved); throws DataError.
  static std::unique_ptr<MlpModel> open(const std::string& name, const std::filesystem::path& checkpoint);

  const mlp::Model<float>& mlp() const { return model_; }

  std::string family() const override { return "mlp"; }
  OutputKind output_kind() const override;
  std::vector<std::int64_t> input_shape() const override { return {model_.input_dim()}; }
  std::optional<io::DType> input_dtype() const override { return io::DType::F32; }
  std::int64_t feature_dim() const override { return model_.feature_dim(); }
  std::int64_t output_dim() const override { return model_.output_dim(); }

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
  // The batch as the MLP runtime takes it: input_dim x N (the memory of a row-major N x dim).
  Eigen::Map<const mlp::Mat<float>> columns(const InputBatch& x) const;
  std::size_t index_of(const std::string& name) const;  // in parameters(); throws Error

  mlp::Model<float> model_;
  std::vector<bool> trainable_;  // per parameters() entry
  bool new_head_ = false;
};

}  // namespace caulk::models
