// The artifact types the framework defines. Plugins exchange these; their classes live in libcaulk.
#pragma once
#include <cstddef>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "caulk/artifact.hpp"
#include "caulk/matrix.hpp"

namespace caulk {

enum class TaskKind { Classification, Regression };
std::string_view task_kind_name(TaskKind k);

// A 2-D numeric array that lives in a .npy file (mapped when opened, released when the last view
// goes) or in memory (made by a node in this run).
// The identity of a file's current contents, for caches inside one process: canonical path, size
// and modification time. Empty when the file cannot be examined (then nothing should be cached).
std::string file_identity(const std::filesystem::path& path);

struct ArrayFile {
  std::filesystem::path path;  // empty when held in memory
  MatrixView memory;           // used when path is empty

  bool in_memory() const { return path.empty(); }
  // Maps the file and checks it is a finite 2-D (or 1-D) numeric array. Throws DataError naming
  // the file (and `what`, e.g. "features of model 'alpha'") on any problem.
  MatrixView open(const std::string& what = {}) const;
  // Rows and columns without reading the data (the header only, for files).
  std::pair<std::size_t, std::size_t> shape() const;
  std::string describe() const;  // the path, or "<memory>"
};

// ---------------------------------------------------------------------------------------------
// Dataset: labels (and optional model inputs and covariates) of a task, by named split.
struct DatasetSplit {
  std::string name;
  std::size_t rows = 0;
  std::vector<int> classes;             // classification: class index in [0, C) per row
  Matrix targets;                       // regression: rows x T
  std::optional<ArrayFile> inputs;      // rows x P model inputs
  std::optional<ArrayFile> covariates;  // rows x Q covariates z
  std::filesystem::path labels_file;
};

class Dataset : public Artifact {
 public:
  static constexpr std::string_view kType = "Dataset";
  std::string_view type_name() const override { return kType; }

  TaskKind kind = TaskKind::Classification;
  // Classification: the label as written in the file for each class index (sorted: numbers
  // numerically, text lexicographically). Labels that do not start at 0 or have gaps are mapped.
  std::vector<std::string> class_names;
  std::vector<DatasetSplit> splits;

  int num_classes() const { return static_cast<int>(class_names.size()); }
  // Classification: C; regression: the number of target columns.
  std::size_t num_targets() const;
  const DatasetSplit* find_split(const std::string& name) const;
  // Throws Error naming the split and the splits there are.
  const DatasetSplit& split(const std::string& name) const;
};

// ---------------------------------------------------------------------------------------------
// Embeddings: per model, features (N x D) and optionally the model's own source-class
// probabilities (N x Cs), by split, rows aligned with a Dataset's.
struct ModelEmbedding {
  std::string name;
  std::string description;
  std::map<std::string, ArrayFile> features;      // split -> N x D
  std::map<std::string, ArrayFile> source_probs;  // split -> N x Cs (may be empty)
  std::filesystem::path checkpoint;               // the model's weights, when known

  // Throw Error naming the model, the split and the splits there are.
  const ArrayFile& features_for(const std::string& split) const;
  const ArrayFile& source_probs_for(const std::string& split) const;
};

class Embeddings : public Artifact {
 public:
  static constexpr std::string_view kType = "Embeddings";
  std::string_view type_name() const override { return kType; }
  std::string hub;
  std::vector<ModelEmbedding> models;
};

// ---------------------------------------------------------------------------------------------
// Scores: one number per model from a ranker.
struct ModelScore {
  std::string model;
  double score = 0;
  double seconds = 0;  // time spent scoring this model
};

class Scores : public Artifact {
 public:
  static constexpr std::string_view kType = "Scores";
  std::string_view type_name() const override { return kType; }

  std::string method;  // e.g. "logme"
  bool higher_is_better = true;
  std::vector<ModelScore> scores;  // in the hub's order
  // LogME: each model's posterior mean weights, C x D (one row per class or target).
  std::map<std::string, Matrix> posterior_weights;

