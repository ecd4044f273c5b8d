#include "caulk/matrix.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "caulk/io/mapped_file.hpp"

namespace caulk {

MatrixView::MatrixView(const void* data, std::size_t rows, std::size_t cols, ScalarType type, bool row_major,
                       std::shared_ptr<const void> owner, const io::MappedFile* mapping)
    : data_(data), rows_(rows), cols_(cols), type_(type), row_major_(row_major), owner_(std::move(owner)), mapping_(mapping) {}

void MatrixView::check_intact() const {
  if (mapping_) mapping_->check_intact();
}

MatrixView MatrixView::of(std::shared_ptr<const Matrix> m) {
  const Matrix* p = m.get();
  return MatrixView(p->data(), p->rows(), p->cols(), ScalarType::F64, false, std::move(m));
}
MatrixView MatrixView::of(std::shared_ptr<const RowMatrix> m) {
  const RowMatrix* p = m.get();
  return MatrixView(p->data(), p->rows(), p->cols(), ScalarType::F64, true, std::move(m));
}
MatrixView MatrixView::of(std::shared_ptr<const RowMatrixF> m) {
  const RowMatrixF* p = m.get();
  return MatrixView(p->data(), p->rows(), p->cols(), ScalarType::F32, true, std::move(m));
}
MatrixView MatrixView::borrow(const Matrix& m) { return MatrixView(m.data(), m.rows(), m.cols(), ScalarType::F64, false, nullptr); }
MatrixView MatrixView::borrow(const RowMatrixF& m) { return MatrixView(m.data(), m.rows(), m.cols(), ScalarType::F32, true, nullptr); }

namespace {
double element(const void* data, ScalarType type, std::size_t i) {
  return type == ScalarType::F32 ? static_cast<const float*>(data)[i] : static_cast<const double*>(data)[i];
}
}  // namespace

double MatrixView::operator()(std::size_t r, std::size_t c) const {
  const double v = element(data_, type_, row_major_ ? r * cols_ + c : c * rows_ + r);
  check_intact();
  return v;
}

namespace {
template <class Scalar, class Out>
void copy_rows(const Scalar* base, std::size_t rows, std::size_t cols, bool row_major, std::size_t first, std::size_t count, Out& out) {
  out.resize(static_cast<Eigen::Index>(count), static_cast<Eigen::Index>(cols));
  if (row_major) {
    using Src = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const Src> src(base + first * cols, static_cast<Eigen::Index>(count), static_cast<Eigen::Index>(cols));
    out = src.template cast<double>();
  } else {
    using Src = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
    Eigen::Map<const Src, 0, Eigen::OuterStride<>> src(base + first, static_cast<Eigen::Index>(count), static_cast<Eigen::Index>(cols),
                                                       Eigen::OuterStride<>(static_cast<Eigen::Index>(rows)));
    out = src.template cast<double>();
  }
}
}  // namespace

void MatrixView::rows_to(std::size_t first, std::size_t count, RowMatrix& out) const {
  if (first + count > rows_) throw std::out_of_range("MatrixView::rows_to: rows out of range");
  if (type_ == ScalarType::F32)
    copy_rows(static_cast<const float*>(data_), rows_, cols_, row_major_, first, count, out);
  else
    copy_rows(static_cast<const double*>(data_), rows_, cols_, row_major_, first, count, out);
  check_intact();
}

void MatrixView::rows_to(std::size_t first, std::size_t count, Matrix& out) const {
  if (first + count > rows_) throw std::out_of_range("MatrixView::rows_to: rows out of range");
  if (type_ == ScalarType::F32)
    copy_rows(static_cast<const float*>(data_), rows_, cols_, row_major_, first, count, out);
  else
    copy_rows(static_cast<const double*>(data_), rows_, cols_, row_major_, first, count, out);
  check_intact();
}

Matrix MatrixView::to_double() const {
  Matrix out;
  rows_to(0, rows_, out);
  return out;
}

Matrix MatrixView::gather_rows(const std::vector<std::size_t>& index) const {
  Matrix out(static_cast<Eigen::Index>(index.size()), static_cast<Eigen::Index>(cols_));
  for (std::size_t i = 0; i < index.size(); ++i) {
    if (index[i] >= rows_) throw std::out_of_range("MatrixView::gather_rows: row out of range");
    for (std::size_t c = 0; c < cols_; ++c)
      out(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)) =
          element(data_, type_, row_major_ ? index[i] * cols_ + c : c * rows_ + index[i]);
  }
  check_intact();
  return out;
}

namespace {
template <class Scalar>
bool first_non_finite(const Scalar* p, std::size_t n, std::size_t& at) {
  // A branch-free sum over blocks first (fast path), element search only when a block is bad.
  constexpr std::size_t kBlock = 4096;
  for (std::size_t b = 0; b < n; b += kBlock) {
    std::size_t e = std::min(n, b + kBlock);
    Scalar acc = 0;
    for (std::size_t i = b; i < e; ++i) acc += p[i] * Scalar(0);  // NaN or Inf times 0 is NaN
    if (acc != acc) {
      for (std::size_t i = b; i < e; ++i)
        if (!std::isfinite(p[i])) {
          at = i;
          return true;
        }
    }
  }
  return false;
}
}  // namespace

bool MatrixView::find_non_finite(std::size_t& row, std::size_t& col) const {
  std::size_t n = rows_ * cols_, at = 0;
  bool bad = type_ == ScalarType::F32 ? first_non_finite(static_cast<const float*>(data_), n, at)
                                      : first_non_finite(static_cast<const double*>(data_), n, at);
  check_intact();
  if (!bad) return false;
  if (row_major_) {
    row = at / cols_;
    col = at % cols_;
  } else {
    col = at / rows_;
    row = at % rows_;
  }
  return true;
}

}  // namespace caulk
