#include "caulk/artifacts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <set>
#include <system_error>

#include "caulk/error.hpp"
#include "caulk/io/csv.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/number_format.hpp"

namespace caulk {

Artifact::~Artifact() = default;

std::string_view task_kind_name(TaskKind k) { return k == TaskKind::Classification ? "classification" : "regression"; }

namespace {
std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}
// Files already checked for non-finite values in this process, by identity (canonical path, size,
// modification time): several nodes open the same features, and scanning them once is enough.
class CheckedFiles {
 public:
  bool contains(const std::string& id) {
    std::lock_guard lock(mutex_);
    return !id.empty() && ids_.count(id);
  }
  void add(const std::string& id) {
    std::lock_guard lock(mutex_);
    if (!id.empty()) ids_.insert(id);
  }

 private:
  std::mutex mutex_;
  std::set<std::string> ids_;
};

CheckedFiles& checked_files() {
  static CheckedFiles c;
  return c;
}

template <class Map>
std::vector<std::string> keys(const Map& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}
}  // namespace

// --------------------------------------------------------------------------------- ArrayFile

std::string file_identity(const std::filesystem::path& path) {
  std::error_code ec;
  const auto canonical = std::filesystem::canonical(path, ec);
  if (ec) return {};
  const auto size = std::filesystem::file_size(canonical, ec);
  if (ec) return {};
  const auto modified = std::filesystem::last_write_time(canonical, ec);
  if (ec) return {};
  return fmt::format("{}\n{}\n{}", canonical.string(), size, modified.time_since_epoch().count());
}

MatrixView ArrayFile::open(const std::string& what) const {
  if (in_memory()) return memory;
  io::NpyArray array = io::NpyArray::open(path);
  std::string label = what.empty() ? std::string() : what + ": ";
  if (array.ndim() != 1 && array.ndim() != 2)
    throw DataError(path.string(), label + "expected a 1-D or 2-D array, found " + std::to_string(array.ndim()) + "-D");
  MatrixView view = array.matrix();
  const std::string id = file_identity(path);
  if (checked_files().contains(id)) return view;
  std::size_t r = 0, c = 0;
  if (view.find_non_finite(r, c))
    throw DataError(path.string(), label + fmt::format("non-finite value ({}) at row {}, column {}", view(r, c), r, c));
  checked_files().add(id);
  return view;
}

std::pair<std::size_t, std::size_t> ArrayFile::shape() const {
  if (in_memory()) return {memory.rows(), memory.cols()};
  io::NpyHeader h = io::NpyArray::read_header(path);
  if (h.shape.empty()) return {1, 1};
  if (h.shape.size() == 1) return {h.shape[0], 1};
  return {h.shape[0], h.shape.size() == 2 ? h.shape[1] : 0};
}

std::string ArrayFile::describe() const { return in_memory() ? std::string("<memory>") : path.string(); }

// --------------------------------------------------------------------------------- Dataset

std::size_t Dataset::num_targets() const {
  if (kind == TaskKind::Classification) return class_names.size();
  return splits.empty() ? 0 : static_cast<std::size_t>(splits.front().targets.cols());
}

const DatasetSplit* Dataset::find_split(const std::string& name) const {
  for (const auto& s : splits)
    if (s.name == name) return &s;
  return nullptr;
}

const DatasetSplit& Dataset::split(const std::string& name) const {
  if (const DatasetSplit* s = find_split(name)) return *s;
  std::vector<std::string> names;
  for (const auto& s : splits) names.push_back(s.name);
  throw Error("the dataset has no split '" + name + "' (it has " + join(names) + ")");
}

// --------------------------------------------------------------------------------- Embeddings

const ArrayFile& ModelEmbedding::features_for(const std::string& split) const {
  auto it = features.find(split);
  if (it == features.end())
    throw Error("model '" + name + "' has no features for split '" + split + "' (it has " + join(keys(features)) + ")");
  return it->second;
}

const ArrayFile& ModelEmbedding::source_probs_for(const std::string& split) const {
  if (source_probs.empty()) throw Error("model '" + name + "' has no source-class probabilities (source_probs in the hub manifest)");
  auto it = source_probs.find(split);
  if (it == source_probs.end())
    throw Error("model '" + name + "' has no source-class probabilities for split '" + split + "' (it has " + join(keys(source_probs)) +
                ")");
  return it->second;
}

