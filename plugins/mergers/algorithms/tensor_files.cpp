#include "mergers/algorithms/tensor_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>

#include "caulk/error.hpp"

namespace fs = std::filesystem;

namespace caulk::merge {

namespace {

// The tensor -> file map of a checkpoint, resolved the way io::Checkpoint resolves it.
std::map<std::string, fs::path> tensor_file_map(const io::Checkpoint& c) {
  std::map<std::string, fs::path> out;
  const fs::path& p = c.path();
  std::error_code ec;
  if (!c.sharded()) {
    const fs::path file = fs::is_directory(p, ec) ? p / "model.safetensors" : p;
    for (const auto& name : c.names()) out[name] = file;
    return out;
  }
  const fs::path index = fs::is_directory(p, ec) ? p / "model.safetensors.index.json" : p;
  std::ifstream in(index);
  const auto json = nlohmann::json::parse(in, nullptr, false);
  if (json.is_discarded() || !json.contains("weight_map")) throw DataError(index.string(), "cannot read the index again");
  for (const auto& [tensor, shard] : json["weight_map"].items()) out[tensor] = index.parent_path() / shard.get<std::string>();
  return out;
}

void read_exactly(int fd, std::uint64_t offset, void* out, std::size_t size, const std::string& file) {
  auto* p = static_cast<char*>(out);
  while (size > 0) {
    const ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw DataError(file, n == 0 ? std::string("the file ended early (changed since it was opened?)") : std::string("read failed: ") + std::strerror(errno));
    p += n, size -= static_cast<std::size_t>(n), offset += static_cast<std::uint64_t>(n);
  }
}

}  // namespace

std::shared_ptr<const TensorFiles> TensorFiles::locate(const io::Checkpoint& checkpoint) {
  std::shared_ptr<TensorFiles> files(new TensorFiles());
  std::map<fs::path, std::size_t> numbers;
  std::vector<std::uint64_t> data_start;
  for (const auto& [tensor, file] : tensor_file_map(checkpoint)) {
    auto [it, added] = numbers.emplace(file, files->fds_.size());
    if (added) {
      const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw DataError(file.string(), std::string("cannot open: ") + std::strerror(errno));
      files->fds_.push_back(fd);
      files->names_.push_back(file.string());
      unsigned char size[8];
      read_exactly(fd, 0, size, 8, file.string());
      std::uint64_t header = 0;
      for (int i = 7; i >= 0; --i) header = (header << 8) | size[i];
      data_start.push_back(8 + header);
    }
    files->tensors_[tensor] = {it->second, data_start[it->second] + checkpoint.info(tensor).begin};
  }
  return files;
}

TensorFiles::~TensorFiles() {
  for (int fd : fds_) ::close(fd);
}

void TensorFiles::read(const std::string& tensor, std::uint64_t offset, void* out, std::size_t size) const {
  const Location& at = tensors_.at(tensor);
  read_exactly(fds_[at.file], at.data_offset + offset, out, size, names_[at.file]);
}

}  // namespace caulk::merge
