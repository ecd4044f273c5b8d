// Weight patterns a person can look at (methods.md section 3; paper 3, perspective 1): first-layer
// weights rendered per unit, and per-layer heat maps of the cosine similarity between models'
// weights and of their norms.
//
// The colour map (one for every image): t in [-1, 1] (clamped) maps linearly to
//   RGB(t) = (0.5 + 0.4 t) (1, 1, 1) + 0.8 t (a, a, -1),  a = 0.0722 / (0.2126 + 0.7152),
// a straight line from dark blue (t = -1) through mid grey (t = 0) to light yellow (t = 1), each
// channel rounded to 8 bits. The direction (a, a, -1) has zero Rec. 709 luma, so the luma of
// RGB(t) is exactly 0.5 + 0.4 t: a grey-scale print keeps the order (dark = negative, light =
// positive), and blue versus yellow keeps it for readers who cannot tell red from green. A cell
// whose value is not a number is black (0, 0, 0), which the map never produces.
#pragma once
#include <string>
#include <vector>

#include "caulk/mlp/mlp.hpp"
#include "mlp_merges/algorithms/png_image.hpp"

namespace caulk::mlp_merges {

Rgb diverging_colour(double t);
inline const Rgb kMissing{0, 0, 0};
inline const Rgb kBackground{255, 255, 255};

// The layout of a first-layer image (every length in pixels):
//   square tiles, when the input dimension P = s * s with s >= 2: unit k's weights form an s x s
//   tile (input j at tile row j / s, column j % s, i.e. row-major as an image is stored), tiles
//   in a grid of ceil(sqrt(U)) columns, in unit order row by row, `gap` pixels of white between
//   and around tiles;
//   rows, otherwise: unit k is image row k, input j column j, with `gap` pixels of white around.
//   Every weight is a `cell` x `cell` square. Below the grid, a legend strip `legend` pixels high
//   spans the grid's width inside the margins: pixel column x shows t = -1 + 2 (x - gap + 0.5) /
//   (width - 2 gap), then a white margin of `gap`. The weight w is drawn as RGB(w / vmax).
struct FirstLayerLayout {
  bool square = false;
  int side = 0;  // s, when square
  int units = 0, inputs = 0, columns = 0, rows = 0;
  int cell = 4, gap = 1, legend = 8;
  int width = 0, grid_height = 0, height = 0;
  // The top-left pixel of the cell of unit k, input j.
  std::pair<int, int> cell_origin(int unit, int input) const;
};
FirstLayerLayout first_layer_layout(int units, int inputs, int cell);

// W is units x inputs (layers.0.weight); the first min(units, max_units) units are drawn.
RgbImage render_first_layer(const mlp::Mat<float>& W, double vmax, int cell, int max_units, FirstLayerLayout* layout = nullptr);

// A heat map of a matrix: value (r, c) is a cell x cell square at (c cell, r cell) drawn as
// RGB(t(r, c)), NaN black; below, a legend strip `legend` pixels high over the full width (pixel
// column x shows t = -1 + 2 (x + 0.5) / width). `t` is the value already mapped to [-1, 1].
RgbImage render_heat_map(const mlp::Mat<double>& t, int cell, int legend);

// Cosine similarity between the flattened tensors (K x K); NaN where the shapes differ or a
// tensor is all zero.
mlp::Mat<double> cosine_similarity(const std::vector<const mlp::Mat<float>*>& tensors);

}  // namespace caulk::mlp_merges
