// Reading and writing the .npy header: magic, version, length, and the Python dict literal.
#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "caulk/error.hpp"
#include "caulk/io/npy.hpp"
#include "npy_format.hpp"
#include "messages.hpp"
#include "py_literal.hpp"
#include "sizes.hpp"

namespace caulk::io {

namespace {

using detail::python_shape;
using detail::PyValue;
using detail::quote_bytes;

constexpr unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kAlignment = 64;
static_assert(sizeof(std::size_t) >= sizeof(std::uint64_t), "shapes are parsed as 64-bit integers");

struct NpyType {
  const char* code;
  DType dtype;
};
constexpr NpyType kNpyTypes[] = {
    {"b1", DType::BOOL}, {"?", DType::BOOL}, {"u1", DType::U8},  {"i1", DType::I8},  {"u2", DType::U16},
    {"i2", DType::I16},  {"u4", DType::U32}, {"i4", DType::I32}, {"u8", DType::U64}, {"i8", DType::I64},
    {"f2", DType::F16},  {"f4", DType::F32}, {"f8", DType::F64},
};

DType dtype_from_descr(const std::string& descr_text, const std::string& file) {
  const std::string descr = detail::excerpt(descr_text);  // for messages
  std::string_view code = descr_text;
  char order = '=';
  if (!code.empty() && std::strchr("<>|=", code.front())) {
    order = code.front();
    code.remove_prefix(1);
  }
  if (!code.empty() && code.front() == 'O')
    throw DataError(file, "object arrays (descr '" + descr + "') are not supported: they hold pickled Python objects, not numbers");
  for (const auto& t : kNpyTypes) {
    if (code != t.code) continue;
    if (order == '>' && dtype_size(t.dtype) > 1)
      throw DataError(file, "big-endian arrays (descr '" + descr +
                                "') are not supported; save it little-endian, e.g. "
                                "np.save(path, a.astype('<" +
                                std::string(code) + "'))");
    return t.dtype;  // '<', '|' and '=' (native, and every platform caulk runs on is little-endian)
  }
  if (order == '>') throw DataError(file, "big-endian arrays (descr '" + descr + "') are not supported");
  throw DataError(file, "unsupported dtype '" + descr +
                            "' (caulk reads float16/32/64, signed and unsigned integers "
                            "of 1 to 8 bytes, and bool)");
}

std::size_t read_le(const std::byte* p, int bytes) {
  std::size_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<std::size_t>(p[i]);
  return v;
}

}  // namespace

std::size_t NpyHeader::element_count() const {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;  // validated by the parser: cannot overflow
  return n;
}

namespace {

NpyHeader parse_header(const std::byte* bytes, std::size_t size, const std::string& file) {
  if (size == 0 || bytes == nullptr) throw DataError(file, "empty file");
  // Nothing of the file is quoted before the magic says it is a .npy file: a mistyped path may
  // name any file, and the message reaches run.json and the report (framework/src/io/messages.hpp).
  if (std::memcmp(bytes, kMagic, std::min<std::size_t>(size, sizeof kMagic)) != 0)
    throw DataError(file, std::string("not a .npy file: it does not start with the .npy magic (\\x93NUMPY)") +
                              (size >= 4 && std::memcmp(bytes, "PK\x03\x04", 4) == 0
                                   ? "; it is a ZIP archive, such as an .npz of several arrays (save each with np.save)"
                                   : ""));
  if (size < 8)
    throw DataError(file, "truncated header: the file ends after " + std::to_string(size) + " bytes, before the format version");
  const auto major = static_cast<unsigned>(bytes[6]), minor = static_cast<unsigned>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0)
    throw DataError(
        file, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) + " (caulk reads 1.0, 2.0 and 3.0)");
  const int length_bytes = major == 1 ? 2 : 4;
  const std::size_t prefix = 8 + static_cast<std::size_t>(length_bytes);
  if (size < prefix)
    throw DataError(file, "truncated header: the file ends after " + std::to_string(size) + " bytes, inside the header length");
  const std::size_t header_length = read_le(bytes + 8, length_bytes);
  if (header_length > size - prefix)
    throw DataError(file, "header length " + std::to_string(header_length) + " runs past the end of the file (" +
                              std::to_string(size - prefix) + " bytes follow the length field)");
  if (header_length > kMaxNpyHeader)
    throw DataError(file,
                    "header length " + std::to_string(header_length) + " exceeds the limit of " + std::to_string(kMaxNpyHeader) + " bytes");

