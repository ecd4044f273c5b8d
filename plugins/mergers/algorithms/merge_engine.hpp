// The streaming merge engine every merge method runs on (docs/mergers.md).
//
// Inputs are checkpoints of one architecture (single .safetensors files or sharded folders), opened
// as memory maps and validated up front: every model must have the same tensor names, shapes and a
// floating-point dtype (F64, F32, F16, BF16), the same dtype per tensor across models; a base and
// Fisher files must match them too. Errors name the first mismatching tensor and the models.
//
// A merge then runs tensor by tensor, in parallel on the current pool (caulk::parallel_for,
// bounded by --jobs), each tensor in chunks of a fixed number of elements, so memory stays bounded
// whatever the model or tensor size: a chunk of every input is read with pread into a buffer
// (the validation maps the files, but no data page stays mapped), widened to the arithmetic type
// (float, or double by option), combined by the method, narrowed to the output dtype (round to
// nearest even) and written at its place in the output.
//
// Methods that need statistics of a whole tensor first (TIES: each task vector's magnitude
// threshold; SLERP: norms and the angle) declare passes that see every chunk before the combining
// pass. Chunks of one tensor are always visited in order, so results never depend on --jobs.
//
// Non-finite values: the first read of every chunk checks the models' and the base's values for
// NaN and infinity, and every merged chunk is checked before it is written (NaN, infinity, or a
// value that would round to infinity in the output dtype); each is an error naming the model, the
// file, the tensor and the element unless MergeOptions::allow_non_finite.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "caulk/io/safetensors.hpp"
#include "mergers/algorithms/tensor_files.hpp"

namespace caulk::merge {

enum class Precision { F32, F64 };

struct MergeModel {
  std::string name;
  std::filesystem::path checkpoint;
  std::filesystem::path fisher;  // empty: none
};

class MergeInputs {
 public:
  // Opens and validates. `need_fisher`: every model must name a Fisher file. Throws Error naming
  // the model and file (and the tensor when one is at fault).
  static MergeInputs open(std::vector<MergeModel> models, std::optional<MergeModel> base, bool need_fisher);

  std::size_t model_count() const { return models_.size(); }
  const MergeModel& model(std::size_t i) const { return models_[i]; }
  bool has_base() const { return base_.has_value(); }
  const MergeModel& base() const { return *base_; }
  bool has_fisher() const { return !fishers_.empty(); }

  // Sorted tensor names, and each tensor's dtype and shape (the same in every model).
  const std::vector<std::string>& tensor_names() const { return checkpoints_.front().names(); }
  const io::TensorInfo& info(const std::string& tensor) const { return checkpoints_.front().info(tensor); }
  // Raw bytes of a tensor (in the mapping) and their dtype.
  std::span<const std::byte> model_bytes(std::size_t i, const std::string& tensor) const { return checkpoints_[i].bytes(tensor); }
  std::span<const std::byte> base_bytes(const std::string& tensor) const { return base_checkpoint_->bytes(tensor); }
  std::span<const std::byte> fisher_bytes(std::size_t i, const std::string& tensor) const { return fishers_[i].bytes(tensor); }
  io::DType fisher_dtype(std::size_t i, const std::string& tensor) const { return fishers_[i].info(tensor).dtype; }
  // The same tensors for positioned reads.
  const TensorFiles& model_files(std::size_t i) const { return *model_files_[i]; }
  const TensorFiles& base_files() const { return *base_files_; }
  const TensorFiles& fisher_files(std::size_t i) const { return *fisher_files_[i]; }
  // Total bytes of one model's tensors.
  std::uint64_t model_data_bytes() const;

