// Model inputs of any rank, read batch by batch, and a model run over them in parallel batches.
#include "caulk/models/inputs.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <span>

#include "caulk/error.hpp"
#include "caulk/parallel.hpp"

namespace caulk::models {

namespace {

std::string shape_text(std::span<const std::int64_t> shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::int64_t product(std::span<const std::int64_t> s) { return std::accumulate(s.begin(), s.end(), std::int64_t{1}, std::multiplies<>()); }

}  // namespace

ModelInputs ModelInputs::open(const ArrayFile& inputs, const std::string& what) {
  ModelInputs in;
  in.what_ = what;
  in.describe_ = inputs.describe();
  if (inputs.in_memory()) {
    // A matrix some node made: copied once, as float64 rows.
    const MatrixView& m = inputs.memory;
    RowMatrix rows;
    m.rows_to(0, m.rows(), rows);
    auto bytes = std::make_shared<std::vector<std::byte>>(sizeof(double) * static_cast<std::size_t>(rows.size()));
    if (!bytes->empty()) std::memcpy(bytes->data(), rows.data(), bytes->size());
    in.shape_ = {static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())};
    in.dtype_ = io::DType::F64;
    in.data_ = bytes->data();
    in.owned_ = std::move(bytes);
    return in;
  }
  const io::NpyArray a = io::NpyArray::open(inputs.path);
  const std::string file = inputs.path.string();
  if (a.ndim() == 0) throw DataError(file, fmt::format("{} is a scalar: model inputs have one row per sample (N, ...)", what));
  if (a.dtype() == io::DType::BOOL)
    throw DataError(file, fmt::format("{} are booleans: model inputs are floats (float32 images, rows) or integers "
                                      "(int64 token ids)",
                                      what));
  for (std::size_t d : a.shape()) in.shape_.push_back(static_cast<std::int64_t>(d));
  if (in.shape_.size() == 1) in.shape_.push_back(1);  // N values: N samples of one input
  in.dtype_ = a.dtype();
  in.mapping_ = a.mapping();
  in.data_ = static_cast<const std::byte*>(a.data());
  if (a.fortran_order() && a.ndim() > 1) {
    if (a.ndim() > 2)
      throw DataError(file, fmt::format("{} are in Fortran (column-major) order with {} dimensions: save them in C order "
                                        "(numpy.ascontiguousarray)",
                                        what, a.ndim()));
    // Column-major N x P to row-major, element by element whatever the dtype.
    const std::size_t n = a.shape()[0], p = a.shape()[1], size = io::dtype_size(a.dtype());
    auto bytes = std::make_shared<std::vector<std::byte>>(n * p * size);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t c = 0; c < p; ++c) std::memcpy(bytes->data() + (r * p + c) * size, in.data_ + (c * n + r) * size, size);
    in.mapping_->check_intact();
    in.data_ = bytes->data();
    in.owned_ = std::move(bytes);
  }
  return in;
}

io::DType ModelInputs::dtype_for(const Model& model) const {
  if (auto own = model.input_dtype()) return *own;
  return io::dtype_is_float(dtype_) ? io::DType::F32 : io::DType::I64;
}

InputBatch ModelInputs::batch(std::int64_t first, std::int64_t count, io::DType dtype, std::vector<std::byte>& buffer) const {
  if (first < 0 || count < 0 || first + count > rows())
    throw Error(fmt::format("rows [{}, {}) are outside the {} rows of {}", first, first + count, rows(), describe_));
  const std::int64_t sample = product(std::span(shape_).subspan(1));
  const std::size_t n = static_cast<std::size_t>(count * sample);
  const std::byte* src = data_ + static_cast<std::size_t>(first * sample) * io::dtype_size(dtype_);
  buffer.resize(n * io::dtype_size(dtype));
  if (dtype == io::DType::F32) {
    if (dtype_ == io::DType::F32)
      std::memcpy(buffer.data(), src, buffer.size());
    else
      io::convert_to_float(src, dtype_, n, reinterpret_cast<float*>(buffer.data()));
  } else if (dtype == io::DType::I64) {
    if (io::dtype_is_float(dtype_))
      throw DataError(describe_, fmt::format("{} are floats ({}) but the model takes int64 token ids", what_, io::dtype_name(dtype_)));
    if (dtype_ == io::DType::I64) {
      std::memcpy(buffer.data(), src, buffer.size());
    } else {
      auto* out = reinterpret_cast<std::int64_t*>(buffer.data());
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::int64_t>(io::load_as_double(src, dtype_, i));
    }
  } else {
    throw Error(fmt::format("models take float32 or int64 inputs, not {}", io::dtype_name(dtype)));
  }
  if (mapping_) mapping_->check_intact();
  InputBatch b;
  b.dtype = dtype;
  b.shape = shape_;
  b.shape[0] = count;
  b.data = buffer.data();
  return b;
}

