// Reading .safetensors: the whole header is validated when the file is opened, so that a tensor
// read later can trust its offsets.
#include "caulk/io/safetensors.hpp"

#include <algorithm>
#include <cstdint>
#include <new>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>

#include "caulk/error.hpp"
#include "caulk/json_text.hpp"
#include "messages.hpp"
#include "sizes.hpp"

namespace caulk::io {

namespace {

using nlohmann::json;

// A valid header nests three levels (header, tensor entry, shape list); anything much deeper is
// hostile, and refusing it early bounds the parser's memory.
constexpr int kMaxJsonDepth = 8;

std::string offsets_text(std::uint64_t begin, std::uint64_t end) { return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]"; }

// A non-negative JSON integer, or a DataError saying what `what` holds instead.
std::uint64_t unsigned_field(const json& value, const std::string& file, const std::string& what) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer()) throw DataError(file, what + " is negative: " + detail::json_excerpt(value));
  throw DataError(file, what + " is not a non-negative integer: " + detail::json_excerpt(value));
}

TensorInfo parse_tensor(const std::string& name, const json& entry, const std::string& file, std::size_t data_size) {
  const std::string tensor = "tensor '" + name + "'";
  if (!entry.is_object()) throw DataError(file, tensor + ": entry is not an object: " + detail::json_excerpt(entry));
  auto field = [&](const char* key) -> const json& {
    auto it = entry.find(key);
    if (it == entry.end()) throw DataError(file, tensor + " has no '" + key + "' field");
    return *it;
  };

  TensorInfo t;
  t.name = name;
  const json& dtype = field("dtype");
  if (!dtype.is_string()) throw DataError(file, tensor + ": 'dtype' is not a string: " + detail::json_excerpt(dtype));
  auto parsed_dtype = dtype_from_safetensors_name(dtype.get_ref<const std::string&>());
  if (!parsed_dtype)
    throw DataError(file, tensor + " has unsupported dtype " + detail::json_excerpt(dtype) +
                              " (caulk reads F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL)");
  t.dtype = *parsed_dtype;

  const json& shape = field("shape");
  if (!shape.is_array()) throw DataError(file, tensor + ": 'shape' is not a list: " + detail::json_excerpt(shape));
  for (const json& dim : shape) t.shape.push_back(unsigned_field(dim, file, tensor + ": a 'shape' dimension"));

  const json& offsets = field("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2)
    throw DataError(file, tensor + ": 'data_offsets' is not a list of two offsets: " + detail::json_excerpt(offsets));
  const std::uint64_t begin = unsigned_field(offsets[0], file, tensor + ": 'data_offsets' begin");
  const std::uint64_t end = unsigned_field(offsets[1], file, tensor + ": 'data_offsets' end");
  if (begin > end) throw DataError(file, tensor + ": data_offsets " + offsets_text(begin, end) + " end before they begin");
  if (end > data_size)
    throw DataError(file, tensor + ": data_offsets " + offsets_text(begin, end) + " run past the end of the data (" +
                              std::to_string(data_size) + " bytes)");
  t.begin = static_cast<std::size_t>(begin);
  t.end = static_cast<std::size_t>(end);

  const std::string described = "shape " + detail::json_shape(t.shape) + " of " + std::string(dtype_name(t.dtype));
  auto count = detail::checked_product(t.shape);
  auto bytes = count ? detail::checked_mul(*count, dtype_size(t.dtype)) : std::nullopt;
  if (!bytes) throw DataError(file, tensor + ": " + described + " has too many elements to address");
  if (*bytes != t.byte_size())
    throw DataError(file, tensor + ": " + described + " needs " + std::to_string(*bytes) + " bytes, but data_offsets " +
                              offsets_text(begin, end) + " hold " + std::to_string(t.byte_size()));
  return t;
}

std::map<std::string, std::string> parse_metadata(const json& value, const std::string& file) {
  if (!value.is_object()) throw DataError(file, "'__metadata__' is not an object of strings: " + detail::json_excerpt(value));
  std::map<std::string, std::string> metadata;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string()) throw DataError(file, "'__metadata__' entry '" + key + "' is not a string: " + detail::json_excerpt(v));
    metadata[key] = v.get<std::string>();
  }
  return metadata;
}

// Parses the header JSON, refusing deep nesting and a tensor named twice (which a plain parse would
// silently collapse to the last entry).
json parse_header_json(const char* text, std::size_t size, const std::string& file) {
  std::set<std::string> names;
  auto guard = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth) throw DataError(file, "header JSON nests more than " + std::to_string(kMaxJsonDepth) + " levels deep");
    if (event == json::parse_event_t::key && depth == 1 && !names.insert(parsed.get<std::string>()).second)
      throw DataError(file, "the header names '" + parsed.get<std::string>() + "' twice");
    return true;
  };
  try {
    return json::parse(text, text + size, guard);
  } catch (const json::exception& e) {
    throw DataError(file, "header is not valid JSON: " + detail::json_error_text(e));
  }
}

