// The merged checkpoint on disk: one .safetensors file, or a folder of shards with
// model.safetensors.index.json, written at known offsets (so tensors can be written in any order,
// in parallel) and made visible under the final name only when complete.
//
// A target ending in ".safetensors" is one file; any other target is a folder holding
// model.safetensors when the data fits in `max_shard_bytes`, otherwise shards
// model-00001-of-0000N.safetensors (tensors in name order, a new shard whenever the next tensor
// would overflow the current one; a tensor larger than the limit gets a shard of its own) and the
// index. Either is staged beside the target and committed by io::StagedOutput (caulk/io/durable.hpp):
// the target name always holds a complete output, the old one or the new one; without overwrite
// the rename itself refuses an existing target, so of two merges into one target exactly one wins;
// with overwrite only an output caulk marked is replaced (files carry written_by = "caulk" in their
// metadata, folders a .caulk-output file). An interrupted or failed merge leaves only the
// temporary, which the destructor removes (or, after a kill, the next merge beside it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "caulk/io/durable.hpp"
#include "caulk/io/dtype.hpp"

namespace caulk::merge {

struct OutputTensor {
  std::string name;
  io::DType dtype = io::DType::F32;
  std::vector<std::size_t> shape;
  std::size_t bytes() const;
};

// Where each tensor's bytes go.
struct OutputLayout {
  bool folder = false;
  bool sharded = false;              // a folder with an index
  std::vector<std::string> files;    // file names (in the folder, or the single file's name)
  std::vector<std::string> headers;  // per file: the 8-byte header size and the header
  std::vector<std::uint64_t> file_sizes;
  std::vector<std::size_t> file_of;      // per tensor
  std::vector<std::uint64_t> offset_of;  // per tensor: byte offset of its data in its file
  std::uint64_t total_data_bytes = 0;
};

// The layout for `tensors` (in the order given, which is the order in every file).
// Throws DataError naming `target` when a header would exceed the format's limit.
OutputLayout plan_output(const std::filesystem::path& target, const std::vector<OutputTensor>& tensors,
                         const std::map<std::string, std::string>& metadata, std::uint64_t max_shard_bytes);

// Removes the temporaries that killed merges left beside `target` (io::recover_stale_temporaries),
// then throws Error when `target` exists and `overwrite` is false, or when it exists, `overwrite`
// is true and caulk did not write it (nothing is touched).
void check_output_target(const std::filesystem::path& target, bool overwrite);

class MergeOutput {
 public:
  // Checks the target (see check_output_target) and creates the temporary files at full size.
  MergeOutput(std::filesystem::path target, const std::vector<OutputTensor>& tensors, const std::map<std::string, std::string>& metadata,
              std::uint64_t max_shard_bytes, bool overwrite);
  ~MergeOutput();
  MergeOutput(const MergeOutput&) = delete;
  MergeOutput& operator=(const MergeOutput&) = delete;

  // Writes bytes of tensor `tensor` starting `offset` bytes into its data. Safe from any thread.
  void write(std::size_t tensor, std::size_t offset, const void* data, std::size_t size);
  // Flushes every file to disk and moves the result under the target name (replacing what was
  // there when overwrite was allowed and caulk wrote it). Throws Error when the target appeared
  // meanwhile (another run) and may not be replaced; the result is then discarded.
  void commit();

  const OutputLayout& layout() const { return layout_; }
  const std::filesystem::path& target() const { return target_; }
  // The temporary files being written, one per layout file (another process may write into them
  // at the layout's offsets, as long as it flushes them before commit()).
  const std::vector<std::filesystem::path>& temporary_files() const { return temporaries_; }

 private:
  std::filesystem::path target_;
  bool overwrite_;
  OutputLayout layout_;
  std::vector<std::size_t> tensor_bytes_;
  std::vector<std::string> tensor_names_;
  std::unique_ptr<io::StagedOutput> staged_;
  std::vector<std::filesystem::path> temporaries_;
  std::vector<int> fds_;  // per layout file; a folder's are owned here, a single file's by staged_
  bool committed_ = false;
};

// An existing temporary output file (MergeOutput::temporary_files) opened by another writer, for
// positioned writes; flush() puts its data on disk, which must happen before the commit.
class OutputFileWriter {
 public:
  explicit OutputFileWriter(std::filesystem::path path);
  ~OutputFileWriter();
  OutputFileWriter(const OutputFileWriter&) = delete;
  OutputFileWriter& operator=(const OutputFileWriter&) = delete;
  void write(std::uint64_t offset, const void* data, std::size_t size);  // safe from any thread
  void flush();

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace caulk::merge