  const ModelScore* find(const std::string& model) const;
  // Model indices best first; equal scores keep the hub's order.
  std::vector<std::size_t> ranking() const;
};

// ---------------------------------------------------------------------------------------------
// Predictions: per model and split, N x C class probabilities or N x T regression values.
struct ModelPredictions {
  std::string model;
  std::map<std::string, Matrix> splits;
  const Matrix& on(const std::string& split) const;  // throws naming model and split
};

class Predictions : public Artifact {
 public:
  static constexpr std::string_view kType = "Predictions";
  std::string_view type_name() const override { return kType; }
  TaskKind kind = TaskKind::Classification;
  std::vector<ModelPredictions> models;
};

// ---------------------------------------------------------------------------------------------
// Checkpoint: model weights on disk (.safetensors or a sharded folder), as lazy handles.
// A caulk MLP is its weights alone (`path`). A model whose graph is a file of its own (a
// TorchScript module) names that file in `module`; `path` then holds the weights that override
// the module's own, by PyTorch's parameter names (how a tuned or merged model comes back), or is
// empty when the module's own weights are meant. Merge nodes work on `path` in both cases.
struct CheckpointRef {
  std::string model;
  std::filesystem::path path;
  std::filesystem::path fisher;  // optional diagonal Fisher with the same tensor names
  bool base = false;             // the pre-trained model task-vector methods subtract
  std::filesystem::path module;  // TorchScript .pt (empty: a caulk MLP checkpoint)
  std::string feature_method;    // the module's method returning N x D features ("": forward's input to the head)
};

class Checkpoint : public Artifact {
 public:
  static constexpr std::string_view kType = "Checkpoint";
  std::string_view type_name() const override { return kType; }
  std::vector<CheckpointRef> models;
};

// ---------------------------------------------------------------------------------------------
// Weights: input-dependent model weights w(x), N x K per split, and the fitted function's file.
class Weights : public Artifact {
 public:
  static constexpr std::string_view kType = "Weights";
  std::string_view type_name() const override { return kType; }
  std::vector<std::string> models;
  std::map<std::string, Matrix> splits;
  std::filesystem::path function_file;
};

// ---------------------------------------------------------------------------------------------
// Table: a titled table of text and numbers.
using TableCell = std::variant<std::monostate, std::string, double, long long>;

class Table : public Artifact {
 public:
  static constexpr std::string_view kType = "Table";
  std::string_view type_name() const override { return kType; }
  std::string title;
  std::vector<std::string> columns;
  std::vector<std::vector<TableCell>> rows;

  // Renderings: aligned plain text (stdout), GitHub markdown, CSV. Numbers with `digits`
  // significant digits.
  std::string to_text(int digits = 4) const;
  std::string to_markdown(int digits = 4) const;
  std::string to_csv() const;  // full precision
};

std::string format_cell(const TableCell& c, int digits);

// ---------------------------------------------------------------------------------------------
// Figure: something a node wants drawn. report.html shows every published Figure under the node
// that published it, with no knowledge of the node's type (docs/writing-plugins.md). A node
// declares an output port of type "Figure" and publishes it like a Table; run.json keeps it under
// nodes.ID.figures.PORT. The shared chart builders of caulk/figures/ make the spec.
class Figure : public Artifact {
 public:
  static constexpr std::string_view kType = "Figure";
  std::string_view type_name() const override { return kType; }
  std::string title;
  std::string caption;  // one line: what the figure shows
  // A Vega-Lite spec with its data inline (docs/report.md); null when the figure is images only.
  nlohmann::ordered_json spec;
  // PNG files the node wrote, relative to the run's output folder (e.g. "ID/norms.png"); each
  // file's own Title and Description (PNG tEXt) become its caption.
  std::vector<std::filesystem::path> images;
};

}  // namespace caulk
