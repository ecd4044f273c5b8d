// dataset.load: labels (and optional model inputs and covariates) of a task, by named split.
#include <fmt/format.h>

#include <algorithm>

#include "adapters/algorithms/labels.hpp"
#include "adapters/src/nodes.hpp"
#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/figures/summaries.hpp"
#include "caulk/io/npy.hpp"

namespace fs = std::filesystem;

namespace caulk::adapters {

namespace {

std::vector<std::pair<std::string, std::string>> check_splits(const Params& p) {
  std::vector<std::pair<std::string, std::string>> problems;
  auto labels = p.split_paths("labels");
  for (const char* other : {"inputs", "covariates"}) {
    if (!p.has(other)) continue;
    auto paths = p.split_paths(other);
    for (const auto& [split, file] : paths)
      if (!labels.count(split)) problems.emplace_back(other, "has split '" + split + "' but 'labels' has no such split");
    for (const auto& [split, file] : labels)
      if (!paths.count(split)) problems.emplace_back(other, "has no file for split '" + split + "' that 'labels' has");
  }
  return problems;
}

// Rows of an array file (its first dimension: model inputs may have any rank, N x P rows,
// N x C x H x W images, N x L token ids), checked against the labels' rows. The header only.
ArrayFile array_for_split(const fs::path& file, std::size_t rows, const fs::path& labels_file, const std::string& what) {
  const io::NpyHeader h = io::NpyArray::read_header(file);
  if (h.shape.empty())
    throw DataError(file.string(), fmt::format("{} is a scalar (a 0-dimensional array): it needs one row per sample, as the "
                                               "labels ({}) have {}",
                                               what, labels_file.string(), rows));
  if (what == "covariates" && h.shape.size() > 2)
    throw DataError(file.string(), fmt::format("covariates are N x Q, but this array has {} dimensions", h.shape.size()));
  if (h.shape[0] != rows)
    throw DataError(file.string(), fmt::format("{} has {} rows (samples, its first dimension) but the labels ({}) have {}", what,
                                               h.shape[0], labels_file.string(), rows));
  return ArrayFile{file, {}};
}

class DatasetLoad : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("dataset.load", "Load a task's labels, and optionally model inputs and covariates, by split");
    s.output("data", "Dataset", "the task: labels per split (and inputs, covariates)");
    s.output("summary", "Table", "per split: rows, classes present or target columns, input and covariate columns");
    s.param(ParamSpec::split_paths("labels", "labels file (.npy or .csv with a header), or { split = file, ... }"));
    s.param(ParamSpec::choice("kind", "classification", {"classification", "regression"},
                              "classification (integer or text classes) or regression (N or N x T targets)"));
    s.param(ParamSpec::split_paths("inputs",
                                   "model inputs (.npy of any rank: N x P rows, N x C x H x W images, N x L int64 token ids), "
                                   "one file per split of the labels")
                .optional());
    s.param(ParamSpec::split_paths("covariates", "covariates z, N x Q (.npy), one file per split of the labels").optional());
    s.param(ParamSpec::string("label_column", "", "CSV labels: the column to read (default: the only column, or 'label')"));
    s.check = check_splits;
    add_dataset_data_check(s);
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    auto data = std::make_shared<Dataset>();
    data->kind = p.string("kind") == "regression" ? TaskKind::Regression : TaskKind::Classification;
    const std::string column = p.string("label_column");
    auto label_files = p.split_paths("labels");

    std::vector<std::vector<std::string>> raw_labels;
    for (const auto& [split, file] : label_files) {
      DatasetSplit s;
      s.name = split;
      s.labels_file = file;
      if (data->kind == TaskKind::Classification) {
        raw_labels.push_back(data::read_class_labels(file, column));
        s.rows = raw_labels.back().size();
      } else {
        s.targets = data::read_regression_targets(file, column);
        s.rows = static_cast<std::size_t>(s.targets.rows());
        if (!data->splits.empty() && s.targets.cols() != data->splits.front().targets.cols())
          throw DataError(file.string(), fmt::format("has {} target columns but split '{}' has {}", s.targets.cols(),
                                                     data->splits.front().name, data->splits.front().targets.cols()));
      }
      data->splits.push_back(std::move(s));
    }

    bool remapped = false;
    if (data->kind == TaskKind::Classification) {
      // One class list for every split, so that class indices agree across splits.
      std::vector<std::string> all;
      for (const auto& l : raw_labels) all.insert(all.end(), l.begin(), l.end());
      data->class_names = data::order_classes(all);
      for (std::size_t i = 0; i < data->splits.size(); ++i) data->splits[i].classes = data::index_labels(raw_labels[i], data->class_names);
      for (std::size_t c = 0; c < data->class_names.size(); ++c)
        if (data->class_names[c] != std::to_string(c)) remapped = true;
      if (data->class_names.size() < 2)
        throw DataError(label_files.begin()->second.string(),
                        "classification needs at least two classes, found " + std::to_string(data->class_names.size()));
    }

    for (const char* which : {"inputs", "covariates"}) {
      if (!p.has(which)) continue;
      for (const auto& [split, file] : p.split_paths(which)) {
        // check_splits made sure every split named here has labels.
        // (A copy of the name: C++20 lambdas cannot capture structured bindings, and clang says so.)
        const std::string name = split;
        auto& s = *std::find_if(data->splits.begin(), data->splits.end(), [&](const auto& x) { return x.name == name; });
        ArrayFile a = array_for_split(file, s.rows, s.labels_file, which);
        (std::string(which) == "inputs" ? s.inputs : s.covariates) = std::move(a);
      }
    }

    Json& sum = ctx.summary();
    sum["kind"] = std::string(task_kind_name(data->kind));
    if (data->kind == TaskKind::Classification) {
      sum["classes"] = data->class_names.size();
      if (remapped) {
        // Labels that do not start at 0 or have gaps are mapped to 0..C-1, in this order.
        sum["class_labels"] = data->class_names;
      }
    } else {
      sum["targets"] = data->num_targets();
    }
    Json rows = Json::object();
    for (const auto& s : data->splits) rows[s.name] = s.rows;
    sum["rows"] = rows;
    ctx.publish("summary", std::make_shared<Table>(figures::dataset_summary_table(*data)));
    ctx.publish("data", std::move(data));
  }
};

}  // namespace

void register_dataset_load(PluginRegistrar& r) { r.add_node<DatasetLoad>(); }

}  // namespace caulk::adapters
