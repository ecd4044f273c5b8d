#include "mlp_merges/algorithms/png_image.hpp"

#include <fmt/format.h>
#include <png.h>

#include <csetjmp>

#include "caulk/error.hpp"
#include "caulk/io/atomic_file.hpp"

namespace caulk::mlp_merges {

RgbImage::RgbImage(int w, int h, Rgb fill) : width(w), height(h), pixels(static_cast<std::size_t>(w) * h * 3) {
  fill_rect(0, 0, w, h, fill);
}

void RgbImage::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  auto* p = &pixels[(static_cast<std::size_t>(y) * width + x) * 3];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

Rgb RgbImage::at(int x, int y) const {
  const auto* p = &pixels[(static_cast<std::size_t>(y) * width + x) * 3];
  return {p[0], p[1], p[2]};
}

void RgbImage::fill_rect(int x, int y, int w, int h, Rgb c) {
  for (int j = y; j < y + h; ++j)
    for (int i = x; i < x + w; ++i) set(i, j, c);
}

namespace {

struct Sink {
  std::string bytes;
  char error[256] = {0};
};

void append(png_structp png, png_bytep data, png_size_t size) {
  static_cast<Sink*>(png_get_io_ptr(png))->bytes.append(reinterpret_cast<const char*>(data), size);
}
void flush(png_structp) {}
void on_error(png_structp png, png_const_charp message) {
  auto* sink = static_cast<Sink*>(png_get_error_ptr(png));
  std::snprintf(sink->error, sizeof sink->error, "%s", message);
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

// libpng reports errors by longjmp: keep this frame free of objects with destructors.
bool encode(const RgbImage& image, const std::vector<png_text>& text, Sink& sink) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_error, on_warning);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, &sink, append, flush);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!text.empty()) png_set_text(png, info, const_cast<png_textp>(text.data()), static_cast<int>(text.size()));
  png_write_info(png, info);
  for (int y = 0; y < image.height; ++y)
    png_write_row(png, const_cast<png_bytep>(image.pixels.data() + static_cast<std::size_t>(y) * image.width * 3));
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

std::string encode_png(const RgbImage& image, const PngText& text) {
  if (image.width <= 0 || image.height <= 0 || image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * 3)
    throw Error(fmt::format("cannot encode a {}x{} image with {} bytes of pixels", image.width, image.height, image.pixels.size()));
  std::vector<png_text> chunks(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
    chunks[i].key = const_cast<char*>(text[i].first.c_str());
    chunks[i].text = const_cast<char*>(text[i].second.c_str());
    chunks[i].text_length = text[i].second.size();
  }
  Sink sink;
  if (!encode(image, chunks, sink))
    throw Error(fmt::format("libpng could not encode the image: {}", sink.error[0] ? sink.error : "out of memory"));
  return std::move(sink.bytes);
}

void write_png(const std::filesystem::path& path, const RgbImage& image, const PngText& text) {
  std::string bytes;
  try {
    bytes = encode_png(image, text);
  } catch (const Error& e) {
    throw DataError(path.string(), e.what());
  }
  io::write_file_atomic(path, bytes);
}

}  // namespace caulk::mlp_merges
