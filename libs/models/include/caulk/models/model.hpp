// The model interface: what every node that runs, tunes or analyses a model sees, whatever the
// model is (caulk's native MLP, a TorchScript module on libtorch, an ONNX graph for inference).
// Nodes use only this header; model families implement it (docs/models.md).
//
// Conventions, for every family:
// - Inputs are N samples of any shape, row-major (C order): float32 (tabular rows, N x C x H x W
//   images) or int64 (N x L token ids). A family refuses another dtype or a shape it cannot take
//   with a DataError naming the model, its file and what it expected.
// - `features` are N x D (float32, row-major): the representation rankers score and new heads
//   read. `outputs` are the model's head: source-task logits (classification; probabilities are
//   their softmax, taken by caulk) or values (regression), N x C.
// - Parameters are named as PyTorch's named_parameters() names them ("layer4.1.conv2.weight",
//   "fc.bias"); for the MLP, its checkpoint names ("layers.0.weight"). Shapes as PyTorch's.
//   Values cross the interface as float32, row-major (C order), whatever the storage.
// - Thread safety: run() is const and may be called from several threads at once. Everything
//   else (parameters, training) is called from one thread at a time, never during a run().
// - Determinism: a family computes each sample's outputs independently of how samples are batched
//   only up to rounding; callers batch in a fixed way (by a batch size, never by --jobs), and the
//   family uses one intra-op thread, so results do not depend on --jobs.
// - Modes: a model always runs as in PyTorch's eval() mode (BatchNorm uses its running
//   statistics, dropout is off), when tuning too, so a sample's outputs never depend on its batch.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "caulk/io/dtype.hpp"
#include "caulk/manifest.hpp"
#include "caulk/matrix.hpp"

namespace caulk::models {

// A batch of N samples: shape {N, ...}, row-major, F32 or I64. Does not own its data.
struct InputBatch {
  io::DType dtype = io::DType::F32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
  std::int64_t rows() const { return shape.empty() ? 0 : shape.front(); }
  std::int64_t sample_size() const;  // elements per sample (product of shape[1:])
  // Samples [first, first + count) of this batch (a view).
  InputBatch slice(std::int64_t first, std::int64_t count) const;
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
  Outputs values;  // both features and outputs
};

// Values per parameter, by name, row-major: gradients (float32) and Fisher diagonals (float64).
template <class T>
struct NamedValues {
  std::vector<std::string> names;
  std::vector<std::vector<T>> values;
  const std::vector<T>* find(const std::string& name) const {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return &values[i];
    return nullptr;
  }
};
using Gradients = NamedValues<float>;
using FisherDiagonal = NamedValues<double>;

class Model {
 public:
  virtual ~Model();

  // --- identity
  const std::string& name() const { return name_; }            // the manifest's name
  const std::filesystem::path& file() const { return file_; }  // the file it was loaded from
  std::string describe() const;                                // "model 'NAME' (FILE)", for errors
  virtual std::string family() const = 0;                      // "mlp", "torchscript", "onnx"
  virtual OutputKind output_kind() const = 0;
  // Sample shape without N ({64} for an MLP of 64 inputs); empty when the model takes any shape.
  // The input dtype the model takes, when the family knows it (nullopt: F32 or I64, as given).
  virtual std::vector<std::int64_t> input_shape() const = 0;
  virtual std::optional<io::DType> input_dtype() const = 0;
  // Feature and output sizes; -1 while unknown (a TorchScript module learns them on its first
  // run() or forward(), as nothing in the file states them).
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
  // PyTorch's nn.Linear (uniform in +-1/sqrt(D)) from `seed`; it is trainable, other parameters
  // keep their state. Its parameters (head_parameters()) are "head.weight" and "head.bias"; the
  // MLP keeps its checkpoint names (layers.{feature_layer+1}.*). `features` is the feature size
  // D, needed when feature_dim() is not known yet (-1: feature_dim(); another value is refused).
  virtual void replace_head(std::int64_t outputs, OutputKind kind, std::uint64_t seed, std::int64_t features = -1) = 0;
  virtual std::vector<std::string> head_parameters() const = 0;  // empty until replace_head
  // Which parameters train (names as parameters() gives); every other one is frozen. A model
  // opens with every parameter trainable, as PyTorch's parameters are. Throws Error naming an
  // unknown name.
  virtual void set_trainable(const std::vector<std::string>& names) = 0;
  virtual std::vector<std::string> trainable() const = 0;  // in parameters() order
  // LoRA on the named weight matrices: W = W0 + (alpha / rank) B A, A (rank x in) initialised
  // as nn.Linear from `seed`, B (out x rank) zero, so the model is unchanged at start (a weight of
  // more than two dimensions is treated as out x the rest). Afterwards the factors and the head
  // train, nothing else (the new head; an MLP without one, its head layers). Returns the factors' names (TorchScript: "<weight>.lora_A",
  // "<weight>.lora_B"; MLP: "lora.{l}.A", "lora.{l}.B"). alpha <= 0 means alpha = rank.
  virtual std::vector<std::string> add_lora(const std::vector<std::string>& weights, int rank, double alpha, std::uint64_t seed) = 0;
  // W0 <- W0 + (alpha / rank) B A for every LoRA, which is then removed (outputs unchanged up to
  // rounding). The factors leave the trainable set and nothing joins it: the folded weights stay
  // as frozen as add_lora left them (both families; a caller that saves the tuned tensors names
  // the adapted weights before folding).
  virtual void fold_lora() = 0;