Outputs run_in_batches(const Model& model, const ModelInputs& inputs, std::int64_t batch_size, bool want_features, bool want_outputs) {
  if (batch_size < 1) throw Error(fmt::format("a batch size of {}: it must be at least 1", batch_size));
  const std::vector<std::int64_t> expected = model.input_shape();
  const std::span<const std::int64_t> sample = std::span(inputs.shape()).subspan(1);
  // A model of flat samples ({D}: an MLP) reads a sample of any shape of D values flattened
  // (1 x 8 x 8 images for an MLP of 64 inputs), as its error message says.
  const bool flat_match = expected.size() == 1 && product(sample) == expected[0];
  if (!expected.empty() && !flat_match && !std::equal(expected.begin(), expected.end(), sample.begin(), sample.end()))
    throw DataError(inputs.describe(), fmt::format("{} takes samples of shape {}, but these inputs have samples of shape {} "
                                                   "(the array is {})",
                                                   model.describe(), shape_text(expected), shape_text(sample), shape_text(inputs.shape())));
  const io::DType dtype = inputs.dtype_for(model);
  const std::int64_t n = inputs.rows();
  const std::size_t blocks = static_cast<std::size_t>((n + batch_size - 1) / batch_size);
  std::vector<Outputs> parts(blocks);
  caulk::parallel_for(blocks, [&](std::size_t k) {
    const std::int64_t first = static_cast<std::int64_t>(k) * batch_size, count = std::min(batch_size, n - first);
    std::vector<std::byte> buffer;
    const InputBatch b = inputs.batch(first, count, dtype, buffer);
    try {
      parts[k] = model.run(b, want_features, want_outputs);
    } catch (const DataError& e) {
      // The model's error names the model and its file; add which inputs it was given.
      throw DataError(e.file(), fmt::format("{} (inputs: {}, rows {} to {})", e.problem(), inputs.describe(), first, first + count - 1));
    }
    for (const RowMatrixF* m : {want_features ? &parts[k].features : nullptr, want_outputs ? &parts[k].outputs : nullptr})
      if (m && m->rows() != count)
        throw DataError(model.file().string(), fmt::format("model '{}' returned {} rows for a batch of {} samples (inputs: {})",
                                                           model.name(), m->rows(), count, inputs.describe()));
  });
  // Batches in row order, so the result does not depend on which thread ran which batch.
  Outputs out;
  const auto concatenate = [&](RowMatrixF Outputs::*member, const char* what) {
    RowMatrixF& whole = out.*member;
    const Eigen::Index cols = blocks ? (parts[0].*member).cols() : 0;
    whole.resize(n, cols);
    for (std::size_t k = 0; k < blocks; ++k) {
      const RowMatrixF& part = parts[k].*member;
      if (part.cols() != cols)
        throw DataError(model.file().string(),
                        fmt::format("model '{}' returned {} {} for one batch and {} for another", model.name(), cols, what, part.cols()));
      whole.middleRows(static_cast<Eigen::Index>(k) * batch_size, part.rows()) = part;
    }
  };
  if (want_features) concatenate(&Outputs::features, "features");
  if (want_outputs) concatenate(&Outputs::outputs, "outputs");
  return out;
}

const DatasetSplit& split_with_inputs(const Dataset& data, const std::string& split) {
  const DatasetSplit& s = data.split(split);
  if (!s.inputs)
    throw Error(fmt::format("split '{}' has no model inputs (give dataset.load an `inputs` file for it; labels: {})", split,
                            s.labels_file.string()));
  return s;
}

ModelInputs ModelInputs::of_split(const Dataset& data, const std::string& split) {
  return open(*split_with_inputs(data, split).inputs, fmt::format("the inputs of split '{}'", split));
}

Matrix softmax_rows(const RowMatrixF& logits) {
  Matrix p(logits.rows(), logits.cols());
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    double max = -INFINITY;
    for (Eigen::Index k = 0; k < logits.cols(); ++k) max = std::max(max, double(logits(i, k)));
    double sum = 0;
    for (Eigen::Index k = 0; k < logits.cols(); ++k) sum += p(i, k) = std::exp(double(logits(i, k)) - max);
    for (Eigen::Index k = 0; k < logits.cols(); ++k) p(i, k) /= sum;
  }
  return p;
}

}  // namespace caulk::models
