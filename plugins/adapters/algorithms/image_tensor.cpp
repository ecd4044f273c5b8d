// A split's images as one cached .npy tensor (image_tensor.hpp).
#include "adapters/algorithms/image_tensor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "caulk/error.hpp"
#include "caulk/file_hash.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/parallel.hpp"

namespace fs = std::filesystem;

namespace caulk::images {

namespace {

// Bumped whenever what a cached tensor holds for the same parameters changes.
constexpr int kCacheFormat = 1;
// No image file is this large; the bound keeps a huge file named by mistake from filling memory.
constexpr std::size_t kMaxImageBytes = std::size_t{1} << 30;

std::string source_name(const SplitListing& split) { return split.is_folder ? std::string("folder") : split.source.filename().string(); }

fs::path base_folder(const SplitListing& split) { return split.is_folder ? split.source : split.source.parent_path(); }

std::string params_text(const Preprocess& p) {
  std::string text = fmt::format("caulk-images {}\nchannels {}\nresize {}\ncrop {}\ninterpolation {}\n", kCacheFormat, p.channels, p.resize,
                                 p.crop, p.interpolation == Interpolation::Area ? "area" : "bilinear");
  for (double m : p.mean) text += fmt::format("mean {:.17g}\n", m);
  for (double s : p.std) text += fmt::format("std {:.17g}\n", s);
  return text;
}

std::string files_text(const SplitListing& split) {
  const fs::path base = base_folder(split);
  std::string text;
  for (const auto& e : split.images) {
    const std::string rel = e.file.lexically_relative(base).generic_string();
    // Each path preceded by its length: no two listings give the same text.
    text += fmt::format("{}:{} {} {} {}\n", rel.size(), rel, e.label, e.stat.size, e.stat.mtime_ns);
  }
  return text;
}

std::string where(const ImageEntry& e, const SplitListing& split) {
  return e.line > 0 ? fmt::format(" (listed at {}:{})", split.source.string(), e.line) : std::string();
}

// The bounds every value of a channel lies in: (0 - mean) / std and (1 - mean) / std.
std::pair<float, float> channel_bounds(const Preprocess& p, std::size_t c) {
  const double mean = p.mean.empty() ? 0.0 : p.mean[c], std = p.std.empty() ? 1.0 : p.std[c];
  const double a = (0.0 - mean) / std, b = (1.0 - mean) / std;
  const double slack = 1e-5 * (1.0 + std::max(std::abs(a), std::abs(b)));
  return {static_cast<float>(std::min(a, b) - slack), static_cast<float>(std::max(a, b) + slack)};
}

// Why the cached file cannot be used, or "" when it can: the header says float32 C-order
// N x C x H x W with the listing's N and the parameters' C (and crop), the data are complete,
// and every value lies within its channel's bounds (garbage bytes almost never do).
std::string cached_problem(const fs::path& file, const SplitListing& split, const Preprocess& p, std::vector<std::size_t>& shape) {
  try {
    const io::NpyArray a = io::NpyArray::open(file);
    const auto& s = a.shape();
    if (a.dtype() != io::DType::F32 || a.fortran_order() || s.size() != 4 || s[0] != split.images.size() ||
        s[1] != static_cast<std::size_t>(p.channels) || s[2] == 0 || s[3] == 0 ||
        (p.crop > 0 && (s[2] != static_cast<std::size_t>(p.crop) || s[3] != static_cast<std::size_t>(p.crop))))
      return "its header is not the tensor these images and parameters make";
    const float* v = static_cast<const float*>(a.data());
    const std::size_t plane = s[2] * s[3];
    for (std::size_t n = 0; n < s[0]; ++n)
      for (std::size_t c = 0; c < s[1]; ++c) {
        const auto [lo, hi] = channel_bounds(p, c);
        const float* x = v + (n * s[1] + c) * plane;
        for (std::size_t i = 0; i < plane; ++i)
          if (!(x[i] >= lo && x[i] <= hi)) return "it holds values no image gives (the file is damaged)";
      }
    a.mapping()->check_intact();
    shape = s;
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

struct Decoded {
  std::vector<float> values;
  int height = 0, width = 0;
};

Decoded decode_one(const ImageEntry& e, const SplitListing& split, const Preprocess& p) {
  Decoded d;
  try {
    const std::string bytes = io::InputFile::open(e.file).read_all(kMaxImageBytes);
    std::tie(d.height, d.width) = decode_and_preprocess(bytes, p, d.values);
  } catch (const DataError& err) {
    throw DataError(err.file(), err.problem() + where(e, split));
  } catch (const Error& err) {
    throw DataError(e.file.string(), err.what() + where(e, split));
  } catch (const std::exception& err) {  // OpenCV's own exceptions (cv::Exception)
    throw DataError(e.file.string(), std::string("OpenCV failed on it: ") + err.what() + where(e, split));
  }
  return d;
}

// Creates the cache folder; "" when it can be written, else why not.
std::string prepare_cache_folder(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fmt::format("cannot create {}: {}", dir.string(), ec.message());
  if (!fs::is_directory(dir, ec)) return fmt::format("{} is not a folder", dir.string());
  return "";
}

// Removes the tensors of the same source and parameters made from older images.
void remove_stale(const fs::path& dir, const std::string& keep, const std::string& prefix) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name != keep && name.rfind(prefix, 0) == 0 && it->path().extension() == ".npy") {
      std::error_code e2;
      fs::remove(it->path(), e2);
    }
  }
}

}  // namespace

