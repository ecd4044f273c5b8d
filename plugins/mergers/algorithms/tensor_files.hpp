// Where each tensor of a checkpoint lies on disk, for positioned reads (pread) into the merge's own
// buffers: nothing stays mapped, so resident memory does not grow with the checkpoint, and
// reading costs one copy, like any plain reader (no page faults, no unmapping).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "caulk/io/input_file.hpp"
#include "caulk/io/safetensors.hpp"

namespace caulk::merge {

class TensorFiles {
 public:
  // For a checkpoint opened (and so validated) by io::Checkpoint. Throws DataError naming the file.
  static std::shared_ptr<const TensorFiles> locate(const io::Checkpoint& checkpoint);
  ~TensorFiles();
  TensorFiles(const TensorFiles&) = delete;
  TensorFiles& operator=(const TensorFiles&) = delete;

  // Reads `size` bytes starting `offset` bytes into the tensor's data. Safe from any thread.
  void read(const std::string& tensor, std::uint64_t offset, void* out, std::size_t size) const;
  // The file holding the tensor (a shard of a sharded checkpoint), for messages.
  const std::string& file_of(const std::string& tensor) const { return names_[tensors_.at(tensor).file]; }

 private:
  TensorFiles() = default;
  struct Location {
    std::size_t file = 0;
    std::uint64_t data_offset = 0;  // of the tensor's first byte in its file
  };
  std::vector<io::InputFile> inputs_;  // open while the merge reads
  std::vector<int> fds_;               // inputs_[i].fd()
  std::vector<std::string> names_;
  std::map<std::string, Location> tensors_;
};

}  // namespace caulk::merge
