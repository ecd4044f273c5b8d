#include "mergers/algorithms/merge_output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <system_error>

#include "caulk/error.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/io/safetensors.hpp"
#include "caulk/json_text.hpp"

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
    header[t->name] =
        ordered{{"dtype", io::dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", ordered::array({offset, offset + size})}};
    offset += size;
  }
  std::optional<std::string> valid = json_text_if_valid(header);
  if (!valid) throw DataError(file, "a tensor name or metadata string is not valid UTF-8");
  std::string text = std::move(*valid);
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > io::kMaxSafetensorsHeader)
    throw DataError(file,
                    fmt::format("the header would be {} bytes, over the format's limit of {}", text.size(), io::kMaxSafetensorsHeader));
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
    std::string name = !layout.folder   ? target.filename().string()
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
  // Temporaries of merges into this folder that were killed (their processes are gone) go first;
  // an old output a replacement cut short had moved aside is put back, so the check sees it.
  io::recover_stale_temporaries(target.parent_path().empty() ? fs::path(".") : target.parent_path());
  io::check_replaceable(target, overwrite ? io::OnExisting::ReplaceOwn : io::OnExisting::Refuse);
}

MergeOutput::MergeOutput(fs::path target, const std::vector<OutputTensor>& tensors, const std::map<std::string, std::string>& metadata,
                         std::uint64_t max_shard_bytes, bool overwrite)
    : target_(std::move(target)), overwrite_(overwrite) {
  check_output_target(target_, overwrite_);
  std::map<std::string, std::string> marked = metadata;
  marked[io::kWrittenByKey] = io::kWrittenByValue;  // what overwrite = true may replace later
  layout_ = plan_output(target_, tensors, marked, max_shard_bytes);
  for (const auto& t : tensors) {
    tensor_bytes_.push_back(t.bytes());
    tensor_names_.push_back(t.name);
  }

  staged_ = std::make_unique<io::StagedOutput>(target_, layout_.folder ? io::StagedOutput::Kind::Folder : io::StagedOutput::Kind::File);
  if (!layout_.folder) {
    temporaries_.push_back(staged_->path());
    fds_.push_back(staged_->fd());
  } else {
    for (const auto& name : layout_.files) {
      const fs::path path = staged_->path() / name;
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd < 0) throw DataError(target_.string(), fmt::format("cannot create {}: {}", path.string(), std::strerror(errno)));
      temporaries_.push_back(path);
      fds_.push_back(fd);
    }
  }
  for (std::size_t f = 0; f < fds_.size(); ++f) {
    if (::ftruncate(fds_[f], static_cast<off_t>(layout_.file_sizes[f])) != 0)
      throw DataError(target_.string(),
                      fmt::format("cannot size {} to {} bytes: {}", temporaries_[f].string(), layout_.file_sizes[f], std::strerror(errno)));
    write_all(fds_[f], 0, layout_.headers[f].data(), layout_.headers[f].size(), target_.string());
  }
}

MergeOutput::~MergeOutput() {
  if (layout_.folder)
    for (int fd : fds_) ::close(fd);
  // staged_ removes the temporary unless committed.
}

void MergeOutput::write(std::size_t tensor, std::size_t offset, const void* data, std::size_t size) {
  if (offset + size > tensor_bytes_.at(tensor))
    throw Error(
        fmt::format("internal: write past the end of output tensor {} ({} + {} > {})", tensor, offset, size, tensor_bytes_[tensor]));
  write_all(fds_[layout_.file_of[tensor]], layout_.offset_of[tensor] + offset, data, size, target_.string());
}

void MergeOutput::commit() {
  if (committed_) throw Error("internal: merge output committed twice");
  const std::string name = target_.string();
  if (layout_.folder) {
    for (int& fd : fds_) {
      const bool ok = ::fsync(fd) == 0;
      const int error = errno;
      ::close(fd);
      fd = -1;
      if (!ok) throw DataError(name, std::string("cannot flush to disk: ") + std::strerror(error));
    }
    fds_.clear();
    if (layout_.sharded) {
      nlohmann::ordered_json index;
      index["metadata"] = {{"total_size", layout_.total_data_bytes}};
      nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
      for (std::size_t i = 0; i < tensor_names_.size(); ++i) weight_map[tensor_names_[i]] = layout_.files[layout_.file_of[i]];
      index["weight_map"] = std::move(weight_map);
      io::write_file_atomic(staged_->path() / kIndexName, json_text(index, 2) + "\n");
    }
  }
  // The single file is fsynced by the commit; a target that appeared meanwhile is refused by the
  // rename itself when it may not be replaced.
  staged_->commit(overwrite_ ? io::OnExisting::ReplaceOwn : io::OnExisting::Refuse);
  fds_.clear();
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

void OutputFileWriter::write(std::uint64_t offset, const void* data, std::size_t size) {
  write_all(fd_, offset, data, size, path_.string());
}

void OutputFileWriter::flush() {
  if (::fsync(fd_) != 0) throw DataError(path_.string(), std::string("cannot flush to disk: ") + std::strerror(errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw DataError(path_.string(), std::string("cannot close: ") + std::strerror(errno));
}

}  // namespace caulk::merge