  std::string_view text(reinterpret_cast<const char*>(bytes + prefix), header_length);
  if (major < 3) {  // 3.0 exists only to allow UTF-8
    auto bad = std::find_if(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    if (bad != text.end())
      throw DataError(file, "header is not ASCII (byte " + quote_bytes(&*bad, 1) + " at column " + std::to_string(bad - text.begin() + 1) +
                                "); non-ASCII headers need format 3.0");
  }
  const PyValue dict = detail::parse_py_literal(text, file);
  auto source = [&](const PyValue& v) { return detail::excerpt(text.substr(v.begin, v.end - v.begin)); };
  if (dict.kind != PyValue::Kind::Dict) throw DataError(file, "header is not a dict: '" + source(dict) + "'");

  const PyValue *descr = nullptr, *fortran = nullptr, *shape = nullptr;
  for (std::size_t i = 0; i < dict.keys.size(); ++i) {
    const std::string& key = dict.keys[i];
    const PyValue** slot = key == "descr" ? &descr : key == "fortran_order" ? &fortran : key == "shape" ? &shape : nullptr;
    if (!slot)
      throw DataError(file, "header has an unexpected key '" + detail::excerpt(key) + "' (expected 'descr', 'fortran_order', 'shape')");
    if (*slot) throw DataError(file, "header has the key '" + detail::excerpt(key) + "' twice");
    *slot = &dict.items[i];
  }
  for (auto [value, key] : {std::pair{descr, "descr"}, {fortran, "fortran_order"}, {shape, "shape"}})
    if (!value) throw DataError(file, std::string("header has no '") + key + "' key");

  NpyHeader header;
  if (descr->kind == PyValue::Kind::List) throw DataError(file, "structured arrays (descr " + source(*descr) + ") are not supported");
  if (descr->kind != PyValue::Kind::Str) throw DataError(file, "'descr' is not a string: " + source(*descr));
  header.dtype = dtype_from_descr(descr->text, file);
  if (fortran->kind != PyValue::Kind::Bool) throw DataError(file, "'fortran_order' is not True or False: " + source(*fortran));
  header.fortran_order = fortran->boolean;
  if (shape->kind != PyValue::Kind::Tuple) throw DataError(file, "'shape' is not a tuple of non-negative integers: " + source(*shape));
  for (const PyValue& dim : shape->items) {
    if (dim.kind != PyValue::Kind::Int || (dim.negative && dim.magnitude != 0))
      throw DataError(file, "'shape' is not a tuple of non-negative integers: " + source(*shape));
    header.shape.push_back(static_cast<std::size_t>(dim.magnitude));
  }

  header.data_offset = prefix + header_length;
  const std::string described = "shape " + python_shape(header.shape) + " of '" + detail::excerpt(descr->text) + "'";
  auto count = detail::checked_product(header.shape);
  auto needed = count ? detail::checked_mul(*count, dtype_size(header.dtype)) : std::nullopt;
  if (!needed) throw DataError(file, described + " has too many elements to address");
  const std::size_t available = size - header.data_offset;
  if (available < *needed)
    throw DataError(file, "data is truncated: " + described + " needs " + std::to_string(*needed) + " bytes, the file has " +
                              std::to_string(available) + " after the header");
  if (available > *needed)
    throw DataError(file, "data is longer than the shape says: " + described + " needs " + std::to_string(*needed) +
                              " bytes, the file has " + std::to_string(available) + " after the header");
  return header;
}

}  // namespace

NpyHeader parse_npy_header(const std::byte* bytes, std::size_t size, const std::filesystem::path& path) {
  try {
    return parse_header(bytes, size, path.string());
  } catch (const std::bad_alloc&) {
    throw DataError(path.string(), "not enough memory to read the header");
  }
}

namespace detail {

std::optional<std::string> npy_descr(DType t) {
  switch (t) {
    case DType::BOOL:
      return "|b1";
    case DType::U8:
      return "|u1";
    case DType::I8:
      return "|i1";
    case DType::U16:
      return "<u2";
    case DType::I16:
      return "<i2";
    case DType::U32:
      return "<u4";
    case DType::I32:
      return "<i4";
    case DType::U64:
      return "<u8";
    case DType::I64:
      return "<i8";
    case DType::F16:
      return "<f2";
    case DType::F32:
      return "<f4";
    case DType::F64:
      return "<f8";
    case DType::BF16:
      return std::nullopt;
  }
  return std::nullopt;
}

std::string npy_header_image(const std::string& descr, const std::vector<std::size_t>& shape, bool fortran_order) {
  // The dict as NumPy writes it: keys sorted, a trailing ", ".
  const std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': " + (fortran_order ? "True" : "False") + ", 'shape': " + python_shape(shape) + ", }";
  for (unsigned major : {1u, 2u}) {
    const std::size_t prefix = major == 1 ? 10 : 12;
    const std::size_t unpadded = prefix + dict.size() + 1;  // + the closing newline
    const std::size_t total = (unpadded + kAlignment - 1) / kAlignment * kAlignment;
    const std::size_t header_length = total - prefix;
    if (major == 1 && header_length > 0xFFFF) continue;
    if (header_length > kMaxNpyHeader) break;
    std::string image(reinterpret_cast<const char*>(kMagic), sizeof kMagic);
    image.push_back(static_cast<char>(major));
    image.push_back('\0');
    for (std::size_t i = 0; i < prefix - 8; ++i) image.push_back(static_cast<char>((header_length >> (8 * i)) & 0xFF));
    image += dict;
    image.append(total - unpadded, ' ');
    image.push_back('\n');
    return image;
  }
  throw std::length_error("the .npy header would exceed " + std::to_string(kMaxNpyHeader) + " bytes");
}

}  // namespace detail

}  // namespace caulk::io
