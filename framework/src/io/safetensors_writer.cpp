// Writing .safetensors one tensor at a time: the header (every offset computed from the declared
// entries) goes first, then each tensor's bytes in declared order, into an atomic file.
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "caulk/error.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/json_text.hpp"
#include "caulk/io/safetensors.hpp"
#include "sizes.hpp"

namespace caulk::io {

namespace {

// The header as the reference implementation writes it: compact JSON, "__metadata__" first when
// there is any, then the tensors in data order with keys "dtype", "shape", "data_offsets"; padded
// with spaces to a multiple of 8 bytes so the data that follows is 8-aligned.
std::string header_bytes(const std::vector<SafetensorsWriter::Entry>& entries, const std::vector<std::size_t>& sizes,
                         const std::map<std::string, std::string>& metadata, const std::string& file) {
  using ordered = nlohmann::ordered_json;
  ordered header = ordered::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::size_t offset = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    header[entries[i].name] = ordered{{"dtype", dtype_name(entries[i].dtype)},
                                      {"shape", entries[i].shape},
                                      {"data_offsets", ordered::array({offset, offset + sizes[i]})}};
    offset += sizes[i];  // the sum was checked by the caller
  }
  std::optional<std::string> valid = json_text_if_valid(header);
  if (!valid) throw DataError(file, "a tensor name or metadata string is not valid UTF-8");
  std::string text = std::move(*valid);
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxSafetensorsHeader)
    throw DataError(
        file, "the header would be " + std::to_string(text.size()) + " bytes, over the limit of " + std::to_string(kMaxSafetensorsHeader));
  return text;
}

}  // namespace

struct SafetensorsWriter::Impl {
  std::string file;
  std::vector<Entry> entries;
  std::vector<std::size_t> sizes;  // bytes of each entry
  std::size_t next = 0;            // the entry to be written next
  bool failed = false;             // a write broke off part way: the file cannot be committed
  std::unique_ptr<AtomicFile> out;
};

SafetensorsWriter::SafetensorsWriter(const std::filesystem::path& path, std::vector<Entry> entries,
                                     std::map<std::string, std::string> metadata)
    : impl_(std::make_unique<Impl>()) {
  Impl& w = *impl_;
  w.file = path.string();
  std::set<std::string> names;
  std::size_t total = 0;
  for (const Entry& e : entries) {
    if (e.name == "__metadata__") throw DataError(w.file, "a tensor cannot be named '__metadata__'");
    if (!names.insert(e.name).second) throw DataError(w.file, "tensor '" + e.name + "' is declared twice");
    auto count = detail::checked_product(e.shape);
    auto bytes = count ? detail::checked_mul(*count, dtype_size(e.dtype)) : std::nullopt;
    auto sum = bytes ? detail::checked_add(total, *bytes) : std::nullopt;
    if (!sum) throw DataError(w.file, "tensor '" + e.name + "': shape " + detail::json_shape(e.shape) + " is too large");
    total = *sum;
    w.sizes.push_back(*bytes);
  }
  w.entries = std::move(entries);
  const std::string header = header_bytes(w.entries, w.sizes, metadata, w.file);
  w.out = std::make_unique<AtomicFile>(path);
  std::string size_field;
  for (int i = 0; i < 8; ++i) size_field.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  w.out->write(size_field);
  w.out->write(header);
}

SafetensorsWriter::~SafetensorsWriter() = default;  // an uncommitted AtomicFile removes itself

void SafetensorsWriter::write(const std::string& name, const void* data, std::size_t bytes) {
  Impl& w = *impl_;
  if (w.next >= w.entries.size())
    throw DataError(w.file, "tensor '" + name + "' written, but every declared tensor has been written already");
  const Entry& expected = w.entries[w.next];
  if (name != expected.name) throw DataError(w.file, "tensor '" + name + "' written out of order: '" + expected.name + "' is next");
  if (bytes != w.sizes[w.next])
    throw DataError(w.file, "tensor '" + name + "': " + std::to_string(bytes) + " bytes given, but shape " +
                                detail::json_shape(expected.shape) + " of " + std::string(dtype_name(expected.dtype)) + " needs " +
                                std::to_string(w.sizes[w.next]));
  try {
    w.out->write(data, bytes);
  } catch (...) {
    w.failed = true;
    throw;
  }
  ++w.next;
}

void SafetensorsWriter::commit(OnExisting existing) {
  Impl& w = *impl_;
  if (w.failed) throw DataError(w.file, "cannot commit after a failed write");
  if (w.next != w.entries.size())
    throw DataError(w.file, "only " + std::to_string(w.next) + " of the " + std::to_string(w.entries.size()) +
                                " declared tensors were written ('" + w.entries[w.next].name + "' is next)");
  w.out->commit(existing);
}

void write_safetensors(const std::filesystem::path& path, const std::vector<Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata, OnExisting existing) {
  std::vector<SafetensorsWriter::Entry> entries;
  entries.reserve(tensors.size());
  for (const Tensor& t : tensors) entries.push_back({t.name, t.dtype, t.shape});
  SafetensorsWriter writer(path, std::move(entries), metadata);
  for (const Tensor& t : tensors) writer.write(t.name, t.data.data(), t.data.size());
  writer.commit(existing);
}

}  // namespace caulk::io
