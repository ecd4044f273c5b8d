// Which images a split holds (docs/datasets.md, "Image folders"): a folder with one sub-folder per
// class, as torchvision's ImageFolder reads it, or a list file of "PATH LABEL" lines. Listing only
// (names, labels, sizes and modification times); no image is opened.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "caulk/io/access_log.hpp"

namespace caulk::images {

struct ImageEntry {
  std::filesystem::path file;
  int label = 0;
  io::FileStat stat;  // as listed: size and modification time key the tensor cache
  int line = 0;       // its line in a list file (0 for a folder)
};

struct SplitListing {
  std::filesystem::path source;  // the folder or the list file
  bool is_folder = true;
  std::vector<std::string> classes;  // a folder's class sub-folders, sorted (a list file: none)
  std::vector<ImageEntry> images;    // folders: by class, then by path inside the class folder
};

// .png, .jpg and .jpeg, in any case.
bool is_image_name(const std::filesystem::path& file);

// A class folder tree: classes are the sub-folders (names starting with '.' are skipped, so
// caulk's own .caulk-images is never a class) in byte order, as Python's sorted(); label = index.
// Each class's images are found recursively and sorted by their path; other files are ignored.
// Throws DataError naming the folder when it is missing, has no class sub-folders, or has a class
// without images.
SplitListing list_image_folder(const std::filesystem::path& folder);

// A list file: one image per line, "PATH LABEL": the path relative to the list file's folder (it
// may contain spaces), white space, then the class index (an integer >= 0). Empty lines and lines
// starting with '#' are skipped. Throws DataError at FILE:LINE for a malformed line (commas
// included: "PATH,LABEL" is refused with the line's number), a missing image or a non-image name.
SplitListing read_image_list(const std::filesystem::path& list_file);

// A folder is listed as a class tree, anything else is read as a list file.
SplitListing list_split(const std::filesystem::path& source);

// The classes every split shares (docs/datasets.md, "Image folders"): those of the folder of split
// "train" (else of the first folder split), or "0" to the largest label when every split is a list
// file. `problems` receives (split, message) for each folder whose classes differ and each list
// label outside the classes; fewer than two classes is a problem of the first split.
std::vector<std::string> shared_classes(const std::map<std::string, SplitListing>& splits,
                                        std::vector<std::pair<std::string, std::string>>& problems);

}  // namespace caulk::images
