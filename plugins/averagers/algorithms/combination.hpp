// The predictions of K models stacked for combining, and the losses a combination is judged by.
//
// A combination with weights w_i (a point of the simplex per row) predicts
// f_i = sum_k w_ik F_ik, where F_ik is model k's C outputs on row i (class probabilities or
// regression values). Its empirical risk under a loss is the mean over rows of the row loss:
//   regression losses: (1/C) sum_c rho(f_ic, y_ic)  (so squared loss is the mean squared error);
//   cross_entropy: -log max(f_i,y_i, 1e-15)          (the clipped log-loss of eval.classification);
//   squared on class probabilities: against the one-hot truth (the Brier score divided by C).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/matrix.hpp"

namespace caulk::avg {

enum class LossKind { Squared, Absolute, Huber, Pinball, CrossEntropy };
LossKind parse_loss(const std::string& name);  // throws Error listing the losses
std::string loss_name(LossKind k);

// The floor of a true-class probability under cross_entropy (metrics::kLogLossClip).
inline constexpr double kProbabilityFloor = 1e-15;

struct Loss {
  LossKind kind = LossKind::Squared;
  double delta = 1.0;  // huber: quadratic for |r| <= delta, linear beyond
  double tau = 0.5;    // pinball: the quantile, rho(u) = tau u (u >= 0), (tau - 1) u (u < 0), u = y - f
  // absolute and pinball: the Huber-smoothing width mu (0: the exact, non-smooth loss). The
  // smoothed |u| is u^2 / (2 mu) for |u| <= mu and |u| - mu / 2 beyond, within mu / 2 of |u|.
  double smoothing = 0;

  // Whether the loss needs the smoothing schedule to be minimised by a gradient method.
  bool needs_smoothing() const { return kind == LossKind::Absolute || kind == LossKind::Pinball; }
  // Loss of one value (regression): prediction f, truth y; d rho / d f into *derivative if given.
  double value(double f, double y, double* derivative) const;
  // d^2 rho / d f^2 where it exists (0 on the linear parts and at the kink of the exact losses).
  double curvature(double f, double y) const;
  // Loss of one row: C predictions `f`; regression truth `y` (C values) or class `cls`. When
  // `gradient` is given, d loss / d f (C values) is written there.
  double row(const double* f, const double* y, int cls, int C, double* gradient) const;
  // The largest gap between this (smoothed) loss and the exact one, per unit of row loss.
  double smoothing_gap() const;
  // The same loss on values divided by `scale` (a rescaled Stack): huber's delta divided too, so
  // that the fit is the same problem; the other losses have no parameter in the values' units.
  Loss for_scale(double scale) const;
  // A mean loss computed on values divided by `scale`, in the given values' units: times scale^2
  // (squared, huber) or scale (absolute, pinball; smoothing aside); cross_entropy is never rescaled.
  double in_given_units(double risk, double scale) const;
};

// K models' predictions on the rows of one split, and the truth there.
struct Stack {
  TaskKind kind = TaskKind::Regression;
  int K = 0, C = 0;
  std::vector<std::string> models;
  RowMatrix F;               // N x (K C): row i holds model k's C outputs in columns [k C, (k + 1) C)
  RowMatrix Y;               // regression: N x C
  std::vector<int> classes;  // classification: N class indices
  // F and Y hold the given values divided by this power of two (see rescale; 1: as given).
  double scale = 1;
  std::size_t rows() const { return static_cast<std::size_t>(F.rows()); }
  // The rows listed by `index`, in that order.
  Stack subset(const std::vector<std::size_t>& index) const;
  // Model k's N x C predictions.
  Matrix model(int k) const;
};

// Stacks models' predictions on a split, checking everything and naming the model at fault:
// every matrix N x C with the same N and C as the truth, finite values, and for classification
// rows of non-negative probabilities that sum to 1 (within 1e-6) and class indices in [0, C).
// `targets` (regression, N x C) or `classes` (classification) is the truth; `what` names the split
// in messages (e.g. "split 'val'").
Stack make_stack(TaskKind kind, const std::vector<std::string>& names, const std::vector<const Matrix*>& predictions, const Matrix* targets,
                 const std::vector<int>* classes, const std::string& what);

// ------------------------------------------------------------------ the magnitude of the values
// The fits square and sum predictions and targets (Gram matrices, squared and Huber losses): with
// every value below kLargestMagnitude and the largest above kSmallestMagnitude, those sums neither
// overflow nor vanish. Regression values outside that range can be divided by one power of two
// (exactly) when the fit does not depend on their scale (docs/averaging.md, "Magnitudes"), unless
// they span more than that range themselves.
inline constexpr double kLargestMagnitude = 1e100;
inline constexpr double kSmallestMagnitude = 1e-100;

// Where a stack's largest and smallest magnitudes lie, by source: each model's predictions and
// the targets (source -1). The smallest is the least of the sources' largest magnitudes, among
// sources that are not zero everywhere.
struct Magnitudes {
  enum class Range { Fits, Rescalable, TooSpread };
  Range range = Range::Fits;
  double largest = 0, smallest = 0;
  int largest_source = -1, smallest_source = -1;
  Eigen::Index row = 0, column = 0;  // of the largest value
};
// Classification stacks (probabilities) always fit.
Magnitudes magnitudes(const Stack& s);
// Divides a regression stack's predictions and targets by the power of two that brings the
// largest magnitude into [0.5, 1), and multiplies s.scale by it.
void rescale(Stack& s, const Magnitudes& m);

// f_i = sum_k W_ik F_ik for every row: N x C. W is N x K.
Matrix combine(const Stack& s, const Matrix& W);
// The same with one weight vector for every row.
Matrix combine_constant(const Stack& s, const Vector& w);
// Mean row loss of a combination's N x C predictions.
double mean_loss(const Stack& s, const Matrix& combined, const Loss& loss);
// Mean row loss of each single model (K values).
Vector model_risks(const Stack& s, const Loss& loss);

// Row losses weighted by row weights (which sum to anything positive): sum_i r_i loss_i / sum_i r_i,
// and the gradient with respect to a constant weight vector w when `gradient` is given.
double weighted_constant_loss(const Stack& s, const Vector& row_weights, const Vector& w, const Loss& loss, Vector* gradient);
// Its Hessian with respect to w (K x K, positive semi-definite: every loss is convex in f).
Matrix weighted_constant_hessian(const Stack& s, const Vector& row_weights, const Vector& w, const Loss& loss);

}  // namespace caulk::avg
