// Input-dependent model weights w(z) on the simplex (docs/averaging.md), their training
// objectives with gradients, and their file format.
//
//   softmax_linear: w(z) = softmax(Theta phi(z)), Theta K x B over a basis phi (basis.hpp);
//   mlp:            w(z) = softmax(W2 tanh(W1 u + b1) + b2), u the standardised z (the models
//                   family's MLP runtime, one hidden layer);
//   kernel:         w(z0) = argmin over the simplex of sum_i k_h(u_i, u0) loss_i(w), the
//                   kernel-weighted loss of the fitting rows around z0 (Gaussian kernel on u).
//
// The parametric objectives are the mean row loss of the combination plus a ridge penalty:
// lambda on every weight (Theta's non-intercept columns; W1 and W2) and lambda0 on the intercepts
// (Theta's column 0; b1 and b2), which keeps them finite when a model's best weight is 0.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "averagers/algorithms/basis.hpp"
#include "averagers/algorithms/combination.hpp"
#include "caulk/mlp/mlp.hpp"

namespace caulk::avg {

enum class WeightFunctionKind { SoftmaxLinear, Mlp, Kernel };
WeightFunctionKind parse_weight_function(const std::string& name);  // softmax_linear, mlp, kernel
std::string weight_function_name(WeightFunctionKind k);

inline constexpr const char* kWeightFunctionFormat = "caulk.local_average";

struct WeightFunction {
  WeightFunctionKind kind = WeightFunctionKind::SoftmaxLinear;
  std::vector<std::string> models;  // the K models, in the order of the weights' columns
  TaskKind task = TaskKind::Regression;
  int outputs = 1;  // C
  Loss loss;        // the loss it was fitted under (the kernel needs it to evaluate)
  double penalty = 0;

  Basis basis;   // softmax_linear
  Matrix theta;  // softmax_linear: K x B

  Vector mean, scale;      // mlp and kernel: the standardisation of z
  mlp::Model<double> net;  // mlp

  double bandwidth = 0;  // kernel, on the standardised scale
  Matrix fit_u;          // kernel: the fitting rows' standardised z, N x Q
  Stack fit_stack;       // kernel: the fitting rows' predictions and truth

  int inputs() const;  // Q
  // w(z) for every row of z (N x Q): N x K, each row on the simplex.
  Matrix weights(const Matrix& z) const;

  nlohmann::ordered_json to_json() const;
  static WeightFunction from_json(const nlohmann::ordered_json& j);  // throws Error on a malformed file
  // JSON (full double precision), written atomically.
  void save(const std::filesystem::path& file, const nlohmann::ordered_json& extra = {}) const;
  // Throws DataError naming the file.
  static WeightFunction load(const std::filesystem::path& file, nlohmann::ordered_json* extra = nullptr);
};

// Row-wise softmax, stable.
Matrix softmax_rows(const Matrix& logits);

// Mean row loss of the combination with W = softmax(phi Theta') plus the penalty; theta holds
// Theta (K x B) column-major. With `gradient`, its gradient (same layout). Computed by blocks of
// rows in parallel on the current pool, summed in block order (deterministic for any width).
double softmax_linear_objective(const Stack& s, const RowMatrix& phi, const Loss& loss, double lambda, double lambda0, const Vector& theta,
                                Vector* gradient);

// The MLP weight function's parameters flattened in parameters() order, and back.
Vector flatten(const mlp::Model<double>& net);
void unflatten(const Vector& theta, mlp::Model<double>& net);
// A one-hidden-layer net Q -> hidden (tanh) -> K (softmax); W1, b1 uniform in +-1/sqrt(Q)
// (seeded), W2 = 0 and b2 = 0 so that it starts at equal weights.
mlp::Model<double> make_weight_net(int Q, int hidden, int K, std::uint64_t seed);
// Mean row loss of the combination with W = net(u) plus the penalty, at parameters theta;
// u_by_column is Q x N (standardised z).
double mlp_objective(const Stack& s, const Matrix& u_by_column, const Loss& loss, double lambda, double lambda0,
                     const mlp::Model<double>& shape, const Vector& theta, Vector* gradient);

// The kernel weights at the rows of `at_u` (standardised), from every fitting row (fit_u, fit):
// each row of the result solves fit_constant_weights with Gaussian row weights
// exp(-(d_i^2 - min_j d_j^2) / (2 h^2)), d_i the distance from the fitting row i (the shift by the
// nearest row keeps the weights from vanishing far from the data; it does not change the argmin).
Matrix kernel_weights(const Stack& fit, const Matrix& fit_u, const Matrix& at_u, double bandwidth, const Loss& loss);

}  // namespace caulk::avg
