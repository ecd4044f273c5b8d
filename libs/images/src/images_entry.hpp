// The contract between decode_and_preprocess (libs/images) and the OpenCV half of image
// preprocessing, libcaulk_images_opencv.so (libs/images_opencv), which it loads with dlopen.
#pragma once
#include <string_view>
#include <vector>

#include "caulk/images/preprocess.hpp"

namespace caulk::images {

inline constexpr const char* kImagesLibraryName = "libcaulk_images_opencv.so";
// Bumped whenever Preprocess or this contract changes, so a stale library is refused by name.
inline constexpr const char* kImagesEntryVersion = "caulk-images-opencv-1";
inline constexpr const char* kImagesVersionSymbol = "caulk_images_opencv_version";
inline constexpr const char* kImagesDecodeSymbol = "caulk_images_opencv_decode";

// Decodes and preprocesses; throws caulk::Error as decode_and_preprocess documents.
using DecodeFn = void (*)(std::string_view bytes, const Preprocess& p, std::vector<float>& out, int* height, int* width);

}  // namespace caulk::images
