#include "averagers/algorithms/basis.hpp"

#include <fmt/format.h>

#include <cmath>

#include "averagers/algorithms/streams.hpp"
#include "caulk/error.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::avg {

BasisKind parse_basis(const std::string& name) {
  if (name == "raw") return BasisKind::Raw;
  if (name == "spline") return BasisKind::Spline;
  if (name == "fourier") return BasisKind::Fourier;
  throw Error(fmt::format("unknown basis '{}' (known: raw, spline, fourier)", name));
}

std::string basis_name(BasisKind k) {
  switch (k) {
    case BasisKind::Raw:
      return "raw";
    case BasisKind::Spline:
      return "spline";
    case BasisKind::Fourier:
      return "fourier";
  }
  return "?";
}

void standardisation(const Matrix& z, Vector& mean, Vector& scale) {
  const double n = static_cast<double>(z.rows());
  mean = z.colwise().mean().transpose();
  scale.resize(z.cols());
  for (Eigen::Index q = 0; q < z.cols(); ++q) {
    const double sd = std::sqrt((z.col(q).array() - mean(q)).square().sum() / std::max(n, 1.0));
    scale(q) = sd > 1e-12 * (1 + std::abs(mean(q))) ? sd : 1.0;
  }
}

void cubic_bspline(double x, int knots, double* out) {
  const int n = knots + 4;
  for (int i = 0; i < n; ++i) out[i] = 0;
  // Knot t_i: 0 for i <= 3, (i - 3) / (knots + 1) for 3 < i < knots + 4, 1 beyond.
  auto t = [&](int i) { return i <= 3 ? 0.0 : (i >= knots + 4 ? 1.0 : double(i - 3) / (knots + 1)); };
  x = std::min(std::max(x, 0.0), 1.0);
  int span = 3 + std::min(static_cast<int>(std::floor(x * (knots + 1))), knots);  // t_span <= x < t_span+1
  double N[4] = {1, 0, 0, 0}, left[4] = {0, 0, 0, 0}, right[4] = {0, 0, 0, 0};
  for (int r = 1; r <= 3; ++r) {
    left[r] = x - t(span + 1 - r);
    right[r] = t(span + r) - x;
    double saved = 0;
    for (int s = 0; s < r; ++s) {
      const double temp = N[s] / (right[s + 1] + left[r - s]);
      N[s] = saved + right[s + 1] * temp;
      saved = left[r - s] * temp;
    }
    N[r] = saved;
  }
  for (int r = 0; r <= 3; ++r) out[span - 3 + r] = N[r];
}

int Basis::size() const {
  const int Q = inputs();
  switch (kind) {
    case BasisKind::Raw:
      return 1 + Q;
    case BasisKind::Spline:
      return 1 + Q * (knots + 4);
    case BasisKind::Fourier:
      return 1 + static_cast<int>(phase.size());
  }
  return 1;
}

RowMatrix Basis::expand(const Matrix& z) const {
  if (z.cols() != inputs())
    throw Error(fmt::format("the covariates have {} columns but the weight function was fitted on {}", z.cols(), inputs()));
  const Eigen::Index N = z.rows();
  RowMatrix phi(N, size());
  phi.col(0).setOnes();
  Matrix u(N, z.cols());
  for (Eigen::Index q = 0; q < z.cols(); ++q) u.col(q) = (z.col(q).array() - mean(q)) / scale(q);
  switch (kind) {
    case BasisKind::Raw:
      phi.rightCols(z.cols()) = u;
      break;
    case BasisKind::Spline: {
      const int per = knots + 4;
      for (Eigen::Index q = 0; q < z.cols(); ++q) {
        const double width = hi(q) - lo(q);
        for (Eigen::Index i = 0; i < N; ++i) {
          double* row = phi.row(i).data() + 1 + q * per;
          if (width <= 0) {
            for (int b = 0; b < per; ++b) row[b] = 0;  // a constant column carries no information
          } else {
            cubic_bspline((u(i, q) - lo(q)) / width, knots, row);
          }
        }
      }
      break;
    }
    case BasisKind::Fourier: {
      const double amplitude = std::sqrt(2.0 / static_cast<double>(phase.size()));
      Matrix proj = u * omega;
      proj.rowwise() += phase.transpose();
      phi.rightCols(phase.size()) = amplitude * proj.array().cos();
      break;
    }
  }
  return phi;
}

