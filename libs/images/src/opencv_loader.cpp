// decode_and_preprocess: the OpenCV half of image preprocessing, loaded on first use
// (images_entry.hpp), so that processes that read no image never load OpenCV's codecs.
#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "caulk/error.hpp"
#include "caulk/io/dtype.hpp"
#include "images_entry.hpp"

namespace fs = std::filesystem;

namespace caulk::images {

namespace {

// libcaulk's folder: the build tree and the install tree both keep the OpenCV library there.
fs::path libcaulk_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&io::dtype_size), &info) == 0 || info.dli_fname == nullptr) return {};
  return fs::path(info.dli_fname).parent_path();
}

struct OpenCvLibrary {
  DecodeFn decode = nullptr;
  std::string error;  // why it could not be loaded
};

// Loaded once per process and never unloaded.
const OpenCvLibrary& opencv_library() {
  static OpenCvLibrary library;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* chosen = std::getenv("CAULK_IMAGES_OPENCV");
    const fs::path path = chosen && *chosen ? fs::path(chosen) : libcaulk_folder() / kImagesLibraryName;
    if (!fs::exists(path)) {
      library.error = fmt::format(
          "reading images needs {}, which is not at {} (install OpenCV's dev packages, "
          "scripts/install-deps.sh core, and rebuild; or set CAULK_IMAGES_OPENCV to the library)",
          kImagesLibraryName, path.string());
      return;
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      library.error = fmt::format("could not load {}: {}", path.string(), dlerror());
      return;
    }
    auto version = reinterpret_cast<const char* (*)()>(dlsym(handle, kImagesVersionSymbol));
    if (!version || std::string(version()) != kImagesEntryVersion) {
      library.error = fmt::format("{} is from another caulk build (entry version {}, expected {}): rebuild it", path.string(),
                                  version ? version() : "none", kImagesEntryVersion);
      return;
    }
    library.decode = reinterpret_cast<DecodeFn>(dlsym(handle, kImagesDecodeSymbol));
    if (!library.decode) library.error = fmt::format("{} has no entry point {}", path.string(), kImagesDecodeSymbol);
  });
  return library;
}

}  // namespace

std::pair<int, int> decode_and_preprocess(std::string_view bytes, const Preprocess& p, std::vector<float>& out) {
  const OpenCvLibrary& library = opencv_library();
  if (!library.decode) throw Error(library.error);
  int height = 0, width = 0;
  library.decode(bytes, p, out, &height, &width);
  return {height, width};
}

}  // namespace caulk::images
