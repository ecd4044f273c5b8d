// The OpenCV half of image preprocessing (caulk/images/preprocess.hpp): decoding and the resize,
// crop and normalisation on decoded images. Built into libcaulk_images_opencv.so, which
// decode_and_preprocess loads with dlopen; the tests call these directly.
#pragma once
#include <string_view>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>

#include "caulk/images/preprocess.hpp"

namespace caulk::images {

// Decodes PNG or JPEG bytes as 8-bit RGB (channels 3) or grayscale (channels 1). Throws Error for
// bytes that are neither format, a truncated JPEG (no end-of-image marker after its last scan) and
// anything the decoder refuses.
cv::Mat decode_image(std::string_view bytes, int channels);

// Resize (when set), center crop (when set; Error when the image is smaller than the crop),
// scale to [0, 1] and normalise an 8-bit image, into `out` (channels x height x width, row-major,
// resized to fit). Returns (height, width). Resizing is done in float32 on the 8-bit values (no
// rounding back to 8 bits).
std::pair<int, int> preprocess(const cv::Mat& image, const Preprocess& p, std::vector<float>& out);

}  // namespace caulk::images
