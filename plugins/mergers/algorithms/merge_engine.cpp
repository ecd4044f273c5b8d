#include "mergers/algorithms/merge_engine.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>

#include "caulk/error.hpp"
#include "caulk/parallel.hpp"
#include "mergers/algorithms/element_codec.hpp"
#include "mergers/algorithms/merge_output.hpp"
#include "mergers/algorithms/non_finite.hpp"

namespace caulk::merge {

namespace {

std::string shape_text(const std::vector<std::size_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

io::Checkpoint open_checkpoint(const std::filesystem::path& path, const std::string& what) {
  try {
    return io::Checkpoint::open(path);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", what, e.what()));
  }
}

// The first tensor name in one sorted list and not the other, as an error; nothing when equal.
void compare_names(const io::Checkpoint& a, const std::string& a_what, const io::Checkpoint& b, const std::string& b_what) {
  const auto& x = a.names();
  const auto& y = b.names();
  std::size_t i = 0, j = 0;
  while (i < x.size() || j < y.size()) {
    if (j == y.size() || (i < x.size() && x[i] < y[j]))
      throw Error(fmt::format("tensor '{}' is in {} ({}) but not in {} ({})", x[i], a_what, a.path().string(), b_what, b.path().string()));
    if (i == x.size() || y[j] < x[i])
      throw Error(fmt::format("tensor '{}' is in {} ({}) but not in {} ({})", y[j], b_what, b.path().string(), a_what, a.path().string()));
    ++i, ++j;
  }
}

void compare_shapes(const io::Checkpoint& a, const std::string& a_what, const io::Checkpoint& b, const std::string& b_what,
                    bool same_dtype) {
  for (const std::string& name : a.names()) {
    const io::TensorInfo& s = a.info(name);
    const io::TensorInfo& t = b.info(name);
    if (s.shape != t.shape)
      throw Error(
          fmt::format("tensor '{}' has shape {} in {} but {} in {}", name, shape_text(s.shape), a_what, shape_text(t.shape), b_what));
    if (!is_merge_dtype(t.dtype))
      throw Error(fmt::format("tensor '{}' of {} ({}) is {}: merges read F64, F32, F16 and BF16 tensors only", name, b_what,
                              b.path().string(), io::dtype_name(t.dtype)));
    if (same_dtype && s.dtype != t.dtype)
      throw Error(fmt::format("tensor '{}' is {} in {} but {} in {}: the models must share each tensor's dtype", name,
                              io::dtype_name(s.dtype), a_what, io::dtype_name(t.dtype), b_what));
  }
}

std::string model_what(const MergeModel& m) { return fmt::format("model '{}'", m.name); }

}  // namespace

MergeInputs MergeInputs::open(std::vector<MergeModel> models, std::optional<MergeModel> base, bool need_fisher) {
  if (models.empty()) throw Error("no models to merge");
  MergeInputs in;
  for (const MergeModel& m : models) in.checkpoints_.push_back(open_checkpoint(m.checkpoint, model_what(m)));
  const std::string first = model_what(models[0]);
  for (const std::string& name : in.checkpoints_[0].names()) {
    const io::DType t = in.checkpoints_[0].info(name).dtype;
    if (!is_merge_dtype(t))
      throw Error(fmt::format("tensor '{}' of {} ({}) is {}: merges read F64, F32, F16 and BF16 tensors only", name, first,
                              in.checkpoints_[0].path().string(), io::dtype_name(t)));
  }
  if (in.checkpoints_[0].names().empty()) throw Error(fmt::format("{} ({}) holds no tensors", first, models[0].checkpoint.string()));
  for (std::size_t i = 1; i < models.size(); ++i) {
    compare_names(in.checkpoints_[0], first, in.checkpoints_[i], model_what(models[i]));
    compare_shapes(in.checkpoints_[0], first, in.checkpoints_[i], model_what(models[i]), true);
  }
  if (base) {
    const std::string what = fmt::format("the base '{}'", base->name);
    in.base_checkpoint_ = open_checkpoint(base->checkpoint, what);
    compare_names(in.checkpoints_[0], first, *in.base_checkpoint_, what);
    compare_shapes(in.checkpoints_[0], first, *in.base_checkpoint_, what, true);
  }
  if (need_fisher) {
    for (std::size_t i = 0; i < models.size(); ++i) {
      const std::string what = fmt::format("the Fisher file of model '{}'", models[i].name);
      if (models[i].fisher.empty())
        throw Error(
            fmt::format("model '{}' has no Fisher file: run analysis.fisher on it, or name one with `fisher = \"...\"` in the manifest",
                        models[i].name));
      in.fishers_.push_back(open_checkpoint(models[i].fisher, what));
      compare_names(in.checkpoints_[i], model_what(models[i]), in.fishers_.back(), what);
      compare_shapes(in.checkpoints_[i], model_what(models[i]), in.fishers_.back(), what, false);
    }
  }
  for (const auto& c : in.checkpoints_) in.model_files_.push_back(TensorFiles::locate(c));
  for (const auto& c : in.fishers_) in.fisher_files_.push_back(TensorFiles::locate(c));
  if (in.base_checkpoint_) in.base_files_ = TensorFiles::locate(*in.base_checkpoint_);
  in.models_ = std::move(models);
  in.base_ = std::move(base);
  return in;
}

std::uint64_t MergeInputs::model_data_bytes() const {
  std::uint64_t total = 0;
  for (const std::string& name : tensor_names()) total += info(name).byte_size();
  return total;
}

void release_pages(const std::byte* begin, std::size_t size) {
  static const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto start = (reinterpret_cast<std::uintptr_t>(begin) + page - 1) / page * page;
  const auto end = (reinterpret_cast<std::uintptr_t>(begin) + size) / page * page;
  // A clean, read-only private file mapping: dropped pages are read again from the page cache if
  // ever touched, so this only lowers resident memory. Best effort.
  if (end > start) ::madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED);
}

namespace {

struct Reader {
  const TensorFiles* files;
  io::DType dtype;
};

template <class S>
constexpr io::DType native_dtype() {
  return sizeof(S) == 4 ? io::DType::F32 : io::DType::F64;
}

// A buffer that grows but never shrinks and is never zero-filled: each worker thread keeps its
// own for the process's life, so chunks do not pay for fresh pages (faults and zeroing cost more
// than the merge arithmetic).
template <class T>
struct Scratch {
  std::unique_ptr<T[]> data;
  std::size_t size = 0;
  T* get(std::size_t n) {
    if (size < n) {
      data.reset(new T[n]);  // default-initialised: no memset
      size = n;
    }
    return data.get();
  }
};

template <class S>
struct Workspace {
  std::vector<Scratch<S>> models, fishers;
  Scratch<S> base, out;
  Scratch<std::byte> raw, encoded;
};

// Elements [first, first + count) of a tensor as S in `buffer`: read straight into it when the
// file holds S, else read as bytes into `raw` and widened. With `non_finite`, the values are
// scanned once read and *non_finite is the index of the first NaN or infinity (count: none). The
// scan costs about what the read's copy costs in memory traffic (measured: reading the chunk in
// pieces that the scan would find in cache was no cheaper).
template <class S>
const S* read_chunk(const Reader& r, const std::string& tensor, std::size_t first, std::size_t count, Scratch<S>& buffer,
                    Scratch<std::byte>& raw, std::size_t* non_finite = nullptr) {
  const std::size_t size = io::dtype_size(r.dtype);
  S* out = buffer.get(count);
  if (r.dtype == native_dtype<S>()) {
    r.files->read(tensor, first * size, out, count * size);
  } else {
    std::byte* bytes = raw.get(count * size);
    r.files->read(tensor, first * size, bytes, count * size);
    decode(bytes, r.dtype, 0, count, out);
  }
  if (non_finite) *non_finite = first_non_finite(out, count);
  return out;
}

// Writes `size` bytes of the tensor's output starting `offset` bytes into its data.
using TensorWrite = std::function<void(std::size_t offset, const void* data, std::size_t size)>;

// An input value that is NaN or infinite once widened, as an error naming the model (or base),
// the file, the tensor and the element. The element is read again in double: a finite F64 value
// beyond float's range is infinite only in float32 arithmetic, which the message says.
[[noreturn]] void refuse_non_finite_input(const std::string& what, const TensorFiles& files, const std::string& tensor,
                                          const io::TensorInfo& info, std::size_t element, double widened) {
  std::byte raw[8];
  const std::size_t size = io::dtype_size(info.dtype);
  files.read(tensor, element * size, raw, size);
  double stored = 0;
  decode(raw, info.dtype, 0, 1, &stored);
  const std::string where = fmt::format("{}: tensor '{}', element {}", what, tensor, element_text(element, info.shape));
  if (std::isfinite(stored))
    throw DataError(files.file_of(tensor), fmt::format("{} is {}, which is {} in float32 arithmetic: merge with precision = \"float64\"",
                                                       where, value_text(stored), value_text(widened)));
  throw DataError(files.file_of(tensor), fmt::format("{} is {}; a merge would carry it into the output: repair or leave out the model, or "
                                                     "set allow_non_finite = true to merge it as it is",
                                                     where, value_text(stored)));
}

// A merged chunk that holds NaN or infinity, or a value the output dtype cannot hold, as an error.
template <class S>
void check_merged(const MergeMethod& method, const std::string& tensor, const io::TensorInfo& info, std::size_t first, const S* out,
                  std::size_t count, io::DType out_dtype) {
  if (const std::size_t j = first_non_finite(out, count); j < count)
    throw Error(
        fmt::format("{}: tensor '{}', element {}: the merged value is {} although every input is finite (the arithmetic "
                    "overflowed{}): lower the weights or lambda, or set allow_non_finite = true to write it as it is",
                    method.name(), tensor, element_text(first + j, info.shape), value_text(static_cast<double>(out[j])),
                    sizeof(S) == 4 ? "; precision = \"float64\" has a wider range" : ""));
  const double limit =
      sizeof(S) == 4 && out_dtype == io::DType::F32 ? std::numeric_limits<double>::infinity() : overflow_threshold(out_dtype);
  if (const std::size_t j = first_at_least(out, count, limit); j < count)
    throw Error(fmt::format(
        "{}: tensor '{}', element {}: the merged value {} is beyond the range of the output dtype {} and would be written "
        "as infinity: choose a wider dtype (dtype = \"F32\" or \"auto\"), or set allow_non_finite = true",
        method.name(), tensor, element_text(first + j, info.shape), value_text(static_cast<double>(out[j])), io::dtype_name(out_dtype)));
}

template <class S>
std::uint64_t merge_tensor(const MergeInputs& in, const MergeMethod& method, const std::string& name, io::DType out_dtype,
                           std::size_t chunk_elements, int passes, bool allow_non_finite, const TensorWrite& write,
                           const std::function<void(std::size_t, std::uint64_t)>& progress) {
  const io::TensorInfo& info = in.info(name);
  const std::size_t n = info.element_count(), k = in.model_count();
  const std::size_t chunk = std::max<std::size_t>(1, std::min(chunk_elements, n));
  const bool base = method.uses_base(), fisher = method.uses_fisher();

  std::vector<Reader> models, fishers;
  for (std::size_t i = 0; i < k; ++i) models.push_back({&in.model_files(i), info.dtype});
  std::optional<Reader> base_reader;
  if (base) base_reader = Reader{&in.base_files(), info.dtype};
  if (fisher)
    for (std::size_t i = 0; i < k; ++i) fishers.push_back({&in.fisher_files(i), in.fisher_dtype(i, name)});

  static thread_local Workspace<S> work;
  if (work.models.size() < k) work.models.resize(k);
  if (fisher && work.fishers.size() < k) work.fishers.resize(k);
  S* out = work.out.get(chunk);
  const bool encode_needed = out_dtype != native_dtype<S>();
  std::byte* encoded = encode_needed ? work.encoded.get(chunk * io::dtype_size(out_dtype)) : nullptr;
  std::unique_ptr<TensorState> state = method.start(name, n, k);
  std::uint64_t io_bytes = 0;

  // `check`: the first read of the chunk (the first pass over the tensor), whose model and base
  // values are checked for NaN and infinity before the method sees them.
  auto load = [&](std::size_t first, std::size_t count, bool with_fisher, bool check) {
    Chunk<S> c{name, n, first, count, nullptr, {}, {}};
    std::uint64_t bytes = 0;
    std::size_t bad = count;
    for (std::size_t i = 0; i < k; ++i) {
      c.models.push_back(read_chunk<S>(models[i], name, first, count, work.models[i], work.raw, check ? &bad : nullptr));
      if (bad < count)
        refuse_non_finite_input(fmt::format("model '{}'", in.model(i).name), in.model_files(i), name, info, first + bad, c.models[i][bad]);
      bytes += count * io::dtype_size(info.dtype);
    }
    if (base) {
      c.base = read_chunk<S>(*base_reader, name, first, count, work.base, work.raw, check ? &bad : nullptr);
      if (bad < count)
        refuse_non_finite_input(fmt::format("the base '{}'", in.base().name), in.base_files(), name, info, first + bad, c.base[bad]);
      bytes += count * io::dtype_size(info.dtype);
    }
    if (with_fisher)
      for (std::size_t i = 0; i < k; ++i) {
        c.fishers.push_back(read_chunk<S>(fishers[i], name, first, count, work.fishers[i], work.raw));
        bytes += count * io::dtype_size(fishers[i].dtype);
      }
    return std::pair{std::move(c), bytes};
  };
  const bool check = !allow_non_finite;
  for (int pass = 0; pass < passes; ++pass) {
    for (std::size_t first = 0; first < n; first += chunk) {
      const std::size_t count = std::min(chunk, n - first);
      auto [c, bytes] = load(first, count, false, check && pass == 0);
      method.observe(state.get(), pass, c);
      io_bytes += bytes;
      if (progress) progress(0, bytes);
    }
    method.end_pass(state.get(), pass);
  }
  for (std::size_t first = 0; first < n; first += chunk) {
    const std::size_t count = std::min(chunk, n - first);
    auto [c, bytes] = load(first, count, fisher, check && passes == 0);
    method.combine(state.get(), c, out);
    if (check) check_merged(method, name, info, first, out, count, out_dtype);
    const void* data = out;
    if (encode_needed) {
      encode(out, count, out_dtype, encoded);
      data = encoded;
    }
    const std::size_t out_bytes = count * io::dtype_size(out_dtype);
    write(first * io::dtype_size(out_dtype), data, out_bytes);
    io_bytes += bytes + out_bytes;
    if (progress) progress(0, bytes + out_bytes);
  }
  if (progress) progress(1, 0);
  return io_bytes;
}

}  // namespace

std::uint64_t planned_io_bytes(const MergeInputs& in, const MergeMethod& method, const MergeOptions& options) {
  const int passes = method.statistics_passes(options.precision);
  std::uint64_t total = 0;
  for (const std::string& name : in.tensor_names()) {
    const io::TensorInfo& t = in.info(name);
    const std::uint64_t one = t.byte_size();
    const std::uint64_t inputs = one * (in.model_count() + (method.uses_base() ? 1 : 0));
    total += inputs * static_cast<std::uint64_t>(passes + 1);
    if (method.uses_fisher())
      for (std::size_t i = 0; i < in.model_count(); ++i) total += in.fisher_bytes(i, name).size();
    total += t.element_count() * io::dtype_size(options.output_dtype.value_or(t.dtype));
  }
  return total;
}

namespace {

void check_merge(const MergeInputs& in, MergeMethod& method, const std::filesystem::path& output, const MergeOptions& options) {
  if (method.uses_base() && !in.has_base())
    throw Error(
        fmt::format("{} subtracts a base model: mark the pre-trained model with base = true in the manifest, or name it with the "
                    "`base` parameter",
                    method.name()));
  if (method.uses_fisher() && !in.has_fisher()) throw Error(fmt::format("{} needs a Fisher file for every model", method.name()));
  if (options.output_dtype && !is_merge_dtype(*options.output_dtype))
    throw Error(fmt::format("output dtype {} is not a floating-point dtype", io::dtype_name(*options.output_dtype)));
  method.check(in);
  check_output_target(output, options.overwrite);  // before any work
}

std::vector<OutputTensor> output_tensors(const MergeInputs& in, const MergeOptions& options) {
  std::vector<OutputTensor> tensors;
  for (const std::string& name : in.tensor_names()) {
    const io::TensorInfo& t = in.info(name);
    tensors.push_back({name, options.output_dtype.value_or(t.dtype), t.shape});
  }
  return tensors;
}

std::uint64_t merge_one(const MergeInputs& in, const MergeMethod& method, const std::string& name, io::DType out_dtype, Precision precision,
                        std::size_t chunk_elements, int passes, bool allow_non_finite, const TensorWrite& write,
                        const std::function<void(std::size_t, std::uint64_t)>& progress) {
  return precision == Precision::F32
             ? merge_tensor<float>(in, method, name, out_dtype, chunk_elements, passes, allow_non_finite, write, progress)
             : merge_tensor<double>(in, method, name, out_dtype, chunk_elements, passes, allow_non_finite, write, progress);
}

MergeReport report_of(const std::vector<OutputTensor>& tensors, const std::vector<std::uint64_t>& io_bytes, const OutputLayout& layout,
                      std::chrono::steady_clock::time_point started) {
  MergeReport report;
  report.tensors = tensors.size();
  for (const auto& t : tensors) report.bytes_written += t.bytes();
  for (auto b : io_bytes) report.bytes_read += b;
  report.bytes_read -= report.bytes_written;
  report.files = layout.files.size();
  report.sharded = layout.sharded;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace

MergeReport run_merge(const MergeInputs& in, MergeMethod& method, const std::filesystem::path& output, const MergeOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  check_merge(in, method, output, options);
  method.prepare(in, options.chunk_elements);

  const auto& names = in.tensor_names();
  const std::vector<OutputTensor> tensors = output_tensors(in, options);
  MergeOutput out(output, tensors, options.metadata, options.max_shard_bytes, options.overwrite);
  const int passes = method.statistics_passes(options.precision);
  std::vector<std::uint64_t> io_bytes(names.size());
  parallel_for(names.size(), [&](std::size_t i) {
    const TensorWrite write = [&](std::size_t offset, const void* data, std::size_t size) { out.write(i, offset, data, size); };
    io_bytes[i] = merge_one(in, method, names[i], tensors[i].dtype, options.precision, options.chunk_elements, passes,
                            options.allow_non_finite, write, options.on_progress);
  });
  out.commit();
  return report_of(tensors, io_bytes, out.layout(), started);
}

StagedMerge::StagedMerge(const MergeInputs& in, MergeMethod& method, const std::filesystem::path& output, const MergeOptions& options)
    : started_(std::chrono::steady_clock::now()) {
  check_merge(in, method, output, options);
  method.prepare(in, options.chunk_elements);
  const std::vector<OutputTensor> tensors = output_tensors(in, options);
  for (const auto& t : tensors) {
    names_.push_back(t.name);
    tensor_bytes_.push_back(t.bytes());
    dtypes_.push_back(t.dtype);
  }
  out_ = std::make_unique<MergeOutput>(output, tensors, options.metadata, options.max_shard_bytes, options.overwrite);
}

StagedMerge::~StagedMerge() = default;

std::size_t StagedMerge::file_count() const { return out_->layout().files.size(); }

const std::string& StagedMerge::file_name(std::size_t f) const { return out_->layout().files.at(f); }

OutputFileJob StagedMerge::file_job(std::size_t f) const {
  const OutputLayout& layout = out_->layout();
  OutputFileJob job;
  job.path = out_->temporary_files().at(f);
  for (std::size_t i = 0; i < names_.size(); ++i) {
    if (layout.file_of[i] != f) continue;
    job.tensors.push_back(names_[i]);
    job.offsets.push_back(layout.offset_of[i]);
    job.dtypes.push_back(dtypes_[i]);
  }
  return job;
}

MergeReport StagedMerge::commit(const std::vector<std::uint64_t>& io_bytes) {
  if (io_bytes.size() != file_count())
    throw Error(fmt::format("internal: {} file results for {} output files", io_bytes.size(), file_count()));
  out_->commit();
  std::vector<OutputTensor> tensors;
  for (std::size_t i = 0; i < names_.size(); ++i)
    tensors.push_back({names_[i], dtypes_[i], {tensor_bytes_[i] / io::dtype_size(dtypes_[i])}});
  return report_of(tensors, io_bytes, out_->layout(), started_);
}

std::uint64_t merge_output_file(const MergeInputs& in, const MergeMethod& method, const OutputFileJob& job, Precision precision,
                                std::size_t chunk_elements, bool allow_non_finite) {
  if (job.offsets.size() != job.tensors.size() || job.dtypes.size() != job.tensors.size())
    throw Error(fmt::format("{}: the file job lists {} tensors, {} offsets and {} dtypes", job.path.string(), job.tensors.size(),
                            job.offsets.size(), job.dtypes.size()));
  for (std::size_t t = 0; t < job.tensors.size(); ++t) {
    const auto& names = in.tensor_names();
    if (!std::binary_search(names.begin(), names.end(), job.tensors[t]))
      throw Error(fmt::format("{}: tensor '{}' of the file job is not in the merged models", job.path.string(), job.tensors[t]));
    if (!is_merge_dtype(job.dtypes[t]))
      throw Error(fmt::format("{}: output dtype {} is not a floating-point dtype", job.path.string(), io::dtype_name(job.dtypes[t])));
  }
  OutputFileWriter file(job.path);
  const int passes = method.statistics_passes(precision);
  std::vector<std::uint64_t> io_bytes(job.tensors.size());
  parallel_for(job.tensors.size(), [&](std::size_t t) {
    const TensorWrite write = [&](std::size_t offset, const void* data, std::size_t size) {
      file.write(job.offsets[t] + offset, data, size);
    };
    io_bytes[t] = merge_one(in, method, job.tensors[t], job.dtypes[t], precision, chunk_elements, passes, allow_non_finite, write, {});
  });
  file.flush();
  std::uint64_t total = 0;
  for (auto b : io_bytes) total += b;
  return total;
}

}  // namespace caulk::merge
