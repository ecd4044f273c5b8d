// Image preprocessing as torchvision users know it (docs/datasets.md, "Image folders"): decode a
// PNG or JPEG, resize the shorter side, center crop, scale to [0, 1], normalise per channel, and
// lay the result out as a C x H x W float32 tensor. Plain functions over bytes, with no knowledge
// of files or the graph; problems are thrown as caulk::Error with what is wrong (the caller names
// the file).
//
// Decoding and resizing run on OpenCV, whose image codecs load about 140 shared libraries (GDAL,
// Poppler, HDF5, ...): they live in libcaulk_images_opencv.so (libs/images_opencv), which
// decode_and_preprocess loads with dlopen on first use, so a process that reads no image (every
// `caulk check`, most runs) does not pay for loading them.
#pragma once
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace caulk::images {

enum class Interpolation {
  Bilinear,  // cv::INTER_LINEAR: the 2 x 2 neighbours, half-pixel centres, no antialiasing
  Area,      // cv::INTER_AREA: the mean of the source area each output pixel covers (downscaling)
};

struct Preprocess {
  int channels = 3;  // 1: grayscale (ITU-R 601 luma), 3: RGB
  int resize = 0;    // the shorter side after resizing; 0 keeps the size
  int crop = 0;      // the side of the center crop; 0 keeps the whole image
  Interpolation interpolation = Interpolation::Bilinear;
  std::vector<double> mean, std;  // per channel; empty means 0 and 1
};

// What kind of image the bytes hold, by their signature: "png", "jpeg", or "" (neither).
std::string_view image_format(std::string_view bytes);

// Whether JPEG bytes hold their end-of-image marker after their last scan. A truncated JPEG
// decodes without an error (libjpeg fills the missing rows with grey and only warns), so it is
// caught by this before decoding.
bool jpeg_is_complete(std::string_view bytes);

// torchvision's Resize(size) with an int: the shorter side becomes `shorter`, the longer one
// int(shorter * long / short) (truncated). Returns (height, width).
std::pair<int, int> resized_size(int height, int width, int shorter);

// torchvision's CenterCrop offset along one side: int(round((size - crop) / 2)), Python's round
// (halves to even).
int center_crop_offset(int size, int crop);

// Decodes PNG or JPEG bytes and preprocesses them as `p` says (resize when set, center crop when
// set, scale to [0, 1], normalise), into `out` (channels x height x width, row-major, resized to
// fit). Returns (height, width). Throws Error for bytes that are neither format, a truncated JPEG,
// anything the decoder refuses, an image smaller than the crop, and when OpenCV's library cannot
// be loaded (saying why). Thread-safe.
std::pair<int, int> decode_and_preprocess(std::string_view bytes, const Preprocess& p, std::vector<float>& out);

}  // namespace caulk::images
