#include "averagers/algorithms/weight_function.hpp"

#include <cblas.h>

#include <fmt/format.h>

#include <cmath>

#include "averagers/algorithms/simplex.hpp"
#include "averagers/algorithms/streams.hpp"
#include "caulk/error.hpp"
#include "caulk/mlp/backprop.hpp"
#include "caulk/parallel.hpp"
#include "caulk/seeding/seeding.hpp"
#include "caulk/json.hpp"

namespace caulk::avg {

WeightFunctionKind parse_weight_function(const std::string& name) {
  if (name == "softmax_linear") return WeightFunctionKind::SoftmaxLinear;
  if (name == "mlp") return WeightFunctionKind::Mlp;
  if (name == "kernel") return WeightFunctionKind::Kernel;
  throw Error(fmt::format("unknown weight function '{}' (known: softmax_linear, mlp, kernel)", name));
}

std::string weight_function_name(WeightFunctionKind k) {
  switch (k) {
    case WeightFunctionKind::SoftmaxLinear:
      return "softmax_linear";
    case WeightFunctionKind::Mlp:
      return "mlp";
    case WeightFunctionKind::Kernel:
      return "kernel";
  }
  return "?";
}

Matrix softmax_rows(const Matrix& logits) {
  Matrix w(logits.rows(), logits.cols());
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    const double top = logits.row(i).maxCoeff();
    w.row(i) = (logits.row(i).array() - top).exp();
    w.row(i) /= w.row(i).sum();
  }
  return w;
}

namespace {

// Rows per block of the parallel objectives: a fixed size, so the summation order (and the
// numbers) never depend on the pool's width.
constexpr Eigen::Index kBlockRows = 2048;

// Given the weights w (K) of row i, returns the row's loss and writes d loss / d logits into
// `dlogit` (the softmax's Jacobian applied to s_k = <d loss / d f, F_ik>). `f` and `g` are C-sized
// scratch.
inline double row_loss_and_logit_gradient(const Stack& s, Eigen::Index i, const double* w, const Loss& loss, double* f, double* g,
                                          double* dlogit) {
  const int K = s.K, C = s.C;
  const double* Fi = s.F.row(i).data();
  for (int c = 0; c < C; ++c) f[c] = 0;
  for (int k = 0; k < K; ++k) {
    const double wk = w[k];
    const double* Fik = Fi + k * C;
    for (int c = 0; c < C; ++c) f[c] += wk * Fik[c];
  }
  const double* y = s.kind == TaskKind::Regression ? s.Y.row(i).data() : nullptr;
  const int cls = s.kind == TaskKind::Classification ? s.classes[static_cast<std::size_t>(i)] : 0;
  const double value = loss.row(f, y, cls, C, g);
  double mean_s = 0;
  for (int k = 0; k < K; ++k) {
    const double* Fik = Fi + k * C;
    double sk = 0;
    for (int c = 0; c < C; ++c) sk += g[c] * Fik[c];
    dlogit[k] = sk;
    mean_s += w[k] * sk;
  }
  for (int k = 0; k < K; ++k) dlogit[k] = w[k] * (dlogit[k] - mean_s);
  return value;
}

// The squared-loss row loop of a block over raw arrays (rows of F: K C values; of Y: C; of the
// weights W and the logit gradients D: K), compiled for AVX2 and FMA too and chosen at run time
// (GCC's target_clones), since caulk is built for the baseline x86-64. Returns the sum of the
// rows' losses.
__attribute__((target_clones("arch=haswell", "default"))) double squared_block_kernel(long n, int K, int C, const double* F,
                                                                                      const double* Y, const double* W, double* D) {
  double total = 0;
  double f[64], g[64];
  const double scale = 2.0 / C;
  for (long i = 0; i < n; ++i) {
    const double* Fi = F + i * K * C;
    const double* y = Y + i * C;
    const double* w = W + i * K;
    double* d = D + i * K;
    for (int c = 0; c < C; ++c) f[c] = 0;
    for (int k = 0; k < K; ++k)
      for (int c = 0; c < C; ++c) f[c] += w[k] * Fi[k * C + c];
    double value = 0;
    for (int c = 0; c < C; ++c) {
      const double r = f[c] - y[c];
      value += r * r;
      g[c] = scale * r;
    }
    total += value / C;
    double mean_s = 0;
    for (int k = 0; k < K; ++k) {
      double sk = 0;
      for (int c = 0; c < C; ++c) sk += g[c] * Fi[k * C + c];
      d[k] = sk;
      mean_s += w[k] * sk;
    }
    for (int k = 0; k < K; ++k) d[k] = w[k] * (d[k] - mean_s);
  }
  return total;
}

inline bool squared_regression(const Stack& s, const Loss& loss) {
  return loss.kind == LossKind::Squared && s.kind == TaskKind::Regression;
}

}  // namespace

