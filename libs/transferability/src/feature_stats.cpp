#include "caulk/transferability/feature_stats.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

#include "caulk/parallel.hpp"

namespace caulk::rank {

namespace {
constexpr std::size_t kLanes = 4;
constexpr std::size_t kBlockRows = 512;
}  // namespace

void for_each_row_block(const MatrixView& F, std::size_t first, std::size_t end,
                        const std::function<void(std::size_t, const RowMatrix&)>& fn) {
  RowMatrix block;
  for (std::size_t row = first; row < end; row += kBlockRows) {
    const std::size_t count = std::min(kBlockRows, end - row);
    F.rows_to(row, count, block);
    fn(row, block);
  }
}

Matrix Moments::gram() const {
  Matrix g = scatter;
  g.noalias() += static_cast<double>(rows) * mean * mean.transpose();
  return g;
}

Vector column_means(const MatrixView& F) {
  const std::size_t N = F.rows(), D = F.cols();
  std::vector<Vector> sums(kLanes);
  parallel_for(kLanes, [&](std::size_t lane) {
    sums[lane].setZero(static_cast<Eigen::Index>(D));
    for_each_row_block(F, N * lane / kLanes, N * (lane + 1) / kLanes,
                       [&](std::size_t, const RowMatrix& block) { sums[lane] += block.colwise().sum().transpose(); });
  });
  Vector total = std::move(sums[0]);
  for (std::size_t lane = 1; lane < kLanes; ++lane) total += sums[lane];
  return total / static_cast<double>(N);
}

namespace {

// Rows per block of the panel route: at most 4 MiB of doubles per block (one per lane).
std::size_t panel_block_rows(std::size_t D) {
  return std::clamp<std::size_t>((std::size_t{1} << 19) / std::max<std::size_t>(D, 1), 1, kBlockRows);
}

// One D x D accumulator whose upper triangle is cut into kLanes column panels of about equal
// work (panel p covers columns [D sqrt(p/P), D sqrt((p+1)/P))): each lane streams every row and
// updates only the rows 0..end of its own columns, by dsyrk on its diagonal block and dgemm above
// it. Each entry is summed over the rows in the same order whatever the pool's width.
Matrix scatter_by_panels(const MatrixView& F, const Vector& mean, const RowProgress& progress) {
  const std::size_t N = F.rows(), D = F.cols();
  Matrix S = Matrix::Zero(static_cast<Eigen::Index>(D), static_cast<Eigen::Index>(D));
  std::vector<std::size_t> bounds(kLanes + 1);
  for (std::size_t p = 0; p <= kLanes; ++p)
    bounds[p] = static_cast<std::size_t>(std::llround(static_cast<double>(D) * std::sqrt(static_cast<double>(p) / kLanes)));
  const std::size_t rows_per_block = panel_block_rows(D);
  const int ld = static_cast<int>(D);
  parallel_for(kLanes, [&](std::size_t lane) {
    const std::size_t a = bounds[lane], b = bounds[lane + 1];
    if (a == b) return;
    RowMatrix block;
    for (std::size_t row = 0; row < N; row += rows_per_block) {
      const std::size_t count = std::min(rows_per_block, N - row);
      F.rows_to(row, count, block);
      block.rowwise() -= mean.transpose();
      // The row-major count x D block is the column-major D x count matrix A (lda = D):
      // S[a:b, a:b] += A[a:b, :] A[a:b, :]^T and S[0:a, a:b] += A[0:a, :] A[a:b, :]^T.
      const int n = static_cast<int>(b - a), k = static_cast<int>(count);
      cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, n, k, 1.0, block.data() + a, ld, 1.0, S.data() + a * D + a, ld);
      if (a > 0)
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, static_cast<int>(a), n, k, 1.0, block.data(), ld, block.data() + a, ld, 1.0,
                    S.data() + a * D, ld);
      if (lane == 0) progress.advance(count);
    }
  });
  return S;
}

}  // namespace

