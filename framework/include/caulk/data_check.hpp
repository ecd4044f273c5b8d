// Data checks: what `caulk check` and the start of `caulk run` find wrong with a pipeline's data
// files before anything runs (docs/pipeline-format.md, "Checking data before running").
//
// A node type may declare a data check (NodeSpec::data_check). It reads only what is cheap:
// whether a file is there and is a regular file, .npy and safetensors headers, manifests, CSV
// headers and row counts, a labels vector. It reports each problem at the FILE:LINE:COL of the
// pipeline parameter that names the file, with what is wrong and how to fix it. Checks of nodes
// that read files publish what they learned (their "facts": splits and rows of a Dataset, the
// models of a hub, ...) so that the checks downstream compare files named by different nodes
// (features against labels, a ranker's split against the labels' splits). A node whose data are
// only made while running publishes nothing, and the checks downstream of it skip what they
// cannot know.
#pragma once
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "caulk/error.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/json.hpp"

namespace caulk {

class Params;
struct Pipeline;
struct PipelineNode;

class DataCheck {
 public:
  DataCheck(const PipelineNode& node, std::vector<std::pair<std::string, const Json*>> input_facts);

  const Params& params() const;
  const std::string& node_id() const;
  // The facts published by the checks of the nodes feeding input `port` (one per source; null for
  // a source whose check published none).
  std::vector<const Json*> inputs(const std::string& port) const;
  // The first source's facts, or null.
  const Json* input(const std::string& port) const;
  // This node's facts, for the checks downstream.
  Json& facts() { return facts_; }

  // A problem with the value of parameter `param` (the node itself when ""), reported at its
  // FILE:LINE:COL as "node 'ID': parameter 'PARAM': MESSAGE".
  void problem(const std::string& param, const std::string& message);
  // A problem at a location that facts carry (location_json): e.g. the parameter of an upstream
  // node that named a file which disagrees with this node's. MESSAGE says which node.
  void problem_at(const Json& location, const std::string& message);
  // The location of parameter `param` of this node, to keep in facts: {file, line, column, node, param}.
  Json location_json(const std::string& param) const;

  // Helpers that report through problem() and return whether the file can be used.
  // The file exists and is a regular file; else "no such file" with a did-you-mean of a close
  // sibling, or "not a regular file (a FIFO)" (nothing is opened).
  bool expect_file(const std::string& param, const std::filesystem::path& file, const std::string& what);
  // expect_file, then the .npy header (io::NpyArray::read_header, only the header is read); a file
  // that is text (CSV) gets the one-line numpy command that converts it. `rows` (when given) is the
  // first dimension the array must have, `rows_from` says where that count comes from.
  std::optional<io::NpyHeader> expect_npy(const std::string& param, const std::filesystem::path& file, const std::string& what,
                                          std::optional<std::size_t> rows = std::nullopt, const std::string& rows_from = {});

  // The split named by string parameter `param` is one the Dataset on input `port` has (when that
  // Dataset's facts are known: {"splits": {NAME: {"rows", "file", "where"}}}, as dataset.load
  // publishes them); else a problem naming the splits there are. Returns the split's facts or null.
  const Json* expect_split(const std::string& param, const std::string& port);

  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  const PipelineNode& node_;
  std::vector<std::pair<std::string, const Json*>> input_facts_;
  Json facts_ = Json::object();
  std::vector<Diagnostic> diagnostics_;
};

// Why `file` cannot be read as a data file, or nothing when it is a regular file: "no such file
// (did you mean 'labels_test.npy'?)", "not a regular file (a FIFO)", ... Opens nothing.
std::optional<std::string> data_file_problem(const std::filesystem::path& file);

// " (did you mean 'NAME'?)" for the closest names in the folder of a missing `file`, or "".
std::string sibling_suggestion(const std::filesystem::path& file);

// Why `file` cannot be read as a safetensors checkpoint, or nothing: data_file_problem, or what is
// wrong with its header ("not a safetensors file: ...", a tensor whose bytes lie past the end).
// A folder counts as a sharded checkpoint (its index and every shard's header are checked).
// Reads only the headers.
std::optional<std::string> safetensors_problem(const std::filesystem::path& file);
// For a file that should be .npy but is text: "it is text (CSV with a header?), not .npy; convert
// it with: python3 -c \"...\"", or nothing when the file does not look like text.
std::optional<std::string> npy_conversion_hint(const std::filesystem::path& file);

// " (did you mean 'x'?)" among `candidates` (edit distance), or "".
std::string did_you_mean_among(const std::string& name, const std::vector<std::string>& candidates);

// Runs the data check of every node of a validated pipeline, in the run order, and throws
// PipelineError with every problem found (identical problems once), sorted by location.
void run_data_checks(const Pipeline& pipeline);

}  // namespace caulk