double softmax_linear_objective(const Stack& s, const RowMatrix& phi, const Loss& loss, double lambda, double lambda0, const Vector& theta,
                                Vector* gradient) {
  const Eigen::Index N = s.F.rows(), B = phi.cols(), K = s.K;
  if (phi.rows() != N || theta.size() != K * B) throw Error("internal: softmax_linear_objective shapes differ");
  const Eigen::Map<const Matrix> Theta(theta.data(), K, B);
  const std::size_t blocks = static_cast<std::size_t>((N + kBlockRows - 1) / kBlockRows);
  std::vector<double> values(blocks, 0.0);
  std::vector<Matrix> grads(gradient ? blocks : 0);
  caulk::parallel_for(blocks, [&](std::size_t b) {
    const Eigen::Index first = static_cast<Eigen::Index>(b) * kBlockRows, n = std::min(kBlockRows, N - first);
    // Logits A = phi_block Theta' (n x K, row-major), then the row-wise softmax over the whole
    // block at once (Eigen's vectorised exp). Theta (K x B, column-major) is Theta' row-major.
    const double* phi_block = phi.row(first).data();
    RowMatrix A(n, K);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(K), static_cast<int>(B), 1.0, phi_block,
                static_cast<int>(B), theta.data(), static_cast<int>(K), 0.0, A.data(), static_cast<int>(K));
    A.colwise() -= A.rowwise().maxCoeff();
    A = A.array().exp();
    A.array().colwise() /= A.rowwise().sum().array();
    RowMatrix D(n, K);
    std::vector<double> f(static_cast<std::size_t>(s.C)), g(static_cast<std::size_t>(s.C));
    double total = 0;
    if (squared_regression(s, loss) && s.C <= 64) {
      total = squared_block_kernel(n, static_cast<int>(K), s.C, s.F.row(first).data(), s.Y.row(first).data(), A.data(), D.data());
    } else {
      for (Eigen::Index i = 0; i < n; ++i)
        total += row_loss_and_logit_gradient(s, first + i, A.row(i).data(), loss, f.data(), g.data(), D.row(i).data());
    }
    values[b] = total;
    if (gradient) {
      // G = D' phi_block (K x B column-major), computed as its transpose phi_block' D (B x K row-major).
      grads[b].resize(K, B);
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(B), static_cast<int>(K), static_cast<int>(n), 1.0, phi_block,
                  static_cast<int>(B), D.data(), static_cast<int>(K), 0.0, grads[b].data(), static_cast<int>(K));
    }
  });
  double value = 0;
  for (double v : values) value += v;
  value /= static_cast<double>(N);
  value += lambda * Theta.rightCols(B - 1).squaredNorm() + lambda0 * Theta.col(0).squaredNorm();
  if (gradient) {
    Matrix G = Matrix::Zero(K, B);
    for (const auto& g : grads) G += g;
    G /= static_cast<double>(N);
    G.rightCols(B - 1) += 2 * lambda * Theta.rightCols(B - 1);
    G.col(0) += 2 * lambda0 * Theta.col(0);
    *gradient = Eigen::Map<const Vector>(G.data(), K * B);
  }
  return value;
}

Vector flatten(const mlp::Model<double>& net) {
  std::vector<double> out;
  for (const auto& p : mlp::parameters(net)) out.insert(out.end(), p.data, p.data + p.size());
  return Eigen::Map<const Vector>(out.data(), static_cast<Eigen::Index>(out.size()));
}

void unflatten(const Vector& theta, mlp::Model<double>& net) {
  Eigen::Index at = 0;
  for (auto& p : mlp::parameters(net)) {
    if (at + static_cast<Eigen::Index>(p.size()) > theta.size()) throw Error("internal: too few MLP parameters");
    std::copy(theta.data() + at, theta.data() + at + static_cast<Eigen::Index>(p.size()), p.data);
    at += static_cast<Eigen::Index>(p.size());
  }
  if (at != theta.size()) throw Error("internal: too many MLP parameters");
}

mlp::Model<double> make_weight_net(int Q, int hidden, int K, std::uint64_t seed) {
  mlp::Model<double> net;
  net.activation = mlp::Activation::Tanh;
  net.output = mlp::Output::Softmax;
  net.feature_layer = 0;
  seeding::SeededUniform init(seeding::derive_seed(seed, kWeightNetInit));
  mlp::Dense<double> first{mlp::Mat<double>(hidden, Q), mlp::Vec<double>(hidden)};
  const double bound = 1 / std::sqrt(static_cast<double>(Q));
  for (Eigen::Index j = 0; j < first.W.cols(); ++j)
    for (Eigen::Index i = 0; i < first.W.rows(); ++i) first.W(i, j) = init.next(bound);
  for (Eigen::Index i = 0; i < first.b.size(); ++i) first.b(i) = init.next(bound);
  net.layers.push_back(std::move(first));
  net.layers.push_back({mlp::Mat<double>::Zero(K, hidden), mlp::Vec<double>::Zero(K)});
  mlp::validate(net);
  return net;
}

