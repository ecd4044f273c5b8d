// NumPy .npy files (format 1.0, 2.0 and 3.0), as docs/pipeline-format.md specifies.
//
// Reading memory-maps the file: a float32 array stays float32 in memory, and pages are touched only
// when an algorithm reads them. Every malformed file gets a DataError that names the file and the
// problem (bad magic, truncated header or data, shape that does not match the byte count,
// big-endian or object arrays, unsupported dtype).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "caulk/io/dtype.hpp"
#include "caulk/io/mapped_file.hpp"
#include "caulk/matrix.hpp"

namespace caulk::io {

// The longest header read or written. A real header is well under a kilobyte (NumPy itself
// refuses more than 10,000 bytes by default); the bound keeps a hostile shape from exhausting memory.
inline constexpr std::size_t kMaxNpyHeader = 1 << 20;

struct NpyHeader {
  DType dtype = DType::F64;
  std::vector<std::size_t> shape;
  bool fortran_order = false;
  std::size_t data_offset = 0;  // bytes from the start of the file
  std::size_t element_count() const;
};

// Parses the header of an in-memory .npy image of `size` bytes; `name` is used in errors.
// Checks that the data that follows has exactly the size the shape requires.
NpyHeader parse_npy_header(const std::byte* bytes, std::size_t size, const std::filesystem::path& name);

class NpyArray {
 public:
  // Maps and validates a file; throws DataError.
  static NpyArray open(const std::filesystem::path& path);
  // Reads only the header (cheap validation of a manifest's files before anything runs).
  static NpyHeader read_header(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  DType dtype() const { return header_.dtype; }
  const std::vector<std::size_t>& shape() const { return header_.shape; }
  bool fortran_order() const { return header_.fortran_order; }
  std::size_t size() const { return header_.element_count(); }
  std::size_t ndim() const { return header_.shape.size(); }
  const void* data() const;
  // The mapping the data lives in (shared with every in-place view of it).
  const std::shared_ptr<const MappedFile>& mapping() const { return map_; }

  // A 2-D view: a 1-D array of length N is N x 1. F32 and F64 are viewed in place (no copy; the
  // view keeps the mapping alive; C order is row-major, Fortran order column-major) unless a
  // hand-made header leaves the data misaligned, when they are copied; other types are converted
  // to a float64 buffer owned by the view.
  // Throws DataError when ndim is 0 or more than 2.
  MatrixView matrix() const;
  // Every element as int64 (integer and bool arrays; floats that are whole numbers).
  // Throws DataError for floats with a fractional part, values outside int64, and arrays that are
  // not a vector (shape (N) or (N, 1)).
  std::vector<std::int64_t> to_int64() const;

 private:
  std::filesystem::path path_;
  NpyHeader header_;
  std::shared_ptr<const MappedFile> map_;
};

// Writes an array atomically (format 1.0, or 2.0 when the header needs it), C order.
void write_npy(const std::filesystem::path& path, DType dtype, const std::vector<std::size_t>& shape, const void* data);
void write_npy(const std::filesystem::path& path, const Matrix& m);      // float64, N x D
void write_npy(const std::filesystem::path& path, const RowMatrixF& m);  // float32, N x D
void write_npy(const std::filesystem::path& path, const std::vector<std::int64_t>& v);
void write_npy(const std::filesystem::path& path, const std::vector<double>& v);

}  // namespace caulk::io
