// GBC: class separability as the overlap (Bhattacharyya coefficient) of per-class Gaussians.
#include <cmath>

#include "caulk/transferability/feature_stats.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace caulk::rank {

double gbc(const FeatureStats& stats, const std::vector<int>& labels, int num_classes, GaussianKind kind) {
  const MatrixView& F = stats.features();
  check_labels(F, labels, num_classes, "GBC");
  const ClassMeans cm = class_means(F, labels, num_classes);
  const auto D = static_cast<Eigen::Index>(F.cols());
  // Population variance per class and dimension (second pass, around the class means).
  Matrix variance = Matrix::Zero(num_classes, D);
  for_each_row_block(F, 0, F.rows(), [&](std::size_t first, const RowMatrix& block) {
    for (Eigen::Index i = 0; i < block.rows(); ++i) {
      const int c = labels[first + static_cast<std::size_t>(i)];
      variance.row(c) += (block.row(i) - cm.means.row(c)).array().square().matrix();
    }
  });
  for (int c : cm.present) {
    variance.row(c) /= cm.counts[c];
    variance.row(c) = variance.row(c).cwiseMax(1e-4);
    if (kind == GaussianKind::Spherical) variance.row(c).setConstant(variance.row(c).mean());
  }
  double total = 0;
  for (int c : cm.present)
    for (int k : cm.present) {
      if (c == k) continue;
      const Eigen::ArrayXd s = 0.5 * (variance.row(c) + variance.row(k)).transpose().array();
      const Eigen::ArrayXd diff = (cm.means.row(c) - cm.means.row(k)).transpose().array();
      const double distance = 0.125 * (diff.square() / s).sum() +
                              0.5 * (s.log().sum() - 0.5 * variance.row(c).array().log().sum() - 0.5 * variance.row(k).array().log().sum());
      total += std::exp(-distance);
    }
  return -total;
}

}  // namespace caulk::rank
