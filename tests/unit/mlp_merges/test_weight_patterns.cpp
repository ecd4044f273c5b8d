// Weight-pattern images: the PNG file decoded here with libpng's own reader, its size against the
// documented layout and its pixels against the documented colour formula (written out again here),
// for square tiles and for rows; the map's luma is 0.5 + 0.4 t (readable in grey scale); cosine
// similarity against a hand computation.
#include <gtest/gtest.h>
#include <png.h>

#include <cmath>

#include "merge_test_support.hpp"
#include "mlp_merges/algorithms/png_image.hpp"
#include "temp_dir.hpp"
#include "mlp_merges/algorithms/weight_patterns.hpp"

namespace caulk::mlp_merges {
namespace {

using mlp::Mat;

struct Decoded {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
  std::vector<std::pair<std::string, std::string>> text;
  Rgb at(int x, int y) const {
    const auto* p = &rgb[(static_cast<std::size_t>(y) * width + x) * 3];
    return {p[0], p[1], p[2]};
  }
};

// libpng's reader, independent of the writer under test.
Decoded decode(const std::filesystem::path& path) {
  Decoded d;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) ADD_FAILURE() << "cannot open " << path;
  if (!f) return d;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    ADD_FAILURE() << "libpng could not read " << path;
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(f);
    return d;
  }
  png_init_io(png, f);
  png_read_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  EXPECT_EQ(png_get_color_type(png, info), PNG_COLOR_TYPE_RGB);
  EXPECT_EQ(png_get_bit_depth(png, info), 8);
  d.width = static_cast<int>(png_get_image_width(png, info));
  d.height = static_cast<int>(png_get_image_height(png, info));
  png_bytepp rows = png_get_rows(png, info);
  for (int y = 0; y < d.height; ++y) d.rgb.insert(d.rgb.end(), rows[y], rows[y] + 3 * d.width);
  png_textp text = nullptr;
  int n = 0;
  png_get_text(png, info, &text, &n);
  for (int i = 0; i < n; ++i) d.text.emplace_back(text[i].key, text[i].text);
  png_destroy_read_struct(&png, &info, nullptr);
  std::fclose(f);
  return d;
}

// The documented colour of t, written out again: grey 0.5 + 0.4 t plus 0.8 t (a, a, -1).
Rgb expected_colour(double t) {
  t = std::max(-1.0, std::min(1.0, t));
  const double a = 0.0722 / (0.2126 + 0.7152);
  auto q = [](double v) { return static_cast<std::uint8_t>(std::lround(std::max(0.0, std::min(1.0, v)) * 255)); };
  return {q(0.5 + 0.4 * t + 0.8 * t * a), q(0.5 + 0.4 * t + 0.8 * t * a), q(0.5 + 0.4 * t - 0.8 * t)};
}