fs::path cache_folder(const SplitListing& split) { return base_folder(split) / ".caulk-images"; }

std::string cache_file_name(const SplitListing& split, const Preprocess& p) {
  return fmt::format("{}.{}.{}.npy", source_name(split), content_hash(params_text(p)).substr(0, 16), content_hash(files_text(split)));
}

SplitTensor load_split_tensor(const SplitListing& split, const Preprocess& p, bool use_cache, const fs::path& fallback,
                              const std::function<void()>& advance) {
  SplitTensor out;
  const fs::path dir = cache_folder(split);
  const std::string name = cache_file_name(split, p);
  if (use_cache) {
    const fs::path file = dir / name;
    std::error_code ec;
    if (fs::exists(file, ec)) {
      const std::string problem = cached_problem(file, split, p, out.shape);
      if (problem.empty()) {
        // The images were not opened: they are what the tensor was made from, so say they were read.
        for (const auto& e : split.images) io::note_read(e.file, e.stat);
        out.file = file;
        out.from_cache = true;
        return out;
      }
      out.cache_note = fmt::format("the cached tensor {} was not used ({}): rewritten", file.string(), problem);
    }
  }

  const std::size_t n = split.images.size();
  std::vector<Decoded> decoded(n);
  parallel_for(n, [&](std::size_t i) {
    decoded[i] = decode_one(split.images[i], split, p);
    if (advance) advance();
  });
  const int h = decoded.front().height, w = decoded.front().width;
  for (std::size_t i = 1; i < n; ++i)
    if (decoded[i].height != h || decoded[i].width != w)
      throw DataError(
          split.images[i].file.string(),
          fmt::format("is {} x {} (height x width) after preprocessing but {} is {} x {}{}: images of different sizes "
                      "stack into one tensor only when resized and cropped to one size (set resize and crop)",
                      decoded[i].height, decoded[i].width, split.images.front().file.string(), h, w, where(split.images[i], split)));
  const std::size_t sample = decoded.front().values.size();
  std::vector<float> tensor(n * sample);
  for (std::size_t i = 0; i < n; ++i) {
    std::memcpy(tensor.data() + i * sample, decoded[i].values.data(), sample * sizeof(float));
    std::vector<float>().swap(decoded[i].values);
  }
  out.shape = {n, static_cast<std::size_t>(p.channels), static_cast<std::size_t>(h), static_cast<std::size_t>(w)};
  out.decoded = n;

  std::string why_not = use_cache ? prepare_cache_folder(dir) : std::string("caching is off (cache = false)");
  if (why_not.empty()) {
    try {
      io::write_npy(dir / name, io::DType::F32, out.shape, tensor.data());
      out.file = dir / name;
      remove_stale(dir, name, name.substr(0, name.rfind('.', name.size() - 5) + 1));
      return out;
    } catch (const Error& e) {
      why_not = e.what();
    }
  }
  if (use_cache) out.not_cached = why_not;
  io::write_npy(fallback, io::DType::F32, out.shape, tensor.data());
  out.file = fallback;
  return out;
}

}  // namespace caulk::images
