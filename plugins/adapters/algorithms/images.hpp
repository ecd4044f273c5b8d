// Image preprocessing as torchvision users know it (docs/datasets.md, "Image folders"): decode a
// PNG or JPEG, resize the shorter side, center crop, scale to [0, 1], normalise per channel, and
// lay the result out as a C x H x W float32 tensor. Plain functions over bytes and OpenCV
// matrices, with no knowledge of files or the graph; problems are thrown as caulk::Error with
// what is wrong (the caller names the file).
#pragma once
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>

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

// Decodes PNG or JPEG bytes as 8-bit RGB (channels 3) or grayscale (channels 1). Throws Error for
// bytes that are neither format, a truncated JPEG (no end-of-image marker after its last scan) and
// anything the decoder refuses.
cv::Mat decode_image(std::string_view bytes, int channels);

// torchvision's Resize(size) with an int: the shorter side becomes `shorter`, the longer one
// int(shorter * long / short) (truncated). Returns (height, width).
std::pair<int, int> resized_size(int height, int width, int shorter);

// torchvision's CenterCrop offset along one side: int(round((size - crop) / 2)), Python's round
// (halves to even).
int center_crop_offset(int size, int crop);

// Resize (when set), center crop (when set; Error when the image is smaller than the crop),
// scale to [0, 1] and normalise an 8-bit image, into `out` (channels x height x width, row-major,
// resized to fit). Returns (height, width). Resizing is done in float32 on the 8-bit values (no
// rounding back to 8 bits).
std::pair<int, int> preprocess(const cv::Mat& image, const Preprocess& p, std::vector<float>& out);

}  // namespace caulk::images
