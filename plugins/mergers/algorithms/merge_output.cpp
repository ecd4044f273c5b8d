#include "mergers/algorithms/merge_output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <system_error>

#include "caulk/error.hpp"
#include "caulk/io/safetensors.hpp"

namespace fs = std::filesystem;

namespace caulk::merge {

std::size_t OutputTensor::bytes() const {
  std::size_t n = io::dtype_size(dtype);
  for (std::size_t d : shape) n *= d;  // shapes come from validated inputs
  return n;
}

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

bool is_single_file_target(const fs::path& target) { return target.filename().string().ends_with(".safetensors"); }

// The header as io::SafetensorsWriter writes it (compact JSON, "__metadata__" first, tensors in data
// order, padded with spaces to a multiple of 8), preceded by its 8-byte little-endian size.
std::string header_bytes(const std::vector<const OutputTensor*>& tensors, const std::map<std::string, std::string>& metadata,
                         const std::string& file) {
  using ordered = nlohmann::ordered_json;
  ordered header = ordered::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const OutputTensor* t : tensors) {
    const std::uint64_t size = t->bytes();
    header[t->name] = ordered{{"dtype", io::dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", ordered::array({offset, offset + size})}};
    offset += size;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception&) {
    throw DataError(file, "a tensor name or metadata string is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > io::kMaxSafetensorsHeader)
    throw DataError(file, fmt::format("the header would be {} bytes, over the format's limit of {}", text.size(), io::kMaxSafetensorsHeader));
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xFF);
  return out + text;
}

void write_all(int fd, std::uint64_t offset, const void* data, std::size_t size, const std::string& file) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw DataError(file, std::string("write failed: ") + std::strerror(errno));
    }
    p += n, size -= static_cast<std::size_t>(n), offset += static_cast<std::uint64_t>(n);
  }
}

fs::path sibling_name(const fs::path& target, const std::string& tag) {
  std::random_device rd;
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  return dir / fmt::format(".{}.{}-{:08x}", target.filename().string(), tag, rd());
}

// Moves an existing target aside (to be removed once the new one is in place); empty when none.
fs::path move_aside(const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(target, ec))) return {};
  const fs::path old = sibling_name(target, "old");
  fs::rename(target, old, ec);
  if (ec) throw DataError(target.string(), "cannot move the existing output aside to replace it: " + ec.message());
  return old;
}

void sync_path(const fs::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

OutputLayout plan_output(const fs::path& target, const std::vector<OutputTensor>& tensors,
                         const std::map<std::string, std::string>& metadata, std::uint64_t max_shard_bytes) {
  OutputLayout layout;
  layout.folder = !is_single_file_target(target);
  for (const auto& t : tensors) layout.total_data_bytes += t.bytes();
  layout.sharded = layout.folder && max_shard_bytes > 0 && layout.total_data_bytes > max_shard_bytes;

  std::vector<std::vector<std::size_t>> groups;
  if (!layout.sharded) {
    groups.emplace_back();
    for (std::size_t i = 0; i < tensors.size(); ++i) groups.back().push_back(i);
  } else {
    std::uint64_t filled = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const std::uint64_t size = tensors[i].bytes();
      if (groups.empty() || (!groups.back().empty() && filled + size > max_shard_bytes)) {
        groups.emplace_back();
        filled = 0;
      }
      groups.back().push_back(i);
      filled += size;
    }
  }
  layout.file_of.resize(tensors.size());
  layout.offset_of.resize(tensors.size());
  for (std::size_t f = 0; f < groups.size(); ++f) {
    std::string name = !layout.folder ? target.filename().string()
                       : layout.sharded ? fmt::format("model-{:05d}-of-{:05d}.safetensors", f + 1, groups.size())
                                        : std::string(kSingleName);
    std::vector<const OutputTensor*> members;
    for (std::size_t i : groups[f]) members.push_back(&tensors[i]);
    std::string header = header_bytes(members, metadata, (layout.folder ? target / name : target).string());
    std::uint64_t offset = header.size();
    for (std::size_t i : groups[f]) {
      layout.file_of[i] = f;
      layout.offset_of[i] = offset;
      offset += tensors[i].bytes();
    }
    layout.files.push_back(std::move(name));
    layout.headers.push_back(std::move(header));
    layout.file_sizes.push_back(offset);
  }
  return layout;
}

void check_output_target(const fs::path& target, bool overwrite) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(target, ec)) && !overwrite)
    throw Error(fmt::format("the output {} already exists; set overwrite = true to replace it (it was left untouched)", target.string()));
}

