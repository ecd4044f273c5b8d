// caulk's native model: a multilayer perceptron, optionally with bottleneck adapters and LoRA
// updates (the parameter-efficient tuning modules), run and differentiated with Eigen.
//
// Shapes follow PyTorch's nn.Linear: a layer's weight is out x in and computes z = W h + b.
// Activations are held feature-major (a batch of N samples is a dim x N column-major matrix), which
// is the memory layout of a row-major N x dim array: .npy inputs map without a transpose.
//
// The model is templated on the scalar: float for running and training (float32 storage), double
// for the finite-difference tests and the Fisher information.
#pragma once
#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

namespace caulk::mlp {

enum class Activation { Relu, Gelu, Tanh };
enum class Output { Softmax, Identity };  // classification (class probabilities) or regression

std::string activation_name(Activation a);
// Throws caulk::Error listing the known names.
Activation parse_activation(const std::string& name);

template <class S>
using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
template <class S>
using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;

template <class S>
struct Dense {
  Mat<S> W;  // out x in
  Vec<S> b;  // out
  int in() const { return static_cast<int>(W.cols()); }
  int out() const { return static_cast<int>(W.rows()); }
};

// h <- h + up(act(down(h))) applied to the (activated) output of layer `after`.
template <class S>
struct Adapter {
  int after = 0;
  Dense<S> down;  // r x h
  Dense<S> up;    // h x r
};

// Layer `layer` computes (W + scale B A) h + b.
template <class S>
struct Lora {
  int layer = 0;
  Mat<S> A;  // r x in
  Mat<S> B;  // out x r
  double scale = 1.0;
};

template <class S>
struct Model {
  std::vector<Dense<S>> layers;  // the last one is the output layer
  Activation activation = Activation::Relu;
  Output output = Output::Softmax;
  // "The features": the activated output (after its adapter, if any) of this layer. The layers
  // after it are the head.
  int feature_layer = 0;
  std::vector<Adapter<S>> adapters;  // sorted by `after`, at most one per layer
  std::vector<Lora<S>> loras;        // sorted by `layer`, at most one per layer

  int num_layers() const { return static_cast<int>(layers.size()); }
  int input_dim() const { return layers.front().in(); }
  int output_dim() const { return layers.back().out(); }
  int feature_dim() const { return layers[feature_layer].out(); }
  const Adapter<S>* adapter_after(int layer) const;
  const Lora<S>* lora_of(int layer) const;
  // Every parameter tensor in a fixed order with its checkpoint name (see parameters()).
  std::size_t parameter_count() const;

  template <class T>
  Model<T> cast() const;
};

// Checks the structure: layer shapes chain, feature_layer in [0, L-2], adapters and LoRA fit their
// layers. Throws caulk::Error naming the tensor (checkpoint name) that does not fit.
template <class S>
void validate(const Model<S>& m);

// A named view of one parameter tensor: the unit optimizers, checkpoints and Fisher files use.
// `rows x cols` as stored (weights out x in, biases rows x 1); data is column-major.
template <class S>
struct ParamRef {
  std::string name;  // layers.0.weight, layers.0.bias, adapters.1.down.weight, lora.0.A, ...
  S* data;
  int rows, cols;
  bool is_bias;
  std::size_t size() const { return static_cast<std::size_t>(rows) * cols; }
};
template <class S>
std::vector<ParamRef<S>> parameters(Model<S>& m);
template <class S>
std::vector<ParamRef<const S>> parameters(const Model<S>& m);

// A zero model of the same shapes (gradients, optimizer moments, Fisher diagonals).
template <class S>
Model<S> zeros_like(const Model<S>& m);

// ---------------------------------------------------------------------------------------------
// Forward

// Everything the backward pass needs from a forward pass over one batch.
template <class S>
struct Trace {
  std::vector<Mat<S>> input;        // input[l]: what layer l reads (in x N); input[0] is the batch
  std::vector<Mat<S>> pre;          // pre[l]: z = W h + b (out x N)
  std::vector<Mat<S>> lora_hidden;  // per LoRA (in model order): A h (r x N)
  std::vector<Mat<S>> adapter_in;   // per adapter: its input h (dim x N)
  std::vector<Mat<S>> adapter_pre;  // per adapter: down(h) (r x N)
  std::vector<Mat<S>> adapter_act;  // per adapter: act(down(h)) (r x N)
  Mat<S> output;                    // probabilities (softmax) or values, out x N
};

template <class S>
void apply_activation(Activation a, const Mat<S>& z, Mat<S>& h);
// d act(z) / dz elementwise, multiplied into g.
template <class S>
void multiply_activation_derivative(Activation a, const Mat<S>& z, Mat<S>& g);
// Column-wise softmax, stable.
template <class S>
void softmax_columns(Mat<S>& z);

// Forward over a batch X (input_dim x N). With `trace` the intermediate values are kept.
// `stop_after` >= 0 stops after that layer (its activated, adapted output is returned).
template <class S>
Mat<S> forward(const Model<S>& m, const Mat<S>& X, Trace<S>* trace = nullptr, int stop_after = -1);

// Features (feature_dim x N) and outputs (output_dim x N) of a whole array of samples, computed by
// blocks of `batch` rows in parallel on the current pool; X is row-major N x input_dim float32.
struct RunOutputs {
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> features;  // N x D
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> outputs;   // N x C
};
RunOutputs run_batches(const Model<float>& m, const Eigen::Ref<const Mat<float>>& X_by_column, bool want_features, bool want_outputs,
                       int batch = 256);

}  // namespace caulk::mlp