// --------------------------------------------------------------------------------- Scores

const ModelScore* Scores::find(const std::string& model) const {
  for (const auto& s : scores)
    if (s.model == model) return &s;
  return nullptr;
}

std::vector<std::size_t> Scores::ranking() const {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return higher_is_better ? scores[a].score > scores[b].score : scores[a].score < scores[b].score;
  });
  return order;
}

// --------------------------------------------------------------------------------- Predictions

const Matrix& ModelPredictions::on(const std::string& split) const {
  auto it = splits.find(split);
  if (it == splits.end())
    throw Error("model '" + model + "' has no predictions for split '" + split + "' (it has " + join(keys(splits)) + ")");
  return it->second;
}

// --------------------------------------------------------------------------------- Table

std::string format_cell(const TableCell& c, int digits) {
  switch (c.index()) {
    case 0:
      return "";
    case 1:
      return std::get<std::string>(c);
    case 2: {
      return format_number(std::get<double>(c), digits);
    }
    default:
      return std::to_string(std::get<long long>(c));
  }
}

namespace {
bool is_numeric(const TableCell& c) { return c.index() >= 2; }
}  // namespace

std::string Table::to_text(int digits) const {
  std::vector<std::size_t> width(columns.size(), 0);
  std::vector<std::vector<std::string>> text;
  for (std::size_t j = 0; j < columns.size(); ++j) width[j] = columns[j].size();
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (std::size_t j = 0; j < columns.size(); ++j) {
      line.push_back(j < row.size() ? format_cell(row[j], digits) : "");
      width[j] = std::max(width[j], line.back().size());
    }
    text.push_back(std::move(line));
  }
  std::string out;
  if (!title.empty()) out += title + "\n";
  for (std::size_t j = 0; j < columns.size(); ++j) out += fmt::format("{}{:<{}}", j ? "  " : "", columns[j], width[j]);
  out += "\n";
  for (std::size_t j = 0; j < columns.size(); ++j) out += (j ? "  " : "") + std::string(width[j], '-');
  out += "\n";
  for (std::size_t i = 0; i < text.size(); ++i) {
    for (std::size_t j = 0; j < columns.size(); ++j) {
      bool right = j < rows[i].size() && is_numeric(rows[i][j]);
      out += j ? "  " : "";
      out += right ? fmt::format("{:>{}}", text[i][j], width[j]) : fmt::format("{:<{}}", text[i][j], width[j]);
    }
    // No trailing spaces.
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += "\n";
  }
  return out;
}

std::string Table::to_markdown(int digits) const {
  auto escape = [](std::string s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  };
  std::string out;
  if (!title.empty()) out += "## " + title + "\n\n";
  out += "|";
  // append, not "literal" + std::string: GCC 12 warns falsely (-Wrestrict) on the latter.
  for (const auto& c : columns) out.append(" ").append(escape(c)).append(" |");
  out += "\n|";
  for (std::size_t j = 0; j < columns.size(); ++j) {
    bool numeric = !rows.empty() && j < rows.front().size() && is_numeric(rows.front()[j]);
    out += numeric ? " ---: |" : " --- |";
  }
  out += "\n";
  for (const auto& row : rows) {
    out += "|";
    for (std::size_t j = 0; j < columns.size(); ++j)
      out.append(" ").append(escape(j < row.size() ? format_cell(row[j], digits) : "")).append(" |");
    out += "\n";
  }
  return out;
}

std::string Table::to_csv() const {
  std::string out;
  for (std::size_t j = 0; j < columns.size(); ++j) {
    if (j) out += ',';
    out += io::csv_field(columns[j]);
  }
  out += "\n";
  for (const auto& row : rows) {
    for (std::size_t j = 0; j < columns.size(); ++j) {
      std::string cell =
          j < row.size() ? (row[j].index() == 2 ? fmt::format("{}", std::get<double>(row[j])) : format_cell(row[j], 17)) : "";
      if (j) out += ',';
      out += io::csv_field(cell);
    }
    out += "\n";
  }
  return out;
}

}  // namespace caulk
