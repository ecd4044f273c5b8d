#include "adapters/algorithms/labels.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>

#include "caulk/error.hpp"
#include "caulk/io/csv.hpp"
#include "caulk/io/npy.hpp"

namespace fs = std::filesystem;

namespace caulk::data {

namespace {
bool is_csv(const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".csv";
}

bool parse_integer(const std::string& s, long long& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::size_t label_column(const io::CsvTable& t, const std::string& column) {
  if (!column.empty()) return t.column(column);
  if (t.header.size() == 1) return 0;
  if (t.has_column("label")) return t.column("label");
  std::string cols;
  for (const auto& h : t.header) cols += (cols.empty() ? "'" : ", '") + h + "'";
  throw DataError(t.path.string(), "has several columns (" + cols + "); name the label column with parameter label_column");
}
}  // namespace

std::vector<std::string> read_class_labels(const fs::path& file, const std::string& column) {
  std::vector<std::string> out;
  if (is_csv(file)) {
    io::CsvTable t = io::read_csv(file);
    std::size_t c = label_column(t, column);
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
      const std::string& v = t.rows[r][c];
      if (v.empty())
        throw DataError(file.string(), "line " + std::to_string(t.row_lines[r]) + ": empty label in column '" + t.header[c] + "'");
      out.push_back(v);
    }
    if (out.empty()) throw DataError(file.string(), "has a header but no rows");
    return out;
  }
  if (!column.empty()) throw DataError(file.string(), "label_column applies to CSV files only");
  io::NpyArray a = io::NpyArray::open(file);
  if (a.ndim() == 2 && a.shape()[1] != 1)
    throw DataError(file.string(), "classification labels must be a vector (N or N x 1), found shape " + std::to_string(a.shape()[0]) +
                                       " x " + std::to_string(a.shape()[1]));
  for (std::int64_t v : a.to_int64()) out.push_back(std::to_string(v));
  if (out.empty()) throw DataError(file.string(), "holds no labels");
  return out;
}

Matrix read_regression_targets(const fs::path& file, const std::string& column) {
  Matrix y;
  if (is_csv(file)) {
    io::CsvTable t = io::read_csv(file);
    std::vector<std::size_t> cols;
    if (!column.empty()) {
      cols.push_back(t.column(column));
    } else {
      for (std::size_t c = 0; c < t.header.size(); ++c) cols.push_back(c);
    }
    y.resize(static_cast<Eigen::Index>(t.rows.size()), static_cast<Eigen::Index>(cols.size()));
    for (std::size_t r = 0; r < t.rows.size(); ++r)
      for (std::size_t j = 0; j < cols.size(); ++j) y(r, j) = t.number(r, cols[j]);
  } else {
    if (!column.empty()) throw DataError(file.string(), "label_column applies to CSV files only");
    y = io::NpyArray::open(file).matrix().to_double();
  }
  if (y.rows() == 0 || y.cols() == 0) throw DataError(file.string(), "holds no targets");
  for (Eigen::Index r = 0; r < y.rows(); ++r)
    for (Eigen::Index c = 0; c < y.cols(); ++c)
      if (!std::isfinite(y(r, c)))
        throw DataError(file.string(), "non-finite target at row " + std::to_string(r) + ", column " + std::to_string(c));
  return y;
}

std::vector<std::string> order_classes(std::vector<std::string> labels) {
  std::set<std::string> unique(labels.begin(), labels.end());
  std::vector<std::string> classes(unique.begin(), unique.end());
  bool numeric = true;
  std::map<std::string, long long> value;
  for (const auto& c : classes) {
    long long v = 0;
    if (!parse_integer(c, v)) {
      numeric = false;
      break;
    }
    value[c] = v;
  }
  if (numeric) std::sort(classes.begin(), classes.end(), [&](const auto& a, const auto& b) { return value[a] < value[b]; });
  return classes;
}

std::vector<int> index_labels(const std::vector<std::string>& labels, const std::vector<std::string>& classes) {
  std::map<std::string, int> index;
  for (std::size_t i = 0; i < classes.size(); ++i) index[classes[i]] = static_cast<int>(i);
  std::vector<int> out;
  out.reserve(labels.size());
  for (const auto& l : labels) out.push_back(index.at(l));
  return out;
}

}  // namespace caulk::data
