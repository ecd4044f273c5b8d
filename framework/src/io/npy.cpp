// NpyArray (mapped, validated reading) and write_npy (atomic writing).
#include "caulk/io/npy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "caulk/error.hpp"
#include "caulk/io/atomic_file.hpp"
#include "npy_format.hpp"
#include "sizes.hpp"

namespace caulk::io {

namespace {

std::string shape_of(const NpyHeader& h) { return detail::python_shape(h.shape); }

// A buffer of `count` elements owned by a shared_ptr, or a DataError when memory runs out
// (a converted copy of a large file is the one place a reader allocates in proportion to it).
template <class T>
std::shared_ptr<std::vector<T>> allocate(std::size_t count, const std::filesystem::path& path) {
  try {
    return std::make_shared<std::vector<T>>(count);
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
  throw DataError(path.string(), "not enough memory to convert " + std::to_string(count) + " elements");
}

// A header read from a file that shrank meanwhile reads as zeros: say that, not "bad magic".
NpyHeader parse_header_of(const MappedFile& map) {
  try {
    NpyHeader header = parse_npy_header(map.data(), map.size(), map.path());
    map.check_intact();
    return header;
  } catch (const DataError&) {
    map.check_intact();
    throw;
  }
}

bool aligned(const void* p, std::size_t alignment) { return reinterpret_cast<std::uintptr_t>(p) % alignment == 0; }

}  // namespace

NpyArray NpyArray::open(const std::filesystem::path& path) {
  NpyArray array;
  array.path_ = path;
  array.map_ = MappedFile::open(path);
  array.header_ = parse_header_of(*array.map_);
  return array;
}

NpyHeader NpyArray::read_header(const std::filesystem::path& path) {
  return parse_header_of(*MappedFile::open(path));  // only the header's pages are read
}

const void* NpyArray::data() const {
  if (!map_ || !map_->data()) return nullptr;
  return map_->data() + header_.data_offset;
}

MatrixView NpyArray::matrix() const {
  const std::string file = path_.string();
  if (ndim() == 0) throw DataError(file, "a 0-d array (a single number) cannot be used as a matrix");
  if (ndim() > 2)
    throw DataError(file, "a " + std::to_string(ndim()) + "-d array of shape " + shape_of(header_) +
                              " cannot be used as a matrix (expected 1 or 2 dimensions)");
  const std::size_t rows = shape()[0], cols = ndim() == 2 ? shape()[1] : 1;
  const bool row_major = !fortran_order();
  const void* p = data();

  if (dtype() == DType::F32 || dtype() == DType::F64) {
    const ScalarType type = dtype() == DType::F32 ? ScalarType::F32 : ScalarType::F64;
    const std::size_t width = dtype_size(dtype());
    if (aligned(p, width)) return MatrixView(p, rows, cols, type, row_major, map_, map_.get());
    // NumPy pads headers to 64 bytes; a hand-made header may not, and a misaligned float* is UB.
    if (type == ScalarType::F32) {
      auto copy = allocate<float>(size(), path_);
      if (size()) std::memcpy(copy->data(), p, size() * width);
      map_->check_intact();
      return MatrixView(copy->data(), rows, cols, type, row_major, copy);
    }
    auto copy = allocate<double>(size(), path_);
    if (size()) std::memcpy(copy->data(), p, size() * width);
    map_->check_intact();
    return MatrixView(copy->data(), rows, cols, type, row_major, copy);
  }
  auto converted = allocate<double>(size(), path_);
  convert_to_double(p, dtype(), size(), converted->data());
  map_->check_intact();
  return MatrixView(converted->data(), rows, cols, ScalarType::F64, row_major, converted);
}

std::vector<std::int64_t> NpyArray::to_int64() const {
  const std::string file = path_.string();
  if (!(ndim() == 1 || (ndim() == 2 && shape()[1] == 1)))
    throw DataError(file, "expected a vector of shape (N,) or (N, 1), got " + shape_of(header_));
  std::vector<std::int64_t> out;
  try {
    out.resize(size());
  } catch (const std::exception&) {
    throw DataError(file, "not enough memory for " + std::to_string(size()) + " integers");
  }
  const void* p = data();
  for (std::size_t i = 0; i < size(); ++i) {
    switch (dtype()) {
      case DType::U64: {
        std::uint64_t v;
        std::memcpy(&v, static_cast<const std::byte*>(p) + 8 * i, 8);
        if (v > static_cast<std::uint64_t>(INT64_MAX))
          throw DataError(file, "element " + std::to_string(i) + " is " + std::to_string(v) + ", too large for int64");
        out[i] = static_cast<std::int64_t>(v);
        break;
      }
      case DType::I64:
        std::memcpy(&out[i], static_cast<const std::byte*>(p) + 8 * i, 8);
        break;
      case DType::F16:
      case DType::BF16:
      case DType::F32:
      case DType::F64: {
        const double v = load_as_double(p, dtype(), i);
        // The range test comes first: converting an out-of-range double to int64 is undefined.
        if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || v != std::floor(v))
          throw DataError(file, "element " + std::to_string(i) + " is " + std::to_string(v) + ", not a whole number");
        out[i] = static_cast<std::int64_t>(v);
        break;
      }
      default:  // bool and integers of up to 32 bits are exact in double
        out[i] = static_cast<std::int64_t>(load_as_double(p, dtype(), i));
    }
  }
  map_->check_intact();
  return out;
}

namespace {

// The header, then `write_data` streams the body: callers with non-contiguous data write in blocks.
template <class WriteData>
void write_npy_with(const std::filesystem::path& path, DType dtype, const std::vector<std::size_t>& shape, WriteData&& write_data) {
  const std::string file = path.string();
  auto descr = detail::npy_descr(dtype);
  if (!descr) throw DataError(file, "bfloat16 has no NumPy dtype; convert it to float32 to write a .npy");
  auto count = detail::checked_product(shape);
  if (!count || !detail::checked_mul(*count, dtype_size(dtype)))
    throw DataError(file, "shape " + detail::python_shape(shape) + " has too many elements to address");
  std::string header;
  try {
    header = detail::npy_header_image(*descr, shape, false);
  } catch (const std::length_error&) {
    throw DataError(file, "shape " + detail::python_shape(shape) + " has too many dimensions for a .npy header");
  }
  AtomicFile out(path);
  out.write(header);
  write_data(out, *count * dtype_size(dtype));
  out.commit();
}

}  // namespace

void write_npy(const std::filesystem::path& path, DType dtype, const std::vector<std::size_t>& shape, const void* data) {
  write_npy_with(path, dtype, shape, [&](AtomicFile& out, std::size_t bytes) {
    if (bytes && !data) throw std::invalid_argument("write_npy: no data for a non-empty array");
    out.write(data, bytes);
  });
}

void write_npy(const std::filesystem::path& path, const Matrix& m) {
  // Eigen's default is column-major and the file is C order: transpose a block of rows at a time.
  const auto rows = static_cast<std::size_t>(m.rows()), cols = static_cast<std::size_t>(m.cols());
  write_npy_with(path, DType::F64, {rows, cols}, [&](AtomicFile& out, std::size_t) {
    constexpr Eigen::Index kBlockRows = 256;
    RowMatrix block;
    for (Eigen::Index first = 0; first < m.rows(); first += kBlockRows) {
      block = m.middleRows(first, std::min(kBlockRows, m.rows() - first));
      out.write(block.data(), static_cast<std::size_t>(block.size()) * sizeof(double));
    }
  });
}

void write_npy(const std::filesystem::path& path, const RowMatrixF& m) {
  write_npy(path, DType::F32, {static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())}, m.data());
}

void write_npy(const std::filesystem::path& path, const std::vector<std::int64_t>& v) { write_npy(path, DType::I64, {v.size()}, v.data()); }

void write_npy(const std::filesystem::path& path, const std::vector<double>& v) { write_npy(path, DType::F64, {v.size()}, v.data()); }

}  // namespace caulk::io
