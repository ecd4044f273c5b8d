// Image preprocessing without OpenCV (caulk/images/preprocess.hpp; docs/datasets.md).
#include "caulk/images/preprocess.hpp"

#include "caulk/error.hpp"

namespace caulk::images {

// Inside entropy-coded data every FF byte is followed by 00 or a restart marker, so neither the
// start-of-scan marker FF DA nor the end-of-image marker FF D9 can appear there by chance.
bool jpeg_is_complete(std::string_view bytes) {
  std::size_t last_scan = std::string_view::npos, last_end = std::string_view::npos;
  for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
    if (static_cast<unsigned char>(bytes[i]) != 0xFF) continue;
    const auto next = static_cast<unsigned char>(bytes[i + 1]);
    if (next == 0xDA) last_scan = i;
    if (next == 0xD9) last_end = i;
  }
  return last_scan != std::string_view::npos && last_end != std::string_view::npos && last_end > last_scan;
}

std::string_view image_format(std::string_view bytes) {
  if (bytes.size() >= 8 && bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) return "png";
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF && static_cast<unsigned char>(bytes[1]) == 0xD8 &&
      static_cast<unsigned char>(bytes[2]) == 0xFF)
    return "jpeg";
  return "";
}

std::pair<int, int> resized_size(int height, int width, int shorter) {
  if (height <= 0 || width <= 0 || shorter <= 0) throw Error("resized_size: sizes must be positive");
  const bool tall = height >= width;
  const int short_side = tall ? width : height, long_side = tall ? height : width;
  // int() of the real quotient, as torchvision computes it (floor for positive sizes).
  const int new_long = static_cast<int>(static_cast<std::int64_t>(shorter) * long_side / short_side);
  return tall ? std::pair{new_long, shorter} : std::pair{shorter, new_long};
}

int center_crop_offset(int size, int crop) {
  const int twice = size - crop;  // the offset is twice / 2, rounded half to even
  const int half = twice / 2;
  if (twice % 2 == 0) return half;
  return half % 2 == 0 ? half : half + 1;
}

}  // namespace caulk::images