double mlp_objective(const Stack& s, const Matrix& u_by_column, const Loss& loss, double lambda, double lambda0,
                     const mlp::Model<double>& shape, const Vector& theta, Vector* gradient) {
  mlp::Model<double> net = shape;
  unflatten(theta, net);
  const Eigen::Index N = s.F.rows(), K = s.K;
  const std::size_t blocks = static_cast<std::size_t>((N + kBlockRows - 1) / kBlockRows);
  std::vector<double> values(blocks, 0.0);
  std::vector<Vector> grads(gradient ? blocks : 0);
  caulk::parallel_for(blocks, [&](std::size_t b) {
    const Eigen::Index first = static_cast<Eigen::Index>(b) * kBlockRows, n = std::min(kBlockRows, N - first);
    mlp::Trace<double> trace;
    const mlp::Mat<double> W = mlp::forward<double>(net, u_by_column.middleCols(first, n), gradient ? &trace : nullptr);  // K x n
    mlp::Mat<double> dz(K, n);
    std::vector<double> f(static_cast<std::size_t>(s.C)), g(static_cast<std::size_t>(s.C));
    double total = 0;
    for (Eigen::Index i = 0; i < n; ++i)
      total += row_loss_and_logit_gradient(s, first + i, W.col(i).data(), loss, f.data(), g.data(), dz.col(i).data());
    values[b] = total;
    if (gradient) {
      mlp::Model<double> grad = mlp::zeros_like(net);
      mlp::backward<double>(net, trace, dz, {}, grad);
      grads[b] = flatten(grad);
    }
  });
  double value = 0;
  for (double v : values) value += v;
  value /= static_cast<double>(N);
  if (gradient) {
    *gradient = Vector::Zero(theta.size());
    for (const auto& g : grads) *gradient += g;
    *gradient /= static_cast<double>(N);
  }
  Eigen::Index at = 0;
  for (const auto& p : mlp::parameters(net)) {
    const double strength = p.is_bias ? lambda0 : lambda;
    const auto size = static_cast<Eigen::Index>(p.size());
    value += strength * theta.segment(at, size).squaredNorm();
    if (gradient) gradient->segment(at, size) += 2 * strength * theta.segment(at, size);
    at += size;
  }
  return value;
}

Matrix kernel_weights(const Stack& fit, const Matrix& fit_u, const Matrix& at_u, double bandwidth, const Loss& loss) {
  if (!(bandwidth > 0)) throw Error("the kernel weight function needs a positive bandwidth");
  if (fit_u.cols() != at_u.cols()) throw Error("internal: kernel covariates differ in columns");
  Matrix out(at_u.rows(), fit.K);
  caulk::parallel_for(static_cast<std::size_t>(at_u.rows()), [&](std::size_t a) {
    const Eigen::Index row = static_cast<Eigen::Index>(a);
    const Vector d2 = (fit_u.rowwise() - at_u.row(row)).rowwise().squaredNorm();
    const Vector r = (-(d2.array() - d2.minCoeff()) / (2 * bandwidth * bandwidth)).exp().matrix();
    out.row(row) = fit_constant_weights(fit, loss, r).w.transpose();
  });
  return out;
}

int WeightFunction::inputs() const {
  switch (kind) {
    case WeightFunctionKind::SoftmaxLinear:
      return basis.inputs();
    case WeightFunctionKind::Mlp:
    case WeightFunctionKind::Kernel:
      return static_cast<int>(mean.size());
  }
  return 0;
}

Matrix WeightFunction::weights(const Matrix& z) const {
  if (z.cols() != inputs())
    throw Error(fmt::format("the covariates have {} columns but the weight function was fitted on {}", z.cols(), inputs()));
  if (kind == WeightFunctionKind::SoftmaxLinear) return softmax_rows(basis.expand(z) * theta.transpose());
  Matrix u(z.rows(), z.cols());
  for (Eigen::Index q = 0; q < z.cols(); ++q) u.col(q) = (z.col(q).array() - mean(q)) / scale(q);
  if (kind == WeightFunctionKind::Mlp) {
    Matrix out(z.rows(), static_cast<Eigen::Index>(models.size()));
    const Matrix ut = u.transpose();
    const std::size_t blocks = static_cast<std::size_t>((z.rows() + kBlockRows - 1) / kBlockRows);
    caulk::parallel_for(blocks, [&](std::size_t b) {
      const Eigen::Index first = static_cast<Eigen::Index>(b) * kBlockRows, n = std::min(kBlockRows, z.rows() - first);
      out.middleRows(first, n) = mlp::forward<double>(net, ut.middleCols(first, n)).transpose();
    });
    return out;
  }
  return kernel_weights(fit_stack, fit_u, u, bandwidth, loss);
}

}  // namespace caulk::avg
