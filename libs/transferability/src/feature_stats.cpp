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

Moments moments(const MatrixView& F) {
  const std::size_t N = F.rows(), D = F.cols();
  Moments m;
  m.rows = N;
  m.mean = column_means(F);
  std::vector<Matrix> scatters(kLanes);
  parallel_for(kLanes, [&](std::size_t lane) {
    scatters[lane].setZero(static_cast<Eigen::Index>(D), static_cast<Eigen::Index>(D));
    for_each_row_block(F, N * lane / kLanes, N * (lane + 1) / kLanes, [&](std::size_t, const RowMatrix& rows) {
      RowMatrix block = rows.rowwise() - m.mean.transpose();
      // A row-major count x D block is the column-major D x count matrix A; scatter += A A^T.
      cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, static_cast<int>(D), static_cast<int>(block.rows()), 1.0,
                  block.data(), static_cast<int>(D), 1.0, scatters[lane].data(), static_cast<int>(D));
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

const Moments& SharedDecompositions::moments(const MatrixView& F) {
  moments_once_.run([&] { moments_ = rank::moments(F); });
  return moments_;
}

const SymmetricEigen& SharedDecompositions::gram_eigen(const MatrixView& F) {
  gram_once_.run([&] { gram_eigen_ = symmetric_eigen(moments(F).gram()); });
  return gram_eigen_;
}

const SymmetricEigen& SharedDecompositions::scatter_eigen(const MatrixView& F) {
  scatter_once_.run([&] {
    scatter_eigen_ = symmetric_eigen(moments(F).scatter);
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
      throw std::invalid_argument(std::string(method) + ": label " + std::to_string(y) + " is outside [0, " +
                                  std::to_string(num_classes) + ")");
}

}  // namespace caulk::rank