MergeOutput::MergeOutput(fs::path target, const std::vector<OutputTensor>& tensors, const std::map<std::string, std::string>& metadata,
                         std::uint64_t max_shard_bytes, bool overwrite)
    : target_(std::move(target)), overwrite_(overwrite) {
  check_output_target(target_, overwrite_);
  layout_ = plan_output(target_, tensors, metadata, max_shard_bytes);
  for (const auto& t : tensors) {
    tensor_bytes_.push_back(t.bytes());
    tensor_names_.push_back(t.name);
  }

  std::vector<fs::path> paths;
  if (!layout_.folder) {
    single_ = std::make_unique<io::AtomicFile>(target_);
    paths.push_back(single_->temporary());
  } else {
    std::error_code ec;
    if (!target_.parent_path().empty()) fs::create_directories(target_.parent_path(), ec);
    for (int attempt = 0; attempt < 100 && temp_folder_.empty(); ++attempt) {
      const fs::path candidate = sibling_name(target_, "tmp");
      if (fs::create_directory(candidate, ec)) temp_folder_ = candidate;  // mode 0777 & ~umask
    }
    if (temp_folder_.empty())
      throw DataError(target_.string(), "cannot create a temporary folder beside the output" + (ec ? ": " + ec.message() : std::string()));
    for (const auto& name : layout_.files) paths.push_back(temp_folder_ / name);
  }
  temporaries_ = paths;
  for (std::size_t f = 0; f < paths.size(); ++f) {
    // The single file's descriptor is a second one on AtomicFile's temporary: positioned writes go
    // through it, while AtomicFile keeps the lifecycle (cleanup, fsync, rename).
    const int flags = layout_.folder ? (O_WRONLY | O_CREAT | O_EXCL) : O_WRONLY;
    const int fd = ::open(paths[f].c_str(), flags | O_CLOEXEC, 0666);
    if (fd < 0) throw DataError(target_.string(), fmt::format("cannot create {}: {}", paths[f].string(), std::strerror(errno)));
    fds_.push_back(fd);
    if (::ftruncate(fd, static_cast<off_t>(layout_.file_sizes[f])) != 0)
      throw DataError(target_.string(), fmt::format("cannot size {} to {} bytes: {}", paths[f].string(), layout_.file_sizes[f], std::strerror(errno)));
    write_all(fd, 0, layout_.headers[f].data(), layout_.headers[f].size(), target_.string());
  }
}

MergeOutput::~MergeOutput() {
  for (int fd : fds_) ::close(fd);
  if (!committed_ && !temp_folder_.empty()) {
    std::error_code ec;
    fs::remove_all(temp_folder_, ec);
  }
  // single_ removes its own temporary unless committed.
}

void MergeOutput::write(std::size_t tensor, std::size_t offset, const void* data, std::size_t size) {
  if (offset + size > tensor_bytes_.at(tensor))
    throw Error(fmt::format("internal: write past the end of output tensor {} ({} + {} > {})", tensor, offset, size, tensor_bytes_[tensor]));
  write_all(fds_[layout_.file_of[tensor]], layout_.offset_of[tensor] + offset, data, size, target_.string());
}

void MergeOutput::commit() {
  if (committed_) throw Error("internal: merge output committed twice");
  const std::string name = target_.string();
  for (int& fd : fds_) {
    const bool ok = !layout_.folder || ::fsync(fd) == 0;  // AtomicFile fsyncs the single file itself
    const int error = errno;
    ::close(fd);
    fd = -1;
    if (!ok) throw DataError(name, std::string("cannot flush to disk: ") + std::strerror(error));
  }
  fds_.clear();
  check_output_target(target_, overwrite_);  // appeared while merging?
  if (!layout_.folder) {
    const fs::path old = move_aside(target_);
    std::error_code ec;
    try {
      single_->commit();
    } catch (...) {
      if (!old.empty()) fs::rename(old, target_, ec);  // put the previous output back
      throw;
    }
    if (!old.empty()) fs::remove_all(old, ec);
    committed_ = true;
    return;
  }
  if (layout_.sharded) {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", layout_.total_data_bytes}};
    nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < tensor_names_.size(); ++i) weight_map[tensor_names_[i]] = layout_.files[layout_.file_of[i]];
    index["weight_map"] = std::move(weight_map);
    io::write_file_atomic(temp_folder_ / kIndexName, index.dump(2) + "\n");
  }
  sync_path(temp_folder_, O_RDONLY | O_DIRECTORY);
  const fs::path old = move_aside(target_);
  std::error_code ec;
  fs::rename(temp_folder_, target_, ec);
  if (ec) {
    const std::string problem = ec.message();
    if (!old.empty()) fs::rename(old, target_, ec);  // put the previous output back
    throw DataError(name, "cannot rename the finished temporary folder onto the output: " + problem);
  }
  sync_path(target_.parent_path().empty() ? fs::path(".") : target_.parent_path(), O_RDONLY | O_DIRECTORY);
  if (!old.empty()) fs::remove_all(old, ec);
  committed_ = true;
}

OutputFileWriter::OutputFileWriter(fs::path path) : path_(std::move(path)) {
  // No O_CREAT: the file must be the staged temporary (sized, header written); a missing file
  // means the file system is not shared with the process that staged it.
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd_ < 0)
    throw DataError(path_.string(), fmt::format("cannot open the staged output file for writing: {} (do all ranks share this file system?)",
                                                std::strerror(errno)));
}

OutputFileWriter::~OutputFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void OutputFileWriter::write(std::uint64_t offset, const void* data, std::size_t size) { write_all(fd_, offset, data, size, path_.string()); }

void OutputFileWriter::flush() {
  if (::fsync(fd_) != 0) throw DataError(path_.string(), std::string("cannot flush to disk: ") + std::strerror(errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw DataError(path_.string(), std::string("cannot close: ") + std::strerror(errno));
}

}  // namespace caulk::merge
