// Basis expansions phi(z) of the covariates for the softmax-linear weight function. Every basis
// starts with the intercept (column 0) and is fitted on the fitting split's z (standardisation,
// spline ranges, random frequencies), so that the same phi applies to new data.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "caulk/matrix.hpp"

namespace caulk::avg {

enum class BasisKind { Raw, Spline, Fourier };
BasisKind parse_basis(const std::string& name);  // raw, spline, fourier; throws Error listing them
std::string basis_name(BasisKind k);

struct Basis {
  BasisKind kind = BasisKind::Raw;
  // Standardisation u = (z - mean) / scale, fitted on the fitting split (scale 1 for a constant
  // column, whose u is then 0 on the fitting rows).
  Vector mean, scale;
  // spline: `knots` interior knots spread evenly over [lo_q, hi_q], the fitting range of u_q;
  // outside it the basis is held at its value at the nearest end.
  int knots = 0;
  Vector lo, hi;
  // fourier: sqrt(2 / D) cos(omega_d' u + phase_d), omega ~ N(0, I / bandwidth^2), phase ~ U[0, 2 pi).
  Matrix omega;  // Q x D
  Vector phase;  // D
  double bandwidth = 1;

  int inputs() const { return static_cast<int>(mean.size()); }
  int size() const;  // columns of phi, the intercept included
  // phi(z) for every row of z (N x Q): N x size().
  RowMatrix expand(const Matrix& z) const;

  nlohmann::ordered_json to_json() const;
  static Basis from_json(const nlohmann::ordered_json& j);  // throws Error on a malformed entry
};

// Standardisation of z's columns (for the MLP and kernel weight functions too).
void standardisation(const Matrix& z, Vector& mean, Vector& scale);

// `knots` (spline, >= 0), `features` and `bandwidth` (fourier) apply to their basis only.
Basis fit_basis(BasisKind kind, const Matrix& z, int knots, int features, double bandwidth, std::uint64_t seed);

// The cubic B-spline basis (knots + 4 functions) at x in [0, 1] with evenly spaced interior knots
// and boundary knots of multiplicity 4 (Cox-de Boor); they sum to 1.
void cubic_bspline(double x, int knots, double* out);

}  // namespace caulk::avg