std::size_t moments_peak_bytes(std::size_t D) {
  const std::size_t d2 = D * D;
  if (D <= kLaneScatterMaxDims) return (kLanes * d2 + 2 * kLanes * kBlockRows * D + kLanes * D) * sizeof(double);
  return (d2 + kLanes * panel_block_rows(D) * D + kLanes * D) * sizeof(double);
}

Moments moments(const MatrixView& F, const RowProgress& progress) {
  const std::size_t N = F.rows(), D = F.cols();
  Moments m;
  m.rows = N;
  m.mean = column_means(F);
  if (D > kLaneScatterMaxDims) {
    m.scatter = scatter_by_panels(F, m.mean, progress);
    m.scatter.triangularView<Eigen::StrictlyLower>() = m.scatter.transpose();
    return m;
  }
  std::vector<Matrix> scatters(kLanes);
  parallel_for(kLanes, [&](std::size_t lane) {
    scatters[lane].setZero(static_cast<Eigen::Index>(D), static_cast<Eigen::Index>(D));
    for_each_row_block(F, N * lane / kLanes, N * (lane + 1) / kLanes, [&](std::size_t, const RowMatrix& rows) {
      RowMatrix block = rows.rowwise() - m.mean.transpose();
      // A row-major count x D block is the column-major D x count matrix A; scatter += A A^T.
      cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, static_cast<int>(D), static_cast<int>(block.rows()), 1.0, block.data(),
                  static_cast<int>(D), 1.0, scatters[lane].data(), static_cast<int>(D));
      progress.advance(static_cast<std::size_t>(rows.rows()));
    });
  });
  m.scatter = std::move(scatters[0]);
  for (std::size_t lane = 1; lane < kLanes; ++lane) {
    m.scatter += scatters[lane];
    scatters[lane] = Matrix();
  }
  m.scatter.triangularView<Eigen::StrictlyLower>() = m.scatter.transpose();
  return m;
}

ClassMeans class_means(const MatrixView& F, const std::vector<int>& labels, int num_classes) {
  const auto C = static_cast<Eigen::Index>(num_classes);
  ClassMeans out;
  out.counts = Vector::Zero(C);
  out.sums = Matrix::Zero(C, static_cast<Eigen::Index>(F.cols()));
  for_each_row_block(F, 0, F.rows(), [&](std::size_t first, const RowMatrix& block) {
    for (Eigen::Index i = 0; i < block.rows(); ++i) {
      const int c = labels[first + static_cast<std::size_t>(i)];
      out.sums.row(c) += block.row(i);
      out.counts[c] += 1;
    }
  });
  out.means = out.sums;
  for (int c = 0; c < num_classes; ++c)
    if (out.counts[c] > 0) {
      out.present.push_back(c);
      out.means.row(c) /= out.counts[c];
    }
  return out;
}

SymmetricEigen symmetric_eigen(Matrix m) {
  const auto n = static_cast<int>(m.rows());
  SymmetricEigen e;
  e.values.resize(n);
  if (n == 0) return e;
  const int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', n, m.data(), n, e.values.data());
  if (info != 0) throw std::runtime_error("symmetric eigendecomposition failed (LAPACK dsyevd info " + std::to_string(info) + ")");
  e.vectors = std::move(m);
  return e;
}

ThinSvd thin_svd(Matrix& a) {
  const auto m = static_cast<lapack_int>(a.rows()), n = static_cast<lapack_int>(a.cols()), r = std::min(m, n);
  ThinSvd out{Matrix(m, r), Vector(r), Matrix(r, n)};
  if (r == 0) return out;
  const lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', m, n, a.data(), m, out.s.data(), out.U.data(), m, out.Vt.data(), r);
  if (info != 0) throw std::runtime_error("singular value decomposition failed (LAPACK dgesdd info " + std::to_string(info) + ")");
  return out;
}