// Sorts the tensors by offset, checks that they tile the data exactly (each begins where the last
// ended, the last ends at the end of the data) and indexes them by name.
void sort_and_check_tiling(std::vector<TensorInfo>& tensors, std::map<std::string, std::size_t>& index, const std::string& file,
                           std::size_t data_size) {
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name); });
  std::size_t covered = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = tensors[i];
    if (t.begin < covered) {
      const TensorInfo& previous = tensors[i - 1];
      throw DataError(file, "tensors '" + previous.name + "' " + offsets_text(previous.begin, previous.end) + " and '" + t.name + "' " +
                                offsets_text(t.begin, t.end) + " overlap");
    }
    if (t.begin > covered)
      throw DataError(file,
                      "a hole in the data: bytes " + offsets_text(covered, t.begin) + " belong to no tensor (before '" + t.name + "')");
    covered = t.end;
    index[t.name] = i;
  }
  if (covered != data_size)
    throw DataError(file, "the data section has " + std::to_string(data_size) + " bytes but the tensors cover only " +
                              std::to_string(covered) + " (trailing bytes)");
}

}  // namespace

std::size_t TensorInfo::element_count() const {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;  // validated when read: cannot overflow
  return n;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile file;
  file.path_ = path;
  auto map = MappedFile::open(path);
  file.owner_ = map;
  file.mapping_ = map.get();
  try {
    file.parse(map->data(), map->size());
  } catch (const DataError&) {
    map->check_intact();  // a header that shrank away reads as zeros: say so, not "bad header"
    throw;
  }
  map->check_intact();
  return file;
}

void SafetensorsFile::check_intact() const {
  if (mapping_) mapping_->check_intact();
}

SafetensorsFile SafetensorsFile::from_bytes(std::shared_ptr<const std::vector<std::byte>> bytes, const std::filesystem::path& name) {
  SafetensorsFile file;
  file.path_ = name;
  file.owner_ = bytes;
  file.parse(bytes ? bytes->data() : nullptr, bytes ? bytes->size() : 0);
  return file;
}

void SafetensorsFile::parse(const std::byte* data, std::size_t size) {
  const std::string file = path_.string();
  if (size == 0 || data == nullptr) throw DataError(file, "empty file");
  if (size < 8) throw DataError(file, "truncated: " + std::to_string(size) + " bytes is too short for the 8-byte header size");
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<std::uint64_t>(data[i]);
  if (header_size > kMaxSafetensorsHeader)
    throw DataError(
        file, "header size " + std::to_string(header_size) + " exceeds the limit of " + std::to_string(kMaxSafetensorsHeader) + " bytes");
  if (header_size > size - 8)
    throw DataError(file, "header size " + std::to_string(header_size) + " is larger than the rest of the file (" +
                              std::to_string(size - 8) + " bytes)");
  const auto header_bytes = static_cast<std::size_t>(header_size);
  const std::size_t data_size = size - 8 - header_bytes;
  data_start_ = data + 8 + header_bytes;
  data_offset_ = 8 + header_size;
  // As the safetensors library does: a header is a JSON object, so its first byte is '{'. Checked
  // before parsing, so that a file of another kind is not quoted by the JSON parser's messages.
  if (header_bytes > 0 && static_cast<char>(data[8]) != '{')
    throw DataError(file, "header is not a JSON object (it does not start with '{'): not a .safetensors file?");

  try {
    json header = parse_header_json(reinterpret_cast<const char*>(data + 8), header_bytes, file);
    if (!header.is_object()) throw DataError(file, "header is not a JSON object");
    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__")
        metadata_ = parse_metadata(value, file);
      else
        tensors_.push_back(parse_tensor(key, value, file, data_size));
    }
    sort_and_check_tiling(tensors_, index_, file, data_size);
  } catch (const std::bad_alloc&) {
    throw DataError(file, "not enough memory to read the header");
  }
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) throw DataError(path_.string(), "no tensor named '" + name + "'");
  return *t;
}

std::span<const std::byte> SafetensorsFile::bytes(const TensorInfo& t) const { return {data_start_ + t.begin, t.byte_size()}; }

namespace {
template <class T, class Convert>
std::vector<T> converted(const SafetensorsFile& file, const std::string& name, Convert convert) {
  const TensorInfo& t = file.at(name);
  std::vector<T> out;
  try {
    out.resize(t.element_count());
  } catch (const std::exception&) {  // bad_alloc or length_error: a tensor larger than memory
    throw DataError(file.path().string(),
                    "tensor '" + name + "': not enough memory to convert " + std::to_string(t.element_count()) + " elements");
  }
  convert(file.bytes(t).data(), t.dtype, out.size(), out.data());
  file.check_intact();
  return out;
}
}  // namespace

std::vector<float> SafetensorsFile::to_float(const std::string& name) const { return converted<float>(*this, name, convert_to_float); }

std::vector<double> SafetensorsFile::to_double(const std::string& name) const { return converted<double>(*this, name, convert_to_double); }

}  // namespace caulk::io
