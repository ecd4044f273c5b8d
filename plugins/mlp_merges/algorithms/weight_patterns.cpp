#include "mlp_merges/algorithms/weight_patterns.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "caulk/error.hpp"

namespace caulk::mlp_merges {

namespace {
std::uint8_t channel(double v) { return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0)); }
}  // namespace

Rgb diverging_colour(double t) {
  if (std::isnan(t)) return kMissing;
  t = std::clamp(t, -1.0, 1.0);
  constexpr double a = 0.0722 / (0.2126 + 0.7152);
  const double grey = 0.5 + 0.4 * t, chroma = 0.8 * t;
  return {channel(grey + chroma * a), channel(grey + chroma * a), channel(grey - chroma)};
}

std::pair<int, int> FirstLayerLayout::cell_origin(int unit, int input) const {
  if (square) {
    const int tile_row = unit / columns, tile_col = unit % columns;
    const int x0 = gap + tile_col * (side * cell + gap), y0 = gap + tile_row * (side * cell + gap);
    return {x0 + (input % side) * cell, y0 + (input / side) * cell};
  }
  return {gap + input * cell, gap + unit * cell};
}

FirstLayerLayout first_layer_layout(int units, int inputs, int cell) {
  if (units < 1 || inputs < 1 || cell < 1)
    throw Error(fmt::format("cannot lay out {} units of {} inputs at {} pixels", units, inputs, cell));
  FirstLayerLayout L;
  L.units = units;
  L.inputs = inputs;
  L.cell = cell;
  L.gap = std::max(1, cell / 2);
  L.legend = std::max(8, 2 * cell);
  const int s = static_cast<int>(std::lround(std::sqrt(double(inputs))));
  L.square = s >= 2 && s * s == inputs;
  if (L.square) {
    L.side = s;
    L.columns = static_cast<int>(std::ceil(std::sqrt(double(units))));
    L.rows = (units + L.columns - 1) / L.columns;
    L.width = L.gap + L.columns * (s * cell + L.gap);
    L.grid_height = L.gap + L.rows * (s * cell + L.gap);
  } else {
    L.columns = inputs;
    L.rows = units;
    L.width = 2 * L.gap + inputs * cell;
    L.grid_height = 2 * L.gap + units * cell;
  }
  L.height = L.grid_height + L.legend + L.gap;
  return L;
}

RgbImage render_first_layer(const mlp::Mat<float>& W, double vmax, int cell, int max_units, FirstLayerLayout* out_layout) {
  const int units = static_cast<int>(std::min<Eigen::Index>(W.rows(), std::max(1, max_units)));
  const FirstLayerLayout L = first_layer_layout(units, static_cast<int>(W.cols()), cell);
  if (!(vmax > 0)) vmax = 1;  // an all-zero layer: everything grey
  RgbImage img(L.width, L.height, kBackground);
  for (int k = 0; k < units; ++k)
    for (int j = 0; j < L.inputs; ++j) {
      const auto [x, y] = L.cell_origin(k, j);
      img.fill_rect(x, y, cell, cell, diverging_colour(double(W(k, j)) / vmax));
    }
  const int span = L.width - 2 * L.gap;
  for (int x = L.gap; x < L.width - L.gap; ++x)
    img.fill_rect(x, L.grid_height, 1, L.legend, diverging_colour(-1.0 + 2.0 * (x - L.gap + 0.5) / span));
  if (out_layout) *out_layout = L;
  return img;
}

RgbImage render_heat_map(const mlp::Mat<double>& t, int cell, int legend) {
  const int w = static_cast<int>(t.cols()) * cell, h = static_cast<int>(t.rows()) * cell;
  if (w <= 0 || h <= 0) throw Error("cannot draw an empty heat map");
  RgbImage img(w, h + legend, kBackground);
  for (Eigen::Index r = 0; r < t.rows(); ++r)
    for (Eigen::Index c = 0; c < t.cols(); ++c)
      img.fill_rect(static_cast<int>(c) * cell, static_cast<int>(r) * cell, cell, cell, diverging_colour(t(r, c)));
  for (int x = 0; x < w; ++x) img.fill_rect(x, h, 1, legend, diverging_colour(-1.0 + 2.0 * (x + 0.5) / w));
  return img;
}

mlp::Mat<double> cosine_similarity(const std::vector<const mlp::Mat<float>*>& tensors) {
  const auto K = static_cast<Eigen::Index>(tensors.size());
  mlp::Mat<double> out(K, K);
  for (Eigen::Index i = 0; i < K; ++i)
    for (Eigen::Index j = 0; j < K; ++j) {
      const auto& a = *tensors[i];
      const auto& b = *tensors[j];
      if (a.rows() != b.rows() || a.cols() != b.cols()) {
        out(i, j) = std::numeric_limits<double>::quiet_NaN();
        continue;
      }
      const double na = a.cast<double>().norm(), nb = b.cast<double>().norm();
      out(i, j) =
          na > 0 && nb > 0 ? a.cast<double>().cwiseProduct(b.cast<double>()).sum() / (na * nb) : std::numeric_limits<double>::quiet_NaN();
    }
  return out;
}

}  // namespace caulk::mlp_merges
