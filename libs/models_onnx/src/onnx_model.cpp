// Opening and running an ONNX model on OpenCV DNN; the library's entry points.
#include "onnx_model.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <opencv2/core/utils/logger.hpp>
#include <regex>
#include <sstream>

#include "caulk/data_check.hpp"
#include "caulk/error.hpp"
#include "onnx_entry.hpp"

namespace caulk::models::onnx {

namespace {

constexpr const char* kExportHint =
    "export one with torch.onnx.export(model, x, path, input_names=[\"x\"], output_names=[\"logits\", \"features\"], "
    "dynamic_axes={\"x\": {0: \"n\"}})";

std::string dims_text(const std::vector<std::int64_t>& dims) {
  std::vector<std::string> parts;
  for (auto d : dims) parts.push_back(d < 0 ? "?" : std::to_string(d));
  return fmt::format("[{}]", fmt::join(parts, ", "));
}

}  // namespace

std::string short_error(const cv::Exception& e) {
  // e.err is the description without "OpenCV(4.6.0) FILE:LINE: error: (code) ... in function";
  // the importer nests a whole formatted exception in it, so strip those parts line by line.
  static const std::regex location(R"(OpenCV\([^)]*\) \S+:\d+: error: \([^)]*\) ?)");
  static const std::regex function(R"( in function '[^']*'\s*$)");
  std::istringstream lines(e.err.empty() ? std::string(e.what()) : e.err);
  std::string line, out;
  while (std::getline(lines, line)) {
    line = std::regex_replace(std::regex_replace(line, location, ""), function, "");
    const auto first = line.find_first_not_of(" \t>");
    if (first == std::string::npos) continue;
    out += (out.empty() ? "" : "; ") + line.substr(first);
  }
  if (out.empty()) out = fmt::format("OpenCV error {}", e.code);
  if (out.size() > 400) out = out.substr(0, 400) + "...";
  return out;
}

void configure_opencv() {
  static std::once_flag once;
  std::call_once(once, [] {
    cv::setNumThreads(1);
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_FATAL);
  });
}

struct OnnxModel::Shared {
  std::string name;
  std::filesystem::path file;
  std::vector<unsigned char> bytes;
  Graph graph;
  std::string feature_tensor, output_tensor;  // as the graph names them
  cv::String feature_layer, output_layer;     // as OpenCV names them
  std::int64_t exported_batch = -1;           // the input's first dimension in the file (-1: dynamic)

