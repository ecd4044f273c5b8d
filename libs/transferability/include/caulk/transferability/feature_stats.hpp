// Statistics of a feature matrix that several rankers share: streamed in float64 row blocks
// (never a float64 copy of F), summed over a fixed number of lanes so the bits do not depend on
// the pool's width.
#pragma once
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "caulk/matrix.hpp"

namespace caulk::rank {

// Hears about long work on a feature matrix, from any thread (a node turns it into progress):
// `rows` the number of rows just streamed, `note` a step that takes a while (a large
// eigendecomposition). Either may be empty.
struct RowProgress {
  std::function<void(std::size_t rows)> rows;
  std::function<void(const std::string& step)> note;
  void advance(std::size_t n) const {
    if (rows) rows(n);
  }
};
// Eigendecompositions of matrices at least this wide are announced through RowProgress::note.
inline constexpr std::size_t kAnnouncedEigenDims = 2048;

// Column means of F, summed over fixed lanes (bits independent of the pool's width).
Vector column_means(const MatrixView& F);

// Calls fn(first_row, block) for consecutive blocks of F converted to float64 (count x D).
void for_each_row_block(const MatrixView& F, std::size_t first, std::size_t end,
                        const std::function<void(std::size_t, const RowMatrix&)>& fn);

// Second moments, accumulated about the column means (a first, cheap pass finds them) so that
// covariances do not lose digits to cancellation when features sit far from zero.
struct Moments {
  std::size_t rows = 0;
  Vector mean;     // D
  Matrix scatter;  // D x D: sum_i (x_i - mean)(x_i - mean)^T, full symmetric
  // Uncentred F^T F = scatter + N mean mean^T.
  Matrix gram() const;
  // Centred scatter divided by `denominator`.
  Matrix covariance(double denominator) const { return scatter / denominator; }
};
// Up to kLaneScatterMaxDims columns, each of a fixed number of row lanes sums its own D x D
// matrix (fast, and D^2 is small). Beyond, one D x D accumulator is split into column panels that
// the lanes fill from every row: memory D^2 whatever the pool's width. Either way the bits do not
// depend on the width.
inline constexpr std::size_t kLaneScatterMaxDims = 2048;
Moments moments(const MatrixView& F, const RowProgress& progress = {});
// The most bytes moments() holds at once for D columns (the accumulators and the row buffers).
std::size_t moments_peak_bytes(std::size_t D);

// Per-class counts and means over the classes present (labels in [0, num_classes)).
struct ClassMeans {
  std::vector<int> present;  // class indices with at least one row, ascending
  Vector counts;             // num_classes
  Matrix sums;               // num_classes x D: the sum of each class's rows
  Matrix means;              // num_classes x D (rows of absent classes are zero)
};
ClassMeans class_means(const MatrixView& F, const std::vector<int>& labels, int num_classes);

// Symmetric eigendecomposition (LAPACK dsyevd), eigenvalues ascending.
struct SymmetricEigen {
  Vector values;
  Matrix vectors;  // columns
};
SymmetricEigen symmetric_eigen(Matrix m);
// The bytes symmetric_eigen holds beyond its argument for an n x n matrix (LAPACK's workspace,
// 1 + 6n + 2n^2 doubles, and 3 + 5n integers).
std::size_t symmetric_eigen_workspace_bytes(std::size_t n);

// Thin singular value decomposition A = U diag(s) V^T of an m x n matrix (LAPACK dgesdd, divide
// and conquer): with r = min(m, n), U is m x r, s holds r values in decreasing order, Vt is r x n.
// `a` is overwritten. (LAPACK rather than Eigen's BDCSVD, whose templates took over a minute and a
// half to compile: docs/performance.md, "Build".)
struct ThinSvd {
  Matrix U;
  Vector s;
  Matrix Vt;
};
ThinSvd thin_svd(Matrix& a);

// Moore-Penrose pseudo-inverse of a symmetric matrix from its eigendecomposition, dropping
// eigenvalues with |lambda| <= rcond * max |lambda| (numpy.linalg.pinv's rule).
Matrix symmetric_pinv(const SymmetricEigen& e, double rcond);

// Rows of F projected on the given columns of `basis` after subtracting `mean`: N x k, small.
Matrix project_rows(const MatrixView& F, const Vector& mean, const Matrix& basis);

// Computes a value once for all the threads that ask; unlike std::call_once, a thread waiting for
// another one's computation runs the pool's queued tasks meanwhile (the computation itself may be
// waiting for a free worker to run its parallel lanes).
class ComputeOnce {
 public:
  void run(const std::function<void()>& compute);

 private:
  enum class State { Idle, Running, Done };
  std::mutex mutex_;
  std::condition_variable done_;
  State state_ = State::Idle;
};

// The expensive statistics of one feature matrix that several rankers need: computed at most once
// (thread-safe, on first use) and shareable between rankers through a cache keyed by the features'
// identity. Holds no copy of F: N-sized work happens once, then only D x D matrices are kept.
class SharedDecompositions {
 public:
  // `progress` (optional) hears the rows streamed when this call computes the moments.
  const Moments& moments(const MatrixView& F, const RowProgress& progress = {});
  // Eigendecomposition of the uncentred F^T F (LogME's spectrum).
  const SymmetricEigen& gram_eigen(const MatrixView& F, const RowProgress& progress = {});
  // Eigendecomposition of the centred scatter sum_i (x_i - mean)(x_i - mean)^T (not divided by
  // anything: callers scale the eigenvalues by their own normalisation).
  const SymmetricEigen& scatter_eigen(const MatrixView& F, const RowProgress& progress = {});
  // The most bytes an instance holds for D feature columns (for a cache's budget).
  static std::size_t max_bytes(std::size_t D) { return (3 * D * D + 3 * D) * sizeof(double); }

 private:
  ComputeOnce moments_once_, gram_once_, scatter_once_;
  Moments moments_;
  SymmetricEigen gram_eigen_, scatter_eigen_;
};

// A feature matrix together with the statistics it shares with other rankers.
class FeatureStats {
 public:
  // Implicit, so that a plain MatrixView can be scored on its own (nothing shared).
  FeatureStats(MatrixView F, std::shared_ptr<SharedDecompositions> shared = nullptr, RowProgress progress = {})
      : F_(std::move(F)), shared_(shared ? std::move(shared) : std::make_shared<SharedDecompositions>()), progress_(std::move(progress)) {}
  const MatrixView& features() const { return F_; }
  const Moments& moments() const { return shared_->moments(F_, progress_); }
  const SymmetricEigen& gram_eigen() const { return shared_->gram_eigen(F_, progress_); }
  const SymmetricEigen& scatter_eigen() const { return shared_->scatter_eigen(F_, progress_); }

 private:
  MatrixView F_;
  std::shared_ptr<SharedDecompositions> shared_;
  RowProgress progress_;
};

// Checks shared by the rankers: labels match the rows and lie in [0, num_classes).
void check_labels(const MatrixView& F, const std::vector<int>& labels, int num_classes, const char* method);

}  // namespace caulk::rank
