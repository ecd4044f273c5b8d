// 8-bit RGB images written as PNG with libpng, atomically (encoded in memory, then written to a
// temporary file and renamed), with tEXt chunks that say what the image shows and its scale.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace caulk::mlp_merges {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

struct RgbImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, 3 bytes per pixel

  RgbImage() = default;
  RgbImage(int w, int h, Rgb fill);
  void set(int x, int y, Rgb c);
  Rgb at(int x, int y) const;
  void fill_rect(int x, int y, int w, int h, Rgb c);
};

using PngText = std::vector<std::pair<std::string, std::string>>;  // keyword, text (Latin-1)

// The PNG file's bytes. Throws caulk::Error with libpng's message on failure.
std::string encode_png(const RgbImage& image, const PngText& text = {});
// Encodes and writes atomically; throws DataError naming the file.
void write_png(const std::filesystem::path& path, const RgbImage& image, const PngText& text = {});

}  // namespace caulk::mlp_merges