std::size_t symmetric_eigen_workspace_bytes(std::size_t n) {
  return (1 + 6 * n + 2 * n * n + n) * sizeof(double) + (3 + 5 * n) * sizeof(int);
}

Matrix symmetric_pinv(const SymmetricEigen& e, double rcond) {
  const double largest = e.values.size() ? e.values.cwiseAbs().maxCoeff() : 0.0;
  Vector inverse = Vector::Zero(e.values.size());
  for (Eigen::Index i = 0; i < e.values.size(); ++i)
    if (std::abs(e.values[i]) > rcond * largest) inverse[i] = 1.0 / e.values[i];
  return e.vectors * inverse.asDiagonal() * e.vectors.transpose();
}

Matrix project_rows(const MatrixView& F, const Vector& mean, const Matrix& basis) {
  Matrix out(static_cast<Eigen::Index>(F.rows()), basis.cols());
  for_each_row_block(F, 0, F.rows(), [&](std::size_t first, const RowMatrix& block) {
    out.middleRows(static_cast<Eigen::Index>(first), block.rows()) = (block.rowwise() - mean.transpose()) * basis;
  });
  return out;
}

void ComputeOnce::run(const std::function<void()>& compute) {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (state_ == State::Done) return;
    if (state_ == State::Idle) {
      state_ = State::Running;
      lock.unlock();
      try {
        compute();
      } catch (...) {
        lock.lock();
        state_ = State::Idle;  // the next caller tries again (and meets the same error)
        done_.notify_all();
        throw;
      }
      lock.lock();
      state_ = State::Done;
      done_.notify_all();
      return;
    }
    // Another thread is computing: help the pool, or wait a little when there is nothing to run.
    lock.unlock();
    const bool helped = help_current_pool();
    lock.lock();
    if (!helped) done_.wait_for(lock, std::chrono::milliseconds(2), [&] { return state_ != State::Running; });
  }
}

namespace {
void announce_eigen(const RowProgress& progress, const char* what, std::size_t D) {
  if (progress.note && D >= kAnnouncedEigenDims)
    progress.note("eigendecomposition of the " + std::to_string(D) + " x " + std::to_string(D) + " " + what +
                  " (single-threaded LAPACK dsyevd, O(D^3): this takes a while)");
}
}  // namespace

const Moments& SharedDecompositions::moments(const MatrixView& F, const RowProgress& progress) {
  moments_once_.run([&] { moments_ = rank::moments(F, progress); });
  return moments_;
}

const SymmetricEigen& SharedDecompositions::gram_eigen(const MatrixView& F, const RowProgress& progress) {
  gram_once_.run([&] {
    Matrix gram = moments(F, progress).gram();
    announce_eigen(progress, "F^T F", F.cols());
    gram_eigen_ = symmetric_eigen(std::move(gram));
  });
  return gram_eigen_;
}

const SymmetricEigen& SharedDecompositions::scatter_eigen(const MatrixView& F, const RowProgress& progress) {
  scatter_once_.run([&] {
    const Moments& m = moments(F, progress);
    announce_eigen(progress, "scatter matrix", F.cols());
    scatter_eigen_ = symmetric_eigen(m.scatter);
  });
  return scatter_eigen_;
}

void check_labels(const MatrixView& F, const std::vector<int>& labels, int num_classes, const char* method) {
  if (F.empty()) throw std::invalid_argument(std::string(method) + " needs at least one row and one feature column");
  if (labels.size() != F.rows())
    throw std::invalid_argument(std::string(method) + ": the features have " + std::to_string(F.rows()) + " rows but there are " +
                                std::to_string(labels.size()) + " labels");
  for (int y : labels)
    if (y < 0 || y >= num_classes)
      throw std::invalid_argument(std::string(method) + ": label " + std::to_string(y) + " is outside [0, " + std::to_string(num_classes) +
                                  ")");
}

}  // namespace caulk::rank
