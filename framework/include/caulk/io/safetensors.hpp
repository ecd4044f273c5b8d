// .safetensors files, single or sharded, as docs/pipeline-format.md specifies.
//
// Reading memory-maps the file and validates the whole header up front (header size, JSON, dtypes,
// shapes, offsets that tile the data exactly); tensors are then read one at a time.
// Writing is streaming (one tensor at a time, never the whole model) and atomic.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "caulk/io/dtype.hpp"
#include "caulk/io/durable.hpp"
#include "caulk/io/mapped_file.hpp"

namespace caulk::io {

inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::size_t> shape;
  std::size_t begin = 0, end = 0;  // byte offsets relative to the start of the data
  std::size_t element_count() const;
  std::size_t byte_size() const { return end - begin; }
};

class SafetensorsFile {
 public:
  // Maps and validates; throws DataError naming the file and, when it applies, the tensor.
  static SafetensorsFile open(const std::filesystem::path& path);
  // Validates an in-memory image (used by the fuzzers and tests); `name` is used in errors.
  static SafetensorsFile from_bytes(std::shared_ptr<const std::vector<std::byte>> bytes, const std::filesystem::path& name);

  const std::filesystem::path& path() const { return path_; }
  // Tensors in the order of their data offsets.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  // Throws DataError naming the file and the tensor when absent.
  const TensorInfo& at(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Bytes from the start of the file to the data section (8 + the header's size).
  std::uint64_t data_offset() const { return data_offset_; }

  // A tensor's bytes, in place. For a mapped file, call check_intact() after reading them.
  std::span<const std::byte> bytes(const TensorInfo& t) const;
  // Throws DataError when the mapped file shrank while it was read (caulk/io/mapped_file.hpp).
  void check_intact() const;
  // The tensor's elements converted (F16 and BF16 widened exactly).
  std::vector<float> to_float(const std::string& name) const;
  std::vector<double> to_double(const std::string& name) const;

 private:
  void parse(const std::byte* data, std::size_t size);
  std::filesystem::path path_;
  std::shared_ptr<const void> owner_;
  const MappedFile* mapping_ = nullptr;  // owned by owner_; null for an image in memory
  const std::byte* data_start_ = nullptr;
  std::uint64_t data_offset_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Where a tensor's bytes lie on disk, for readers that read files rather than mappings.
struct TensorLocation {
  std::filesystem::path file;  // the .safetensors file (a shard, for a sharded checkpoint)
  std::uint64_t offset = 0;    // of the tensor's first byte in the file
};

// A checkpoint that may be one .safetensors file or a folder of shards with
// model.safetensors.index.json. Every shard is mapped and its header validated at open, so an
// index that disagrees with its shards is caught before anything runs; tensor data is only read
// (paged in) when used.
class Checkpoint {
 public:
  // `path` is a .safetensors file, a folder holding model.safetensors.index.json (or a single
  // model.safetensors), or the index file itself. Throws DataError (missing shard, tensor listed
  // in the index but absent from its shard, a tensor in two shards or in none the index names,
  // bad JSON, ...).
  static Checkpoint open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  // Tensor names in a stable order (sorted).
  const std::vector<std::string>& names() const { return names_; }
  const TensorInfo& info(const std::string& name) const;
  TensorLocation location(const std::string& name) const;
  // In place: call check_intact() after reading them.
  std::span<const std::byte> bytes(const std::string& name) const;
  // Throws DataError when a shard's mapped file shrank while it was read.
  void check_intact() const;
  std::vector<float> to_float(const std::string& name) const;
  std::vector<double> to_double(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool sharded() const { return sharded_; }

 private:
  static Checkpoint open_single(const std::filesystem::path& path, const std::filesystem::path& file);
  static Checkpoint open_index(const std::filesystem::path& path, const std::filesystem::path& index);
  const SafetensorsFile& shard_of(const std::string& name) const;
  std::filesystem::path path_;
  bool sharded_ = false;
  std::vector<std::string> names_;
  std::map<std::string, std::size_t> shard_index_;  // tensor name -> shard number
  std::vector<std::shared_ptr<SafetensorsFile>> shards_;
  std::map<std::string, std::string> metadata_;
};

// Streaming atomic writer: declare every tensor first, then write their bytes in declared order.
class SafetensorsWriter {
 public:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<std::size_t> shape;
  };
  SafetensorsWriter(const std::filesystem::path& path, std::vector<Entry> entries, std::map<std::string, std::string> metadata = {});
  ~SafetensorsWriter();
  // Writes the next declared tensor; the byte count must match its dtype and shape.
  void write(const std::string& name, const void* data, std::size_t bytes);
  // Every declared tensor must have been written. Renames onto the target as `existing` says
  // (caulk/io/durable.hpp).
  void commit(OnExisting existing = OnExisting::Replace);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One tensor held in memory, for small checkpoints and tests.
struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::size_t> shape;
  std::vector<std::byte> data;
};
void write_safetensors(const std::filesystem::path& path, const std::vector<Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {}, OnExisting existing = OnExisting::Replace);

}  // namespace caulk::io
