// Listing the images of a split (image_folder.hpp).
#include "adapters/algorithms/image_folder.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <iterator>

#include "caulk/error.hpp"
#include "caulk/file_hash.hpp"
#include "caulk/io/input_file.hpp"

namespace fs = std::filesystem;

namespace caulk::images {

namespace {

bool hidden(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

ImageEntry entry_of(const fs::path& file, int label, int line, const fs::path& reported_in) {
  const auto st = stat_file(file);
  if (!st) {
    const std::string problem = io::input_file_problem(file).value_or("cannot be examined");
    if (line > 0) throw DataError(reported_in.string(), line, fmt::format("image {}: {}", file.string(), problem));
    throw DataError(file.string(), problem);
  }
  return ImageEntry{file, label, *st, line};
}

std::string trim(std::string_view s) {
  std::size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

}  // namespace

bool is_image_name(const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

SplitListing list_image_folder(const fs::path& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw DataError(folder.string(), fs::exists(folder, ec) ? "not a folder" : "no such folder");
  SplitListing out;
  out.source = folder;
  out.is_folder = true;
  bool loose_images = false;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (hidden(it->path())) continue;
    std::error_code e2;
    if (it->is_directory(e2))
      out.classes.push_back(it->path().filename().string());
    else if (is_image_name(it->path()))
      loose_images = true;
  }
  if (ec) throw DataError(folder.string(), "cannot list the folder: " + ec.message());
  if (out.classes.empty())
    throw DataError(folder.string(), std::string("has no class sub-folders") + (loose_images ? " (its images lie directly in it)" : "") +
                                         ": an image folder holds one sub-folder per class with that class's PNG or JPEG "
                                         "images, as torchvision's ImageFolder reads it");
  std::sort(out.classes.begin(), out.classes.end());
  for (std::size_t c = 0; c < out.classes.size(); ++c) {
    const fs::path class_dir = folder / out.classes[c];
    std::vector<fs::path> files;
    for (fs::recursive_directory_iterator it(class_dir, fs::directory_options::follow_directory_symlink, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (hidden(it->path())) {
        std::error_code e2;
        if (it->is_directory(e2)) it.disable_recursion_pending();
        continue;
      }
      std::error_code e2;
      if (!it->is_directory(e2) && is_image_name(it->path())) files.push_back(it->path());
    }
    if (ec) throw DataError(class_dir.string(), "cannot list the folder: " + ec.message());
    if (files.empty())
      throw DataError(class_dir.string(), fmt::format("class '{}' holds no PNG or JPEG images (.png, .jpg, .jpeg): remove the folder "
                                                      "or add its images",
                                                      out.classes[c]));
    std::sort(files.begin(), files.end());
    for (const auto& f : files) out.images.push_back(entry_of(f, static_cast<int>(c), 0, class_dir));
  }
  return out;
}

SplitListing read_image_list(const fs::path& list_file) {
  const std::string text = io::read_text_file(list_file);
  SplitListing out;
  out.source = list_file;
  out.is_folder = false;
  const fs::path base = list_file.parent_path();
  int line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = trim(std::string_view(text).substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const auto expected = [&](const std::string& why) {
      return DataError(list_file.string(), line_no,
                       fmt::format("{}: each line is \"PATH LABEL\" (the image's path relative to this file, white space, "
                                   "then its class index, an integer from 0), not \"{}\"",
                                   why, line));
    };
    if (line.find(',') != std::string::npos && line.find_first_of(" \t") == std::string::npos) throw expected("a comma-separated line");
    const std::size_t space = line.find_last_of(" \t");
    if (space == std::string::npos) throw expected("no label");
    const std::string path = trim(std::string_view(line).substr(0, space));
    const std::string label = line.substr(space + 1);
    int value = -1;
    const auto [ptr, err] = std::from_chars(label.data(), label.data() + label.size(), value);
    if (err != std::errc() || ptr != label.data() + label.size() || value < 0)
      throw expected(fmt::format("the label '{}' is not a class index", label));
    if (!is_image_name(path)) throw expected(fmt::format("'{}' is not a .png, .jpg or .jpeg file", path));
    const fs::path file = fs::path(path).is_absolute() ? fs::path(path) : base / path;
    out.images.push_back(entry_of(file, value, line_no, list_file));
  }
  if (out.images.empty()) throw DataError(list_file.string(), "lists no images (each line is \"PATH LABEL\")");
  return out;
}

std::vector<std::string> shared_classes(const std::map<std::string, SplitListing>& splits,
                                        std::vector<std::pair<std::string, std::string>>& problems) {
  const SplitListing* ref = nullptr;
  std::string ref_name;
  if (auto t = splits.find("train"); t != splits.end() && t->second.is_folder) {
    ref = &t->second;
    ref_name = "train";
  }
  for (const auto& [split, listing] : splits)
    if (!ref && listing.is_folder) {
      ref = &listing;
      ref_name = split;
    }
  std::vector<std::string> names;
  if (ref) {
    names = ref->classes;
    for (const auto& [split, listing] : splits) {
      if (!listing.is_folder || listing.classes == names) continue;
      std::vector<std::string> missing, extra;
      std::set_difference(names.begin(), names.end(), listing.classes.begin(), listing.classes.end(), std::back_inserter(missing));
      std::set_difference(listing.classes.begin(), listing.classes.end(), names.begin(), names.end(), std::back_inserter(extra));
      problems.emplace_back(split, fmt::format("{}: the classes of split '{}' differ from those of split '{}' ({}):{}{}; every split "
                                               "needs the same class sub-folders, so that class indices agree",
                                               listing.source.string(), split, ref_name, ref->source.string(),
                                               missing.empty() ? "" : fmt::format(" missing '{}'", fmt::join(missing, "', '")),
                                               extra.empty() ? "" : fmt::format(" extra '{}'", fmt::join(extra, "', '"))));
    }
  } else {
    int top = 0;
    for (const auto& [split, listing] : splits)
      for (const auto& e : listing.images) top = std::max(top, e.label);
    for (int c = 0; c <= top; ++c) names.push_back(std::to_string(c));
  }
  for (const auto& [split, listing] : splits)
    for (const auto& e : listing.images)
      if (e.label >= static_cast<int>(names.size())) {
        problems.emplace_back(
            split,
            fmt::format("{}:{}: label {} is not a class index: the classes are 0 to {} ({})", listing.source.string(), e.line, e.label,
                        names.size() - 1, ref ? "the class sub-folders of " + ref->source.string() : std::string("the labels listed")));
        break;  // one per list file
      }
  if (names.size() < 2 && !splits.empty())
    problems.emplace_back(splits.begin()->first, fmt::format("{}: classification needs at least two classes, found {}",
                                                             splits.begin()->second.source.string(), names.size()));
  return names;
}

SplitListing list_split(const fs::path& source) {
  std::error_code ec;
  if (fs::is_directory(source, ec)) return list_image_folder(source);
  if (!fs::exists(source, ec)) throw DataError(source.string(), "no such folder or list file");
  return read_image_list(source);
}

}  // namespace caulk::images
