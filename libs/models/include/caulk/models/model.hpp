// The model interface: what every node that runs, tunes or analyses a model sees, whatever the
// model is (caulk's native MLP, a TorchScript module on libtorch, an ONNX graph for inference).
// Nodes use only this header; model families implement it (docs/models.md).
//
// Conventions, for every family:
// - Inputs are N samples of any shape, row-major (C order): float32 (tabular rows, N x C x H x W
//   images) or int64 (N x L token ids). A family refuses another dtype or a shape it cannot take
//   with a DataError naming the model and what it expected.
// - `features` are N x D (float32, row-major): the representation rankers score and new heads
//   read. `outputs` are the model's head: source-task logits (classification; probabilities are
//   their softmax, taken by caulk) or values (regression), N x C.
// - Parameters are named as PyTorch's named_parameters() names them ("layer4.1.conv2.weight",
//   "fc.bias"); for the MLP, its checkpoint names ("layers.0.weight"). Shapes as PyTorch's.
//   Values cross the interface as float32, row-major (C order), whatever the storage.
// - Thread safety: run() is const and may be called from several threads at once. Everything
//   else (parameters, training) is called from one thread at a time.
// - Determinism: a family computes each sample's outputs independently of how samples are batched
//   only up to rounding; callers batch in a fixed way (by a batch size, never by --jobs), and the
//   family uses one intra-op thread, so results do not depend on --jobs.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "caulk/io/dtype.hpp"
#include "caulk/matrix.hpp"

namespace caulk::models {

// A batch of N samples: shape {N, ...}, row-major, F32 or I64. Does not own its data.
struct InputBatch {
  io::DType dtype = io::DType::F32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
  std::int64_t rows() const { return shape.empty() ? 0 : shape.front(); }
};

enum class OutputKind { Logits, Values };  // classification (softmax of logits) or regression

struct ParameterInfo {
  std::string name;
  std::vector<std::int64_t> shape;
  std::int64_t size() const;  // number of elements
};

// What a forward pass returns. A matrix not asked for is left empty.
struct Outputs {
  RowMatrixF features;  // N x D
  RowMatrixF outputs;   // N x C (logits or values)
};

// A forward pass that keeps what its backward pass needs (a family's own tape).
class ForwardPass {
 public:
  virtual ~ForwardPass();
  Outputs values;
};

// Gradients of the trainable parameters, by name, float32 row-major, summed over a batch.
struct Gradients {
  std::vector<std::string> names;
  std::vector<std::vector<float>> values;
};

class Model {
 public:
  virtual ~Model();

  // --- identity
  virtual std::string family() const = 0;  // "mlp", "torchscript", "onnx"
  virtual OutputKind output_kind() const = 0;
  // Sample shape without N ({64} for an MLP of 64 inputs; {3, 224, 224}); empty when the model
  // takes any shape. Input dtype the model expects.
  virtual std::vector<std::int64_t> input_shape() const = 0;
  virtual io::DType input_dtype() const = 0;
  virtual std::int64_t feature_dim() const = 0;
  virtual std::int64_t output_dim() const = 0;

  // --- inference (const, thread-safe)
  virtual Outputs run(const InputBatch& x, bool want_features, bool want_outputs) const = 0;

  // --- parameters
  virtual std::vector<ParameterInfo> parameters() const = 0;  // in named_parameters() order
  // Copies a parameter out / in (float32, row-major, `out.size()` == its size). Throws Error
  // naming the model and the parameter when it does not exist or the size differs.
  virtual void read_parameter(const std::string& name, std::span<float> out) const = 0;
  virtual void write_parameter(const std::string& name, std::span<const float> values) = 0;

  // --- tuning
  // Replaces the source head by a new linear head (features -> `outputs` values), initialised as
  // PyTorch's nn.Linear from `seed`. Its parameters are named "head.weight" and "head.bias".
  virtual void replace_head(std::int64_t outputs, OutputKind kind, std::uint64_t seed) = 0;
  // Which parameters train (names as parameters() gives); every other one is frozen.
  virtual void set_trainable(const std::vector<std::string>& names) = 0;
  virtual std::vector<std::string> trainable() const = 0;
  // LoRA on the named 2-D weight matrices: W = W0 + (alpha / rank) B A, A (rank x in) initialised
  // as nn.Linear from `seed`, B (out x rank) zero, so the model is unchanged at start. The factors
  // are parameters "<name>.lora_A" and "<name>.lora_B" and become the trainable ones (with the head).
  virtual void add_lora(const std::vector<std::string>& weights, int rank, double alpha, std::uint64_t seed) = 0;
  // W0 <- W0 + (alpha / rank) B A for every LoRA, which is then removed (outputs unchanged up to
  // rounding).
  virtual void fold_lora() = 0;

  // Forward with a tape, then backward from dL/dfeatures and/or dL/doutputs (either may be
  // null), adding the gradients of the trainable parameters to `grad` (allocated by the family on
  // first use, in trainable() order).
  virtual std::unique_ptr<ForwardPass> forward(const InputBatch& x) = 0;
  virtual void backward(ForwardPass& pass, const RowMatrixF* d_features, const RowMatrixF* d_outputs,
                        Gradients& grad) = 0;

  // Diagonal Fisher information over the batch (docs/methods: exact expectation over the model's
  // own predicted classes, or one class drawn per sample from `seed` when `sampled`), summed over
  // the batch (the caller divides by N), for every parameter, in parameters() order.
  // The default runs forward/backward per sample and class; families may do better.
  virtual Gradients fisher_diagonal(const InputBatch& x, bool sampled, std::uint64_t seed);

  // An independent copy (parameters, head, LoRA and trainable set included).
  virtual std::unique_ptr<Model> clone() const = 0;
};

// Where a model comes from: one [[model]] entry of a checkpoint hub manifest.
struct ModelSource {
  std::string name;
  std::filesystem::path checkpoint;   // caulk MLP .safetensors (or sharded folder)
  std::filesystem::path torchscript;  // model.pt saved by torch.jit.save
  std::filesystem::path onnx;         // model.onnx (inference only)
  std::string feature_method;         // TorchScript method returning N x D features ("" = none)
  std::string feature_output;         // ONNX output holding the features
  std::filesystem::path weights;      // safetensors whose tensors override parameters by name
  std::string where;                  // FILE:LINE:COL of the entry, for errors
};

// Opens a model of any family. Throws DataError naming the model, the file and what to do.
std::unique_ptr<Model> open_model(const ModelSource& source);

// Parameters <-> safetensors by name. load_weights refuses unknown names, missing ones (unless
// `partial`) and shape mismatches, naming each; save_weights writes every parameter (or `only`).
void load_weights(Model& model, const std::filesystem::path& safetensors, bool partial = true);
void save_weights(const Model& model, const std::filesystem::path& safetensors,
                  const std::vector<std::string>& only = {});

}  // namespace caulk::models
