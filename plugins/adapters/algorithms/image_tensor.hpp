// One split's images as one N x C x H x W float32 .npy file, decoded in parallel and cached
// (docs/datasets.md, "The tensor cache"): the file lives in a hidden .caulk-images/ folder beside
// the images, named by a hash of the preprocessing and of every image's path, size and
// modification time, so a second run reads it instead of decoding, and any change to an image or
// a parameter gives another name. Knows nothing of the graph.
#pragma once
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "adapters/algorithms/image_folder.hpp"
#include "caulk/images/preprocess.hpp"

namespace caulk::images {

// The folder the cache of a split's tensors lives in: FOLDER/.caulk-images, or the list file's
// folder's .caulk-images.
std::filesystem::path cache_folder(const SplitListing& split);
// The cache file's name for this listing and preprocessing:
// "SOURCE.PARAMS.FILES.npy" (SOURCE: "folder" or the list file's name; PARAMS, FILES: XXH3-128 hex
// of the preprocessing and of the images' relative paths, labels, sizes and mtimes).
std::string cache_file_name(const SplitListing& split, const Preprocess& p);

struct SplitTensor {
  std::filesystem::path file;      // the .npy holding the tensor
  std::vector<std::size_t> shape;  // N, C, H, W
  std::size_t decoded = 0;         // images decoded (0 when the cache was read)
  bool from_cache = false;
  std::string cache_note;  // why a cached tensor that was there was not used ("" when none was, or it was used)
  std::string not_cached;  // why the tensor could not be kept in the cache folder ("" when it was, or use_cache is false)
};

// Reads the cached tensor when a valid one is there (right dtype and shape, whole file); else
// decodes every image (in parallel on the current pool; rows in listing order, so the bytes do not
// depend on the width), writes the cache (temporary file, then rename) and removes older tensors
// of the same source and preprocessing. When `use_cache` is false or the cache folder cannot be
// written, the tensor is written to `fallback` instead (and `not_cached` says why). `advance` is
// called after each decoded image. Throws DataError naming the image (and its list line) when one
// cannot be read or decoded, or when images end with different sizes.
SplitTensor load_split_tensor(const SplitListing& split, const Preprocess& p, bool use_cache, const std::filesystem::path& fallback,
                              const std::function<void()>& advance = {});

}  // namespace caulk::images
