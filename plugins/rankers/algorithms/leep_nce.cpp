// LEEP and NCE: transferability from the source head's own class probabilities.
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "caulk/number_format.hpp"
#include "caulk/transferability/feature_stats.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace caulk::rank {

namespace {

std::string number(double v) { return format_number(v, 6); }

// Throws for the first row of `block` (rows first.. of the whole matrix) that does not fit.
void check_block(const RowMatrix& block, std::size_t first, const SourceOptions& options) {
  for (Eigen::Index i = 0; i < block.rows(); ++i) {
    const std::string row = "row " + std::to_string(first + static_cast<std::size_t>(i));
    for (Eigen::Index z = 0; z < block.cols(); ++z) {
      const double v = block(i, z);
      if (!std::isfinite(v)) throw std::invalid_argument(row + ", column " + std::to_string(z) + " is " + number(v));
      if (options.kind == SourceKind::Probabilities && v < 0)
        throw std::invalid_argument(row + " has a negative probability (" + number(v) + " in column " + std::to_string(z) + ")");
    }
    if (options.kind == SourceKind::Probabilities) {
      const double sum = block.row(i).sum();
      if (!(std::abs(sum - 1) <= options.tolerance))
        throw std::invalid_argument(row + " sums to " + number(sum) + ", not 1 (within " + number(options.tolerance) +
                                    "): not a row of probabilities");
    }
  }
}

// Row blocks of theta: the rows as given, or the softmax of each row of logits.
void for_each_probability_block(const MatrixView& source, const SourceOptions& options, bool check,
                                const std::function<void(std::size_t, const RowMatrix&)>& fn) {
  for_each_row_block(source, 0, source.rows(), [&](std::size_t first, const RowMatrix& block) {
    if (check) check_block(block, first, options);
    if (options.kind == SourceKind::Probabilities) return fn(first, block);
    RowMatrix soft = block.colwise() - block.rowwise().maxCoeff();
    soft = soft.array().exp().matrix();
    soft.array().colwise() /= soft.rowwise().sum().array();
    fn(first, soft);
  });
}

void check_inputs(const MatrixView& source, const std::vector<int>& labels, int num_classes, const SourceOptions& options,
                  const char* method) {
  check_labels(source, labels, num_classes, method);
  if (!(options.tolerance >= 0)) throw std::invalid_argument(std::string(method) + ": the tolerance must be non-negative");
}

}  // namespace

void check_source_rows(const MatrixView& source, const SourceOptions& options) {
  for_each_row_block(source, 0, source.rows(), [&](std::size_t first, const RowMatrix& block) { check_block(block, first, options); });
}

double leep(const MatrixView& source, const std::vector<int>& labels, int num_classes, const SourceOptions& options) {
  check_inputs(source, labels, num_classes, options, "LEEP");
  const double N = static_cast<double>(source.rows());
  const auto Cs = static_cast<Eigen::Index>(source.cols());
  // Joint P(y, z) = (1/N) sum over samples of class y of theta_z. Classes with no sample have a
  // zero row here and never enter the score.
  Matrix joint = Matrix::Zero(num_classes, Cs);
  for_each_probability_block(source, options, true, [&](std::size_t first, const RowMatrix& block) {
    for (Eigen::Index i = 0; i < block.rows(); ++i) joint.row(labels[first + static_cast<std::size_t>(i)]) += block.row(i) / N;
  });
  // P(y | z) = P(y, z) / P(z); a source class no sample puts mass on contributes nothing.
  const Eigen::RowVectorXd pz = joint.colwise().sum();
  Matrix conditional = Matrix::Zero(num_classes, Cs);
  for (Eigen::Index z = 0; z < Cs; ++z)
    if (pz[z] > 0) conditional.col(z) = joint.col(z) / pz[z];
  double total = 0;
  for_each_probability_block(source, options, false, [&](std::size_t first, const RowMatrix& block) {
    for (Eigen::Index i = 0; i < block.rows(); ++i) {
      const int y = labels[first + static_cast<std::size_t>(i)];
      total += std::log(conditional.row(y).dot(block.row(i)));
    }
  });
  return total / N;
}

double nce(const MatrixView& source, const std::vector<int>& labels, int num_classes, const SourceOptions& options) {
  check_inputs(source, labels, num_classes, options, "NCE");
  const double N = static_cast<double>(source.rows());
  const auto Cs = static_cast<Eigen::Index>(source.cols());
  Matrix joint = Matrix::Zero(num_classes, Cs);
  // The argmax of a row of logits is that of its softmax: no softmax needed, only the checks.
  for_each_row_block(source, 0, source.rows(), [&](std::size_t first, const RowMatrix& block) {
    check_block(block, first, options);
    for (Eigen::Index i = 0; i < block.rows(); ++i) {
      Eigen::Index z = 0;
      block.row(i).maxCoeff(&z);  // the first maximum, as numpy's argmax
      joint(labels[first + static_cast<std::size_t>(i)], z) += 1.0 / N;
    }
  });
  std::vector<bool> present(static_cast<std::size_t>(num_classes), false);
  for (int y : labels) present[static_cast<std::size_t>(y)] = true;
  // - H(Y | Z) = - sum_z P(z) sum_y -p log p with p = P(y | z) + 1e-20, as the reference, over the
  // classes y present (the reference's classes 0..max label would add 1e-20 log 1e-20 per absent one).
  double conditional_entropy = 0;
  for (Eigen::Index z = 0; z < Cs; ++z) {
    const double pz = joint.col(z).sum();
    if (pz == 0) continue;
    double h = 0;
    for (int y = 0; y < num_classes; ++y) {
      if (!present[static_cast<std::size_t>(y)]) continue;
      const double p = joint(y, z) / pz + 1e-20;
      h -= p * std::log(p);
    }
    conditional_entropy += pz * h;
  }
  return -conditional_entropy;
}

}  // namespace caulk::rank