  std::unique_ptr<cv::dnn::Net> import() const {
    auto net = std::make_unique<cv::dnn::Net>(cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    net->setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net->setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return net;
  }
};

OnnxModel::OnnxModel(std::shared_ptr<const Shared> shared) : Model(shared->name, shared->file), shared_(std::move(shared)) {}

OnnxModel::OnnxModel(const OnnxModel& other) : Model(other), shared_(other.shared_) {
  feature_dim_.store(other.feature_dim_.load());
  output_dim_.store(other.output_dim_.load());
}

std::unique_ptr<OnnxModel> OnnxModel::open(const ModelSource& source) {
  configure_opencv();
  const std::string file = source.onnx.string();
  const auto problem = [&](const std::string& text) { return DataError(file, fmt::format("model '{}': {}", source.name, text)); };
  if (!std::filesystem::exists(source.onnx)) throw problem("the file does not exist");
  if (!source.feature_method.empty())
    throw problem("feature_method applies to TorchScript models; an ONNX model names its features with feature_output");
  auto s = std::make_shared<Shared>();
  s->name = source.name;
  s->file = source.onnx;
  {
    std::ifstream in(source.onnx, std::ios::binary);
    s->bytes.assign(std::istreambuf_iterator<char>(in), {});
    if (!in.good() && !in.eof()) throw problem("the file could not be read");
  }
  try {
    s->graph = read_graph(s->bytes);
  } catch (const std::exception& e) {
    throw problem(fmt::format("not an ONNX model ({}); {}", e.what(), kExportHint));
  }
  const Graph& g = s->graph;
  if (g.inputs.size() != 1) {
    std::vector<std::string> names;
    for (const auto& v : g.inputs) names.push_back(v.name);
    throw problem(fmt::format("the graph takes {} inputs ({}); caulk gives a model one input tensor: export it with one", g.inputs.size(),
                              fmt::join(names, ", ")));
  }
  const ValueInfo& input = g.inputs.front();
  if (input.elem_type != kElemFloat && input.elem_type != kElemInt64)
    throw problem(fmt::format("its input '{}' is {}; caulk gives models float32 or int64 inputs: export it with one of those", input.name,
                              elem_type_name(input.elem_type)));
  if (input.has_shape && !input.dims.empty()) s->exported_batch = input.dims.front();

  // Operators OpenCV 4.6 imports but computes wrongly, found by running PyTorch exports
  // (docs/models.md): refused by name rather than giving wrong numbers (CumSum also corrupts the
  // heap, so the process could crash later).
  for (const Node& n : g.nodes) {
    std::string wrong;
    if (n.op_type == "CumSum") {
      wrong = "OpenCV 4.6 computes CumSum wrongly and corrupts its memory";
    } else if (n.op_type == "AveragePool") {
      const auto* pads = n.attribute("pads");
      const auto* include = n.attribute("count_include_pad");
      const bool padded = pads && std::any_of(pads->begin(), pads->end(), [](std::int64_t p) { return p != 0; });
      if (padded && !(include && !include->empty() && include->front() != 0))
        wrong =
            "OpenCV 4.6 averages a padded AveragePool wrongly when padding is not counted "
            "(avg_pool2d(count_include_pad=False))";
    }
    if (!wrong.empty())
      throw problem(
          fmt::format("its node '{}' ({}) cannot run: {}; export the model without it (docs/models.md)", n.name, n.op_type, wrong));
  }

  std::unique_ptr<cv::dnn::Net> net;
  try {
    net = s->import();
  } catch (const cv::Exception& e) {
    throw problem(
        fmt::format("OpenCV {} cannot import it (opset {}): {} (docs/models.md lists the operators OpenCV's "
                    "importer lacks; export the model without them)",
                    CV_VERSION, g.opset, short_error(e)));
  }

  // A tensor name to the OpenCV layer that computes it: a graph output keeps its name; a node's
  // first output is the layer "onnx_node!<node name>".
  const auto layer_of = [&](const std::string& tensor) -> std::optional<cv::String> {
    if (net->getLayerId(tensor) >= 0) return tensor;
    for (const Node& n : g.nodes)
      if (!n.outputs.empty() && n.outputs.front() == tensor && net->getLayerId("onnx_node!" + n.name) >= 0) return "onnx_node!" + n.name;
    return std::nullopt;
  };
  if (!source.feature_output.empty()) {
    s->feature_tensor = source.feature_output;
    if (auto layer = layer_of(source.feature_output)) {
      s->feature_layer = *layer;
    } else {
      std::vector<std::string> tensors;
      for (const Node& n : g.nodes) tensors.insert(tensors.end(), n.outputs.begin(), n.outputs.end());
      throw problem(fmt::format(
          "feature_output '{}' is not an output of the graph{} (its outputs: {}; or any of its {} node "
          "outputs, as Netron shows them); name the tensor that holds the features, or export it as "
          "a second output (output_names=[\"logits\", \"features\"])",
          source.feature_output, did_you_mean_among(source.feature_output, tensors), fmt::join(g.outputs, ", "), tensors.size()));
    }
  }
  // The logits: the graph's first output that is not the features (the features themselves
  // when the graph has no other output, as a TorchScript module without a feature method).
  for (const auto& o : g.outputs)
    if (o != source.feature_output) {
      s->output_tensor = o;
      break;
    }
  if (s->output_tensor.empty()) s->output_tensor = s->feature_tensor;
  if (auto layer = layer_of(s->output_tensor))
    s->output_layer = *layer;
  else
    throw problem(fmt::format("OpenCV's import has no layer computing the graph output '{}'", s->output_tensor));
  if (s->feature_tensor.empty()) {
    s->feature_tensor = s->output_tensor;
    s->feature_layer = s->output_layer;
  }
  auto model = std::unique_ptr<OnnxModel>(new OnnxModel(std::move(s)));
  model->give_back(std::move(net));
  return model;
}

std::vector<std::int64_t> OnnxModel::input_shape() const {
  const ValueInfo& input = shared_->graph.inputs.front();
  if (!input.has_shape || input.dims.size() < 2) return {};
  std::vector<std::int64_t> sample(input.dims.begin() + 1, input.dims.end());
  for (auto d : sample)
    if (d < 0) return {};
  return sample;
}

std::optional<io::DType> OnnxModel::input_dtype() const {
  return shared_->graph.inputs.front().elem_type == kElemInt64 ? io::DType::I64 : io::DType::F32;
}

void OnnxModel::fail(const std::string& problem) const { throw DataError(file().string(), fmt::format("model '{}': {}", name(), problem)); }

void OnnxModel::inference_only() const { throw Error(onnx_inference_only(name(), file().string())); }

std::unique_ptr<cv::dnn::Net> OnnxModel::lease() const {
  {
    std::lock_guard lock(pool_mutex_);
    if (!pool_.empty()) {
      auto net = std::move(pool_.back());
      pool_.pop_back();
      return net;
    }
  }
  return shared_->import();  // imported once already, so it imports again
}

void OnnxModel::give_back(std::unique_ptr<cv::dnn::Net> net) const {
  std::lock_guard lock(pool_mutex_);
  pool_.push_back(std::move(net));
}

std::vector<cv::Mat> OnnxModel::forward_once(const float* data, std::int64_t count, const std::vector<int>& sample,
                                             const std::vector<cv::String>& layers) const {
  std::vector<int> shape{static_cast<int>(count)};
  shape.insert(shape.end(), sample.begin(), sample.end());
  // OpenCV does not write to its input blob; the Mat only wraps the caller's buffer.
  const cv::Mat blob(static_cast<int>(shape.size()), shape.data(), CV_32F, const_cast<float*>(data));
  auto net = lease();
  std::vector<cv::Mat> outs;
  net->setInput(blob, shared_->graph.inputs.front().name);
  net->forward(outs, layers);  // a Net that threw is dropped, not given back
  give_back(std::move(net));
  for (auto& m : outs) {
    if (m.dims < 1 || m.size[0] != count)
      throw std::runtime_error(fmt::format("it returned {} rows for a batch of {}", m.dims < 1 ? 0 : m.size[0], count));
    m = m.clone();  // the Net's own memory is reused by its next pass
  }
  return outs;
}

Outputs OnnxModel::run(const InputBatch& x, bool want_features, bool want_outputs) const {
  Outputs result;
  const std::int64_t n = x.rows();
  if (n == 0 || (!want_features && !want_outputs)) return result;
  const ValueInfo& input = shared_->graph.inputs.front();
  const io::DType expected = *input_dtype();
  const auto dtype_text = [](io::DType t) {
    return std::string(t == io::DType::F32 ? "float32" : t == io::DType::I64 ? "int64" : io::dtype_name(t));
  };
  if (x.dtype != expected)
    fail(fmt::format("its input '{}' is {}, but it was given {} inputs (give it {})", input.name, elem_type_name(input.elem_type),
                     dtype_text(x.dtype), dtype_text(expected)));
  const std::vector<std::int64_t> sample_dims(x.shape.begin() + 1, x.shape.end());
  if (input.has_shape) {
    bool fits = input.dims.size() == x.shape.size();
    for (std::size_t i = 1; fits && i < x.shape.size(); ++i) fits = input.dims[i] < 0 || input.dims[i] == x.shape[i];
    if (!fits)
      fail(
          fmt::format("it takes inputs of shape {} (as exported), not {}; give it inputs of that shape, or export it "
                      "again on an input of the shape you have",
                      dims_text(input.dims), dims_text(x.shape)));
  }
  std::vector<int> sample;
  for (auto d : sample_dims) {
    if (d < 1 || d > std::numeric_limits<int>::max()) fail(fmt::format("cannot run on inputs of shape {}", dims_text(x.shape)));
    sample.push_back(static_cast<int>(d));
  }
  const std::int64_t per_sample = x.sample_size();
  // OpenCV DNN computes in float32; token ids are exact in float32 up to 2^24.
  std::vector<float> values(static_cast<std::size_t>(n * per_sample));
  if (x.dtype == io::DType::F32) {
    std::memcpy(values.data(), x.data, values.size() * sizeof(float));
  } else {
    const auto* ids = static_cast<const std::int64_t*>(x.data);
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (ids[i] < -(1 << 24) || ids[i] > (1 << 24)) fail(fmt::format("token id {} is too large for OpenCV's float32 inputs", ids[i]));
      values[i] = static_cast<float>(ids[i]);
    }
  }
  std::vector<cv::String> layers;
  if (want_features) layers.push_back(shared_->feature_layer);
  if (want_outputs && !(want_features && shared_->output_layer == shared_->feature_layer)) layers.push_back(shared_->output_layer);