  // Forward with a tape, then backward from dL/dfeatures and/or dL/doutputs (either may be
  // null; N x D and N x C), adding the gradients of the trainable parameters to `grad`
  // (allocated by the family when empty, in trainable() order). backward may be called several
  // times on one pass; each call adds.
  virtual std::unique_ptr<ForwardPass> forward(const InputBatch& x) = 0;
  virtual void backward(ForwardPass& pass, const RowMatrixF* d_features, const RowMatrixF* d_outputs, Gradients& grad) = 0;

  // Diagonal Fisher information of every parameter, in parameters() order, summed over the
  // batch (the caller divides by the number of samples), whatever trainable() says:
  //   logits: sum_x sum_y p(y|x) (d log p(y|x) / d theta)^2, the exact expectation over the
  //   model's own predicted classes, or with `sampled` one class per sample drawn from p(.|x)
  //   (sample i takes draw i of a generator seeded by `seed`; see draw_class());
  //   values: sum_x sum_t (d f_t(x) / d theta)^2 (the expectation under N(f(x), I)); `sampled`
  //   is refused.
  // The default runs forward/backward per sample and class; families may do better.
  virtual FisherDiagonal fisher_diagonal(const InputBatch& x, bool sampled, std::uint64_t seed);

  // Writes the model in its family's own format with LoRA folded: TorchScript, a .pt that loads
  // in PyTorch (forward gives outputs, the feature method features); MLP, a checkpoint. Atomic.
  virtual void save(const std::filesystem::path& path) const = 0;

  // An independent copy (parameters, head, LoRA and trainable set included).
  virtual std::unique_ptr<Model> clone() const = 0;

 protected:
  Model(std::string name, std::filesystem::path file) : name_(std::move(name)), file_(std::move(file)) {}
  Model(const Model&) = default;

 private:
  std::string name_;
  std::filesystem::path file_;
};

// Where a model comes from: one [[model]] entry of a checkpoint hub manifest.
struct ModelSource {
  std::string name;
  std::filesystem::path checkpoint;   // caulk MLP .safetensors (or sharded folder)
  std::filesystem::path torchscript;  // model.pt saved by torch.jit.save
  std::filesystem::path onnx;         // model.onnx (inference only)
  std::string feature_method;         // TorchScript method returning N x D features ("" = forward's output)
  std::string feature_output;         // ONNX output holding the features
  std::filesystem::path weights;      // safetensors whose tensors override parameters by name
  std::string where;                  // FILE:LINE:COL of the entry, for errors
};

// A hub of models of any family: [hub] (name, description) and [[model]]s naming one of
// checkpoint, torchscript or onnx, with feature_method, feature_output, weights, description and
// base (open_model checks the combination). The checkpoint hub schema with the new families.
const ManifestSchema& model_hub_schema();
// The ModelSource of such a [[model]] entry (paths already resolved against the manifest).
ModelSource source_of(const ManifestModel& entry);

// Opens a model of any family, then applies `weights` (load_weights, partial). Throws DataError
// naming the model, the file and what to do. TorchScript models live in a separate library
// (libcaulk_models_torch.so, beside libcaulk; the environment variable CAULK_MODELS_TORCH may
// name another), loaded on the first TorchScript model, so a process that runs none never loads
// libtorch.
std::unique_ptr<Model> open_model(const ModelSource& source);

// Parameters <-> safetensors by name. load_weights refuses unknown names, missing ones (unless
// `partial`) and shape mismatches, naming each. A file holding "head.weight" and "head.bias"
// that the model lacks gives it a new head of that size first (kind from the metadata key
// "caulk.head", "logits" by default): how a tuned TorchScript model comes back.
// save_weights writes parameters() as they are (call fold_lora() first to fold LoRA), or only
// the ones named in `only`, as F32, with metadata "caulk.head" when the model has a new head,
// plus `metadata` (e.g. what a tuned model was tuned from).
void load_weights(Model& model, const std::filesystem::path& safetensors, bool partial = true);
void save_weights(const Model& model, const std::filesystem::path& safetensors, const std::vector<std::string>& only = {},
                  const std::map<std::string, std::string>& metadata = {});
// Writes a Fisher diagonal (each value divided by `divide_by`, e.g. the number of samples) under
// the parameters' names and shapes, as F32. Atomic.
void save_fisher(const Model& model, const FisherDiagonal& fisher, const std::filesystem::path& safetensors, double divide_by = 1.0);

// The class drawn for one sample from its probabilities p (summing to 1): the first k whose
// cumulative probability exceeds u = (g >> 11) * 2^-53, g the generator's next 64-bit draw.
// Every family draws from seeding::SeededUniform (caulk/seeding/seeding.hpp) for head and LoRA
// initialisation and sampled Fisher classes, so the same seed gives the same numbers everywhere.
std::size_t draw_class(std::span<const double> p, std::uint64_t draw);

}  // namespace caulk::models
