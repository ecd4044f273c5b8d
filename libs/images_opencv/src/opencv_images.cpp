// Image decoding and preprocessing on OpenCV (opencv_images.hpp; what each step computes is in
// docs/datasets.md), and the entry point decode_and_preprocess (libs/images) loads with dlopen.
#include "opencv_images.hpp"

#include <fmt/format.h>

#include <cmath>
#include <tuple>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "caulk/error.hpp"
#include "images_entry.hpp"

namespace caulk::images {

cv::Mat decode_image(std::string_view bytes, int channels) {
  if (channels != 1 && channels != 3) throw Error(fmt::format("channels must be 1 or 3, not {}", channels));
  const std::string_view format = image_format(bytes);
  if (format.empty())
    throw Error(bytes.empty() ? std::string("the file is empty, not a PNG or JPEG image")
                              : std::string("not a PNG or JPEG image (its first bytes are neither signature)"));
  if (format == "jpeg" && !jpeg_is_complete(bytes))
    throw Error("truncated JPEG: the data end before the end-of-image marker (the file was cut short)");
  cv::Mat decoded;
  try {
    const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
    // Always as 8-bit colour, EXIF orientation ignored (PIL, hence torchvision, does not apply it);
    // grayscale is computed from RGB in preprocess() so both formats convert alike.
    decoded = cv::imdecode(raw, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw Error(fmt::format("corrupt {} image: the decoder failed ({})", format == "png" ? "PNG" : "JPEG", e.err));
  }
  if (decoded.empty() || decoded.type() != CV_8UC3)
    throw Error(fmt::format("corrupt {} image: the decoder could not read it", format == "png" ? "PNG" : "JPEG"));
  cv::Mat rgb;
  cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

std::pair<int, int> preprocess(const cv::Mat& image, const Preprocess& p, std::vector<float>& out) {
  if (image.type() != CV_8UC3) throw Error("preprocess takes an 8-bit RGB image");
  if (p.channels != 1 && p.channels != 3) throw Error(fmt::format("channels must be 1 or 3, not {}", p.channels));
  if ((!p.mean.empty() && p.mean.size() != static_cast<std::size_t>(p.channels)) ||
      (!p.std.empty() && p.std.size() != static_cast<std::size_t>(p.channels)))
    throw Error(fmt::format("mean and std need {} values (one per channel)", p.channels));

  cv::Mat values;
  if (p.channels == 3) {
    image.convertTo(values, CV_32FC3);
  } else {
    // ITU-R 601 luma, as PIL's convert("L"), in float from the 8-bit values.
    values.create(image.rows, image.cols, CV_32FC1);
    for (int y = 0; y < image.rows; ++y)
      for (int x = 0; x < image.cols; ++x) {
        const cv::Vec3b& px = image.at<cv::Vec3b>(y, x);
        values.at<float>(y, x) = static_cast<float>(0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]);
      }
  }

  if (p.resize > 0) {
    const auto [h, w] = resized_size(values.rows, values.cols, p.resize);
    if (h != values.rows || w != values.cols) {
      cv::Mat resized;
      cv::resize(values, resized, cv::Size(w, h), 0, 0, p.interpolation == Interpolation::Area ? cv::INTER_AREA : cv::INTER_LINEAR);
      values = resized;
    }
  }

  int top = 0, left = 0, height = values.rows, width = values.cols;
  if (p.crop > 0) {
    if (values.rows < p.crop || values.cols < p.crop)
      throw Error(fmt::format("the image is {} x {} (height x width){} but the crop is {} x {}: set resize to at least {}", values.rows,
                              values.cols, p.resize > 0 ? " after resizing" : "", p.crop, p.crop, p.crop));
    top = center_crop_offset(values.rows, p.crop);
    left = center_crop_offset(values.cols, p.crop);
    height = width = p.crop;
  }

  const int c = p.channels;
  out.resize(static_cast<std::size_t>(c) * static_cast<std::size_t>(height) * static_cast<std::size_t>(width));
  for (int k = 0; k < c; ++k) {
    const double mean = p.mean.empty() ? 0.0 : p.mean[static_cast<std::size_t>(k)];
    const double std = p.std.empty() ? 1.0 : p.std[static_cast<std::size_t>(k)];
    float* plane = out.data() + static_cast<std::size_t>(k) * static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
    for (int y = 0; y < height; ++y) {
      const float* row = values.ptr<float>(top + y);
      for (int x = 0; x < width; ++x)
        plane[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)] =
            static_cast<float>((row[(left + x) * c + k] / 255.0 - mean) / std);
    }
  }
  return {height, width};
}

}  // namespace caulk::images

extern "C" __attribute__((visibility("default"))) const char* caulk_images_opencv_version() { return caulk::images::kImagesEntryVersion; }

extern "C" __attribute__((visibility("default"))) void caulk_images_opencv_decode(std::string_view bytes,
                                                                                  const caulk::images::Preprocess& p,
                                                                                  std::vector<float>& out, int* height, int* width) {
  std::tie(*height, *width) = caulk::images::preprocess(caulk::images::decode_image(bytes, p.channels), p, out);
}