TEST(WeightPatterns, SquareTilesDecodeToTheDocumentedPixels) {
  caulk::testing::TempDir dir;
  // 4 units x 9 inputs: 3x3 tiles in a 2x2 grid; cell 2 => gap 1, legend 8.
  Mat<float> W(4, 9);
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 9; ++j) W(k, j) = float((k * 9 + j) % 7 - 3) * 0.25f;  // -0.75..0.75
  W(3, 8) = -1.5f;                                                             // the largest |w| (vmax below is 1.5)
  const auto file = dir / "w.png";
  write_png(file, render_first_layer(W, 1.5, 2, 64), {{"Title", "test"}});
  const Decoded d = decode(file);
  // width = gap + columns (side cell + gap) = 1 + 2 (3*2 + 1); height = grid + legend + gap.
  ASSERT_EQ(d.width, 15);
  ASSERT_EQ(d.height, 15 + 8 + 1);
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 9; ++j) {
      const int x0 = 1 + (k % 2) * 7 + (j % 3) * 2, y0 = 1 + (k / 2) * 7 + (j / 3) * 2;
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx) EXPECT_EQ(d.at(x0 + dx, y0 + dy), expected_colour(W(k, j) / 1.5)) << k << "," << j;
    }
  const Rgb darkest = d.at(1 + 7 + 2 * 2, 1 + 7 + 2 * 2);  // -vmax: dark blue
  EXPECT_LE(darkest.r, 10);
  EXPECT_GE(darkest.b, 229);
  EXPECT_EQ(d.at(0, 0), (Rgb{255, 255, 255}));  // margin
  EXPECT_EQ(d.at(7, 3), (Rgb{255, 255, 255}));  // gap between tiles
  // The legend runs from dark blue (left) to light yellow (right).
  EXPECT_EQ(d.at(1, 20), expected_colour(-1 + 2 * 0.5 / 13));
  EXPECT_EQ(d.at(13, 20), expected_colour(-1 + 2 * 12.5 / 13));
  ASSERT_EQ(d.text.size(), 1u);
  EXPECT_EQ(d.text[0].second, "test");
  // Written atomically: nothing but the file in the folder.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(WeightPatterns, NonSquareInputsAreRows) {
  caulk::testing::TempDir dir;
  Mat<float> W(3, 5);
  W << 0, 1, -1, 0.5f, -0.5f, 2, -2, 0, 0, 0, 0.25f, 0, 0, 0, 0;
  const auto file = dir / "rows.png";
  write_png(file, render_first_layer(W, 2.0, 3, 64));
  const Decoded d = decode(file);
  // cell 3 => gap 1, legend 8: width 2 + 5*3, height 2 + 3*3 + 8 + 1.
  ASSERT_EQ(d.width, 17);
  ASSERT_EQ(d.height, 20);
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 5; ++j) EXPECT_EQ(d.at(1 + 3 * j + 1, 1 + 3 * k + 1), expected_colour(W(k, j) / 2.0)) << k << "," << j;
  EXPECT_EQ(d.at(1 + 1, 1 + 1), (Rgb{128, 128, 128}));  // zero: mid grey
  // max_units keeps the first units only.
  write_png(file, render_first_layer(W, 2.0, 3, 2));
  EXPECT_EQ(decode(file).height, 2 + 2 * 3 + 8 + 1);
}

TEST(WeightPatterns, TheColourMapsLumaIsLinearInTheValue) {
  for (int i = -20; i <= 20; ++i) {
    const double t = i / 20.0;
    const Rgb c = diverging_colour(t);
    const double luma = (0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b) / 255;
    EXPECT_NEAR(luma, 0.5 + 0.4 * t, 1.0 / 255) << t;
    if (t < 0) {
      EXPECT_GT(c.b, c.r) << t;  // negative: blue
    }
    if (t > 0) {
      EXPECT_GT(c.r, c.b) << t;  // positive: yellow
    }
  }
  EXPECT_EQ(diverging_colour(std::nan("")), (Rgb{0, 0, 0}));
  EXPECT_EQ(diverging_colour(7.0), diverging_colour(1.0));
}

TEST(WeightPatterns, CosineSimilarityIsTheHandComputation) {
  Mat<float> a(2, 2), b(2, 2), c(3, 1), z = Mat<float>::Zero(2, 2);
  a << 1, 2, 3, 4;
  b << -1, 0, 2, 1;
  c << 1, 1, 1;
  const Mat<double> s = cosine_similarity({&a, &b, &c, &z});
  const double ab = (1 * -1 + 2 * 0 + 3 * 2 + 4 * 1) / (std::sqrt(30.0) * std::sqrt(6.0));
  EXPECT_NEAR(s(0, 1), ab, 1e-12);
  EXPECT_NEAR(s(1, 0), ab, 1e-12);
  EXPECT_NEAR(s(0, 0), 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(s(0, 2)));  // shapes differ
  EXPECT_TRUE(std::isnan(s(3, 0)));  // zero tensor
}

TEST(WeightPatterns, HeatMapCellsAndMissingValues) {
  caulk::testing::TempDir dir;
  Mat<double> t(2, 3);
  t << -1, 0, 1, 0.5, std::nan(""), -0.25;
  write_png(dir / "h.png", render_heat_map(t, 4, 6));
  const Decoded d = decode(dir / "h.png");
  ASSERT_EQ(d.width, 12);
  ASSERT_EQ(d.height, 8 + 6);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) {
      const Rgb want = std::isnan(t(r, c)) ? Rgb{0, 0, 0} : expected_colour(t(r, c));
      EXPECT_EQ(d.at(4 * c + 2, 4 * r + 2), want) << r << "," << c;
    }
}

}  // namespace
}  // namespace caulk::mlp_merges