  // One pass over the whole batch, unless this batch size failed before. Graphs that bake the
  // batch size in (x.view(x.size(0), -1) exports a Reshape of constants) fail on other sizes in
  // OpenCV 4.6; they run in chunks of the exported batch size (the last padded with zeros),
  // or one sample at a time when the batch axis is dynamic. The path depends on the batch size
  // only, so results do not depend on --jobs.
  std::vector<cv::Mat> outs;
  std::string whole_error;
  bool known_failing;
  {
    std::lock_guard lock(pool_mutex_);
    known_failing = failing_batches_.count(n) > 0;
  }
  const std::int64_t chunk = shared_->exported_batch > 0 ? shared_->exported_batch : 1;
  try {
    if (!known_failing) outs = forward_once(values.data(), n, sample, layers);
  } catch (const cv::Exception& e) {
    whole_error = short_error(e);
  } catch (const std::runtime_error& e) {
    whole_error = e.what();
  }
  const auto failed = [&](const std::string& why) {
    fail(
        fmt::format("OpenCV could not run it on inputs of shape {} ({}): {}; give it inputs of the shape and dtype it was "
                    "exported for (input '{}' of shape {})",
                    dims_text(x.shape), dtype_text(x.dtype), why, input.name, dims_text(input.dims)));
  };
  if (outs.empty()) {
    if (chunk == n) failed(whole_error);
    {
      std::lock_guard lock(pool_mutex_);
      failing_batches_.insert(n);
    }
    std::vector<std::vector<cv::Mat>> parts;
    std::vector<float> padded(static_cast<std::size_t>(chunk * per_sample), 0.0f);
    for (std::int64_t first = 0; first < n; first += chunk) {
      const std::int64_t count = std::min(chunk, n - first);
      const float* data = values.data() + first * per_sample;
      if (count < chunk) {
        std::fill(padded.begin(), padded.end(), 0.0f);
        std::copy(data, data + count * per_sample, padded.begin());
        data = padded.data();
      }
      try {
        parts.push_back(forward_once(data, chunk, sample, layers));
      } catch (const cv::Exception& e) {
        failed(whole_error.empty() ? fmt::format("in batches of {}: {}", chunk, short_error(e))
                                   : fmt::format("{} (and in batches of {}: {})", whole_error, chunk, short_error(e)));
      } catch (const std::runtime_error& e) {
        failed(e.what());
      }
    }
    // Rows of the chunks in order, without the padding.
    for (std::size_t k = 0; k < layers.size(); ++k) {
      const int cols = static_cast<int>(parts.front()[k].total() / static_cast<std::size_t>(chunk));
      cv::Mat whole(static_cast<int>(n), cols, CV_32F);
      for (std::size_t c = 0; c < parts.size(); ++c) {
        const std::int64_t first = static_cast<std::int64_t>(c) * chunk, count = std::min(chunk, n - first);
        cv::Mat rows = parts[c][k].reshape(1, static_cast<int>(chunk));
        if (rows.cols != cols) failed("its outputs change size between batches");
        rows.rowRange(0, static_cast<int>(count)).copyTo(whole.rowRange(static_cast<int>(first), static_cast<int>(first + count)));
      }
      outs.push_back(whole);
    }
  }
  const auto to_matrix = [&](const cv::Mat& m) {
    cv::Mat f;
    m.convertTo(f, CV_32F);
    const Eigen::Index cols = static_cast<Eigen::Index>(f.total()) / n;
    RowMatrixF out(n, cols);
    std::memcpy(out.data(), f.ptr<float>(), sizeof(float) * static_cast<std::size_t>(f.total()));
    return out;
  };
  std::size_t k = 0;
  if (want_features) {
    result.features = to_matrix(outs[k++]);
    feature_dim_.store(result.features.cols());
  }
  if (want_outputs) {
    result.outputs = k < outs.size() ? to_matrix(outs[k]) : result.features;
    output_dim_.store(result.outputs.cols());
  }
  return result;
}

