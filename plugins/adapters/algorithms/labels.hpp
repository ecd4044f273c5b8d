// Reading label files (.npy or CSV with a header) into class indices or regression targets.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "caulk/matrix.hpp"

namespace caulk::data {

// Classification labels as written (numbers as their decimal text), one per row.
// `column` picks a CSV column; "" means the file's only column (or one named "label").
std::vector<std::string> read_class_labels(const std::filesystem::path& file, const std::string& column);

// Regression targets, rows x T. `column` picks one CSV column; "" means every column.
Matrix read_regression_targets(const std::filesystem::path& file, const std::string& column);

// The classes in their canonical order: numerically when every label is an integer, else by text.
std::vector<std::string> order_classes(std::vector<std::string> labels);

// Class index of each label, given the ordered classes.
std::vector<int> index_labels(const std::vector<std::string>& labels, const std::vector<std::string>& classes);

}  // namespace caulk::data
