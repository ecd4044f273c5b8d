// The ONNX family: a graph exported by torch.onnx.export (or any framework), run for inference
// only on OpenCV's DNN module (docs/models.md, "ONNX models").
//
// features come from the output named by the manifest's feature_output (a graph output or any
// node's output tensor), outputs (logits) from the graph's first output that is not
// feature_output; both from one forward pass. Everything that needs parameters or gradients
// (tuning, LoRA, Fisher, saving) is refused with onnx_inference_only().
//
// A cv::dnn::Net may not be used by two threads at once: run() leases a Net from a pool (each
// imported from the same bytes, so they compute the same numbers) and returns it afterwards.
//
// Internal to libcaulk_models_onnx.so: only the two entry points in onnx_model.cpp are exported.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <opencv2/dnn.hpp>
#include <set>

#include "caulk/models/model.hpp"
#include "onnx_graph.hpp"

namespace caulk::models::onnx {

class OnnxModel final : public Model {
 public:
  static std::unique_ptr<OnnxModel> open(const ModelSource& source);

  std::string family() const override { return "onnx"; }
  OutputKind output_kind() const override { return OutputKind::Logits; }
  std::vector<std::int64_t> input_shape() const override;
  std::optional<io::DType> input_dtype() const override;
  std::int64_t feature_dim() const override { return feature_dim_.load(); }
  std::int64_t output_dim() const override { return output_dim_.load(); }

  Outputs run(const InputBatch& x, bool want_features, bool want_outputs) const override;

  // Inference only: an ONNX model exposes no parameters (its weights are the graph's
  // initializers, which caulk neither reads nor writes), and each of the others throws
  // Error(onnx_inference_only(...)).
  std::vector<ParameterInfo> parameters() const override;
  void read_parameter(const std::string& name, std::span<float> out) const override;
  void write_parameter(const std::string& name, std::span<const float> values) override;
  void replace_head(std::int64_t outputs, OutputKind kind, std::uint64_t seed, std::int64_t features = -1) override;
  std::vector<std::string> head_parameters() const override { return {}; }
  void set_trainable(const std::vector<std::string>& names) override;
  std::vector<std::string> trainable() const override { return {}; }
  std::vector<std::string> add_lora(const std::vector<std::string>& weights, int rank, double alpha, std::uint64_t seed) override;
  void fold_lora() override;
  std::unique_ptr<ForwardPass> forward(const InputBatch& x) override;
  void backward(ForwardPass& pass, const RowMatrixF* d_features, const RowMatrixF* d_outputs, Gradients& grad) override;
  FisherDiagonal fisher_diagonal(const InputBatch& x, bool sampled, std::uint64_t seed) override;
  void save(const std::filesystem::path& path) const override;

  std::unique_ptr<Model> clone() const override;

 private:
  struct Shared;  // what every copy shares: the file's bytes, its graph and the chosen outputs
  explicit OnnxModel(std::shared_ptr<const Shared> shared);
  OnnxModel(const OnnxModel& other);

  [[noreturn]] void fail(const std::string& problem) const;  // DataError "FILE: model 'NAME': problem"
  [[noreturn]] void inference_only() const;                  // Error(onnx_inference_only(...))
  std::unique_ptr<cv::dnn::Net> lease() const;               // a Net no other thread uses
  void give_back(std::unique_ptr<cv::dnn::Net> net) const;
  // Features and outputs (as asked) of `count` samples of `sample` floats each, one forward pass.
  // Throws cv::Exception, or std::runtime_error when the net returns another number of rows.
  std::vector<cv::Mat> forward_once(const float* data, std::int64_t count, const std::vector<int>& sample,
                                    const std::vector<cv::String>& layers) const;

  std::shared_ptr<const Shared> shared_;
  mutable std::mutex pool_mutex_;
  mutable std::vector<std::unique_ptr<cv::dnn::Net>> pool_;
  mutable std::set<std::int64_t> failing_batches_;  // batch sizes the whole-batch pass failed on
  mutable std::atomic<std::int64_t> feature_dim_{-1}, output_dim_{-1};
};

// The first useful line(s) of OpenCV's exception text, without its source paths and function
// names ("Node [Gather@ai.onnx]:(onnx_node!/emb/Gather) parse error: Blob x not found in const
// blobs").
std::string short_error(const cv::Exception& e);

// Once per process: one OpenCV thread (callers parallelise over batches, so results do not
// depend on --jobs) and OpenCV's own logging down to fatal messages (caulk reports its errors).
void configure_opencv();

}  // namespace caulk::models::onnx