 private:
  std::vector<MergeModel> models_;
  std::optional<MergeModel> base_;
  std::vector<io::Checkpoint> checkpoints_;
  std::optional<io::Checkpoint> base_checkpoint_;
  std::vector<io::Checkpoint> fishers_;
  std::vector<std::shared_ptr<const TensorFiles>> model_files_, fisher_files_;
  std::shared_ptr<const TensorFiles> base_files_;
};

// One chunk of one tensor, widened to the arithmetic type S: elements [first, first + count).
template <class S>
struct Chunk {
  const std::string& tensor;
  std::size_t tensor_elements;
  std::size_t first, count;
  const S* base;                  // nullptr when the method uses no base
  std::vector<const S*> models;   // one per model, in the inputs' order
  std::vector<const S*> fishers;  // one per model when the method uses Fisher, else empty
};

// Per-tensor state a method keeps between passes (thresholds, norms, counters).
struct TensorState {
  virtual ~TensorState() = default;
};

class MergeMethod {
 public:
  virtual ~MergeMethod() = default;
  virtual std::string name() const = 0;
  virtual bool uses_base() const { return false; }
  virtual bool uses_fisher() const { return false; }
  // Checks the inputs fit the method (number of models, weights naming models...). Throws Error.
  virtual void check(const MergeInputs& inputs) const {}
  // Whole-model statistics gathered before any tensor is merged (streamed in chunks).
  virtual void prepare(const MergeInputs& inputs, std::size_t chunk_elements) {}
  // What prepare() computed, as numbers another process can adopt instead of computing it again
  // (one output file per process: docs/scaling.md). By default prepare() is cheap and is rerun.
  virtual std::vector<double> prepared_values() const { return {}; }
  virtual void adopt_prepared(const MergeInputs& inputs, const std::vector<double>& values, std::size_t chunk_elements) {
    prepare(inputs, chunk_elements);
  }
  // Passes over each tensor's chunks before the combining pass.
  virtual int statistics_passes(Precision p) const { return 0; }
  virtual std::unique_ptr<TensorState> start(const std::string& tensor, std::size_t elements, std::size_t models) const { return nullptr; }
  virtual void observe(TensorState* state, int pass, const Chunk<float>& chunk) const {}
  virtual void observe(TensorState* state, int pass, const Chunk<double>& chunk) const {}
  virtual void end_pass(TensorState* state, int pass) const {}
  // Writes chunk.count merged elements to `out`.
  virtual void combine(TensorState* state, const Chunk<float>& chunk, float* out) const = 0;
  virtual void combine(TensorState* state, const Chunk<double>& chunk, double* out) const = 0;
};

struct MergeOptions {
  Precision precision = Precision::F32;
  std::optional<io::DType> output_dtype;  // absent: each tensor keeps its inputs' dtype
  std::size_t chunk_elements = std::size_t{1} << 20;
  std::uint64_t max_shard_bytes = 5'000'000'000;  // folder output: shard above this
  bool overwrite = false;
  // Merge NaN and infinity as they come (otherwise an input holding one, or a merged value that
  // overflows the arithmetic or the output dtype, is an error naming the model, file, tensor and
  // element; see non_finite.hpp).
  bool allow_non_finite = false;
  std::map<std::string, std::string> metadata;  // written into the output's header
  // Called (from any thread) as work completes: tensors finished, bytes read plus written.
  std::function<void(std::size_t tensors, std::uint64_t bytes)> on_progress;
};

struct MergeReport {
  std::size_t tensors = 0;
  std::uint64_t bytes_read = 0, bytes_written = 0;
  double seconds = 0;
  std::size_t files = 0;
  bool sharded = false;
};

// Bytes a merge will read plus write (for a progress bar's total).
std::uint64_t planned_io_bytes(const MergeInputs& inputs, const MergeMethod& method, const MergeOptions& options);

// Merges into `output` (a .safetensors file, or a folder; see merge_output.hpp). Nothing appears
// under `output` unless the whole merge succeeds.
MergeReport run_merge(const MergeInputs& inputs, MergeMethod& method, const std::filesystem::path& output, const MergeOptions& options);

// ------------------------------------------------------ a merge written one output file at a time
// For a merge whose output files are written by different processes (a distributed run, where
// each file is one unit): StagedMerge checks and prepares the merge and creates the temporary
// output, every file's job is run by merge_output_file (anywhere the temporary is visible), and
// commit() makes the whole output visible. The bytes are those run_merge writes.

// One output file of a staged merge: its temporary path and, in file order, its tensors with the
// byte offset of each tensor's data in the file and the dtype it is written in.
struct OutputFileJob {
  std::filesystem::path path;
  std::vector<std::string> tensors;
  std::vector<std::uint64_t> offsets;
  std::vector<io::DType> dtypes;
};

class MergeOutput;

class StagedMerge {
 public:
  // The checks of run_merge, then method.prepare, then the temporary output at full size.
  StagedMerge(const MergeInputs& inputs, MergeMethod& method, const std::filesystem::path& output, const MergeOptions& options);
  ~StagedMerge();
  std::size_t file_count() const;
  const std::string& file_name(std::size_t f) const;  // the file's name in the finished output
  OutputFileJob file_job(std::size_t f) const;
  // Once every file's job succeeded: the output under its final name. `io_bytes[f]` is what
  // merge_output_file returned for file f.
  MergeReport commit(const std::vector<std::uint64_t>& io_bytes);

 private:
  std::chrono::steady_clock::time_point started_;
  std::vector<std::string> names_;
  std::vector<std::uint64_t> tensor_bytes_;
  std::vector<io::DType> dtypes_;
  std::unique_ptr<MergeOutput> out_;
  std::vector<std::filesystem::path> temporaries_;
};

// Merges the tensors of one output file into its temporary (positioned writes, tensors in
// parallel on the current pool), then flushes it to disk. `method` must have been prepared (or
// have adopted the prepared values). Returns the bytes read plus written.
std::uint64_t merge_output_file(const MergeInputs& inputs, const MergeMethod& method, const OutputFileJob& job, Precision precision,
                                std::size_t chunk_elements, bool allow_non_finite = false);

// Releases the pages of a mapped range already consumed (those wholly inside it); used where a
// file is read through its mapping (the Fisher norms).
void release_pages(const std::byte* begin, std::size_t size);

}  // namespace caulk::merge