Basis fit_basis(BasisKind kind, const Matrix& z, int knots, int features, double bandwidth, std::uint64_t seed) {
  if (z.rows() == 0 || z.cols() == 0) throw Error("the covariates are empty");
  Basis b;
  b.kind = kind;
  standardisation(z, b.mean, b.scale);
  const Eigen::Index Q = z.cols();
  if (kind == BasisKind::Spline) {
    if (knots < 0) throw Error("a spline basis needs knots >= 0");
    b.knots = knots;
    b.lo.resize(Q);
    b.hi.resize(Q);
    for (Eigen::Index q = 0; q < Q; ++q) {
      const auto u = (z.col(q).array() - b.mean(q)) / b.scale(q);
      b.lo(q) = u.minCoeff();
      b.hi(q) = u.maxCoeff();
    }
  } else if (kind == BasisKind::Fourier) {
    if (features < 1) throw Error("a Fourier basis needs features >= 1");
    if (!(bandwidth > 0)) throw Error("a Fourier basis needs a positive bandwidth");
    b.bandwidth = bandwidth;
    seeding::SeededUniform rng(seeding::derive_seed(seed, kFourierFrequencies));
    auto uniform01 = [&] { return 0.5 * (rng.next(1.0) + 1.0); };
    auto normal = [&] {  // Box-Muller, one value per pair (simple and platform-independent)
      double a = 0;
      while (a <= 0) a = uniform01();
      return std::sqrt(-2 * std::log(a)) * std::cos(2 * M_PI * uniform01());
    };
    b.omega.resize(Q, features);
    for (Eigen::Index d = 0; d < features; ++d)
      for (Eigen::Index q = 0; q < Q; ++q) b.omega(q, d) = normal() / bandwidth;
    b.phase.resize(features);
    for (Eigen::Index d = 0; d < features; ++d) b.phase(d) = 2 * M_PI * uniform01();
  }
  return b;
}

namespace {

nlohmann::ordered_json vector_json(const Vector& v) { return std::vector<double>(v.data(), v.data() + v.size()); }

Vector json_vector(const nlohmann::ordered_json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_array()) throw Error(fmt::format("the basis entry '{}' is missing or not an array", key));
  const auto values = j[key].get<std::vector<double>>();
  return Eigen::Map<const Vector>(values.data(), static_cast<Eigen::Index>(values.size()));
}

}  // namespace

nlohmann::ordered_json Basis::to_json() const {
  nlohmann::ordered_json j;
  j["kind"] = basis_name(kind);
  j["mean"] = vector_json(mean);
  j["scale"] = vector_json(scale);
  if (kind == BasisKind::Spline) {
    j["knots"] = knots;
    j["lo"] = vector_json(lo);
    j["hi"] = vector_json(hi);
  } else if (kind == BasisKind::Fourier) {
    j["bandwidth"] = bandwidth;
    // omega row by row (Q rows of D frequencies).
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (Eigen::Index q = 0; q < omega.rows(); ++q) rows.push_back(vector_json(omega.row(q).transpose()));
    j["omega"] = rows;
    j["phase"] = vector_json(phase);
  }
  return j;
}

Basis Basis::from_json(const nlohmann::ordered_json& j) {
  Basis b;
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string()) throw Error("the basis has no 'kind'");
  b.kind = parse_basis(j["kind"].get<std::string>());
  b.mean = json_vector(j, "mean");
  b.scale = json_vector(j, "scale");
  if (b.scale.size() != b.mean.size()) throw Error("the basis' mean and scale differ in length");
  const Eigen::Index Q = b.mean.size();
  if (b.kind == BasisKind::Spline) {
    if (!j.contains("knots") || !j["knots"].is_number_integer() || j["knots"].get<int>() < 0)
      throw Error("the spline basis needs an integer 'knots' >= 0");
    b.knots = j["knots"].get<int>();
    b.lo = json_vector(j, "lo");
    b.hi = json_vector(j, "hi");
    if (b.lo.size() != Q || b.hi.size() != Q) throw Error("the spline basis' ranges do not match its covariates");
  } else if (b.kind == BasisKind::Fourier) {
    b.phase = json_vector(j, "phase");
    if (!j.contains("omega") || !j["omega"].is_array() || static_cast<Eigen::Index>(j["omega"].size()) != Q)
      throw Error("the Fourier basis needs 'omega' with one row per covariate");
    b.omega.resize(Q, b.phase.size());
    for (Eigen::Index q = 0; q < Q; ++q) {
      const auto row = j["omega"][static_cast<std::size_t>(q)].get<std::vector<double>>();
      if (static_cast<Eigen::Index>(row.size()) != b.phase.size()) throw Error("the Fourier basis' omega and phase differ in size");
      for (Eigen::Index d = 0; d < b.phase.size(); ++d) b.omega(q, d) = row[static_cast<std::size_t>(d)];
    }
    b.bandwidth = j.value("bandwidth", 1.0);
  }
  return b;
}

}  // namespace caulk::avg
