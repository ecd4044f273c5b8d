// LEEP and NCE: transferability from the source head's own class probabilities.
#include <cmath>
#include <stdexcept>
#include <string>

#include "caulk/transferability/feature_stats.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace caulk::rank {

double leep(const MatrixView& theta, const std::vector<int>& labels, int num_classes) {
  check_labels(theta, labels, num_classes, "LEEP");
  const double N = static_cast<double>(theta.rows());
  const auto Cs = static_cast<Eigen::Index>(theta.cols());
  // Joint P(y, z) = (1/N) sum over samples of class y of theta_z.
  Matrix joint = Matrix::Zero(num_classes, Cs);
  for_each_row_block(theta, 0, theta.rows(), [&](std::size_t first, const RowMatrix& block) {
    for (Eigen::Index i = 0; i < block.rows(); ++i) joint.row(labels[first + static_cast<std::size_t>(i)]) += block.row(i) / N;
  });
  // P(y | z) = P(y, z) / P(z); a source class no sample puts mass on contributes nothing.
  const Eigen::RowVectorXd pz = joint.colwise().sum();
  Matrix conditional = Matrix::Zero(num_classes, Cs);
  for (Eigen::Index z = 0; z < Cs; ++z)
    if (pz[z] > 0) conditional.col(z) = joint.col(z) / pz[z];
  double total = 0;
  for_each_row_block(theta, 0, theta.rows(), [&](std::size_t first, const RowMatrix& block) {
    for (Eigen::Index i = 0; i < block.rows(); ++i) {
      const int y = labels[first + static_cast<std::size_t>(i)];
      total += std::log(conditional.row(y).dot(block.row(i)));
    }
  });
  return total / N;
}

double nce(const MatrixView& theta, const std::vector<int>& labels, int num_classes) {
  check_labels(theta, labels, num_classes, "NCE");
  const double N = static_cast<double>(theta.rows());
  const auto Cs = static_cast<Eigen::Index>(theta.cols());
  Matrix joint = Matrix::Zero(num_classes, Cs);
  for_each_row_block(theta, 0, theta.rows(), [&](std::size_t first, const RowMatrix& block) {
    for (Eigen::Index i = 0; i < block.rows(); ++i) {
      Eigen::Index z = 0;
      block.row(i).maxCoeff(&z);  // the first maximum, as numpy's argmax
      joint(labels[first + static_cast<std::size_t>(i)], z) += 1.0 / N;
    }
  });
  // - H(Y | Z) = - sum_z P(z) sum_y -p log p with p = P(y | z) + 1e-20, as the reference.
  double conditional_entropy = 0;
  for (Eigen::Index z = 0; z < Cs; ++z) {
    const double pz = joint.col(z).sum();
    if (pz == 0) continue;
    double h = 0;
    for (int y = 0; y < num_classes; ++y) {
      const double p = joint(y, z) / pz + 1e-20;
      h -= p * std::log(p);
    }
    conditional_entropy += pz * h;
  }
  return -conditional_entropy;
}

}  // namespace caulk::rank