std::vector<ParameterInfo> OnnxModel::parameters() const { return {}; }
void OnnxModel::read_parameter(const std::string&, std::span<float>) const { inference_only(); }
void OnnxModel::write_parameter(const std::string&, std::span<const float>) { inference_only(); }
void OnnxModel::replace_head(std::int64_t, OutputKind, std::uint64_t, std::int64_t) { inference_only(); }
void OnnxModel::set_trainable(const std::vector<std::string>&) { inference_only(); }
std::vector<std::string> OnnxModel::add_lora(const std::vector<std::string>&, int, double, std::uint64_t) { inference_only(); }
void OnnxModel::fold_lora() { inference_only(); }
std::unique_ptr<ForwardPass> OnnxModel::forward(const InputBatch&) { inference_only(); }
void OnnxModel::backward(ForwardPass&, const RowMatrixF*, const RowMatrixF*, Gradients&) { inference_only(); }
FisherDiagonal OnnxModel::fisher_diagonal(const InputBatch&, bool, std::uint64_t) { inference_only(); }
void OnnxModel::save(const std::filesystem::path&) const { inference_only(); }

std::unique_ptr<Model> OnnxModel::clone() const { return std::unique_ptr<Model>(new OnnxModel(*this)); }

}  // namespace caulk::models::onnx

// --- the entry points open_model finds with dlsym (onnx_entry.hpp)

extern "C" __attribute__((visibility("default"))) const char* caulk_models_onnx_version() { return caulk::models::kOnnxEntryVersion; }

extern "C" __attribute__((visibility("default"))) caulk::models::Model* caulk_models_onnx_open(const caulk::models::ModelSource& source) {
  return caulk::models::onnx::OnnxModel::open(source).release();
}
