// Numeric matrices as the algorithms see them.
//
// Algorithms take Eigen types; feature files are large float32 arrays that must not be copied to
// float64 whole. MatrixView is a read-only view over float32 or float64 memory (a memory-mapped
// file or an in-process buffer) that hands rows to an algorithm in float64 blocks.
#pragma once
#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace caulk {

namespace io {
class MappedFile;
}

using Matrix = Eigen::MatrixXd;  // column-major
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vector = Eigen::VectorXd;

enum class ScalarType { F32, F64 };

class MatrixView {
 public:
  MatrixView() = default;
  // A view over `data` (rows x cols of `type`, row-major or column-major); `owner` keeps it alive.
  // `mapping` is the memory-mapped file `data` lies in, if any (`owner` keeps it alive too): every
  // read through the view then checks that the file did not shrink meanwhile (check_intact).
  MatrixView(const void* data, std::size_t rows, std::size_t cols, ScalarType type, bool row_major, std::shared_ptr<const void> owner,
             const io::MappedFile* mapping = nullptr);

  // Views that share ownership of an Eigen matrix.
  static MatrixView of(std::shared_ptr<const Matrix> m);
  static MatrixView of(std::shared_ptr<const RowMatrix> m);
  static MatrixView of(std::shared_ptr<const RowMatrixF> m);
  // A view that does not own `m` (the caller keeps it alive).
  static MatrixView borrow(const Matrix& m);
  static MatrixView borrow(const RowMatrixF& m);

  std::size_t rows() const { return rows_; }
  std::size_t cols() const { return cols_; }
  ScalarType scalar_type() const { return type_; }
  bool row_major() const { return row_major_; }
  bool empty() const { return rows_ == 0 || cols_ == 0; }
  const void* data() const { return data_; }

  // One element, converted to double.
  double operator()(std::size_t r, std::size_t c) const;

  // Rows [first, first + count) converted to double into `out` (resized to count x cols).
  void rows_to(std::size_t first, std::size_t count, RowMatrix& out) const;
  void rows_to(std::size_t first, std::size_t count, Matrix& out) const;
  // The whole matrix in double (for small matrices; large ones are processed by blocks).
  Matrix to_double() const;

  // Rows of this view listed by index, as a double matrix.
  Matrix gather_rows(const std::vector<std::size_t>& index) const;

  // The index of the first non-finite element, if any (row, col).
  bool find_non_finite(std::size_t& row, std::size_t& col) const;

  // Identity of the underlying data, for caches that share work between algorithms.
  const void* identity() const { return data_; }

  // Throws DataError naming the file when the view lies in a mapped file that shrank while it was
  // read (caulk/io/mapped_file.hpp). The member functions above check by themselves; code that
  // reads data() directly calls it after reading.
  void check_intact() const;

 private:
  const void* data_ = nullptr;
  std::size_t rows_ = 0, cols_ = 0;
  ScalarType type_ = ScalarType::F64;
  bool row_major_ = true;
  std::shared_ptr<const void> owner_;
  const io::MappedFile* mapping_ = nullptr;
};

}  // namespace caulk
