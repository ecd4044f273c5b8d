// Parameters to and from safetensors, by name, for every family.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "caulk/error.hpp"
#include "caulk/io/safetensors.hpp"
#include "caulk/models/model.hpp"

namespace caulk::models {

namespace {

std::string shape_text(const std::vector<std::int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

std::vector<std::int64_t> signed_shape(const std::vector<std::size_t>& s) { return std::vector<std::int64_t>(s.begin(), s.end()); }

// At most this many names in one message; the count says how many there are.
std::string some_names(const std::vector<std::string>& names) {
  constexpr std::size_t kShown = 8;
  std::vector<std::string> quoted;
  for (std::size_t i = 0; i < names.size() && i < kShown; ++i) quoted.push_back("'" + names[i] + "'");
  std::string text = fmt::format("{}", fmt::join(quoted, ", "));
  if (names.size() > kShown) text += fmt::format(" and {} more", names.size() - kShown);
  return text;
}

}  // namespace

void load_weights(Model& model, const std::filesystem::path& path, bool partial) {
  const io::Checkpoint file = io::Checkpoint::open(path);
  const std::string where = path.string();
  std::map<std::string, ParameterInfo> known;
  for (auto& p : model.parameters()) known.emplace(p.name, p);

  // A tuned model's new head comes back with its weights.
  const auto& names = file.names();
  const auto has = [&](const std::string& n) { return std::binary_search(names.begin(), names.end(), n); };
  if (has("head.weight") && has("head.bias") && !known.count("head.weight")) {
    const auto& w = file.info("head.weight");
    if (w.shape.size() != 2 || w.shape[0] == 0)
      throw DataError(where, fmt::format("tensor 'head.weight' must be 2-D (outputs x features), it has shape {} (for {})",
                                         shape_text(signed_shape(w.shape)), model.describe()));
    const auto kind_it = file.metadata().find("caulk.head");
    const std::string kind = kind_it == file.metadata().end() ? "logits" : kind_it->second;
    if (kind != "logits" && kind != "values")
      throw DataError(where, fmt::format("__metadata__ 'caulk.head' = '{}' (expected logits or values)", kind));
    model.replace_head(static_cast<std::int64_t>(w.shape[0]), kind == "logits" ? OutputKind::Logits : OutputKind::Values, 0,
                       static_cast<std::int64_t>(w.shape[1]));
    if (model.head_parameters() != std::vector<std::string>{"head.weight", "head.bias"})
      throw DataError(where, fmt::format("tensors 'head.weight' and 'head.bias' are a new head, but {} names its head {}", model.describe(),
                                         some_names(model.head_parameters())));
    known.clear();
    for (auto& p : model.parameters()) known.emplace(p.name, p);
  }

  std::vector<std::string> unknown, mismatched, missing;
  for (const auto& name : names) {
    const auto it = known.find(name);
    if (it == known.end()) {
      unknown.push_back(name);
      continue;
    }
    const auto& info = file.info(name);
    if (signed_shape(info.shape) != it->second.shape)
      mismatched.push_back(fmt::format("'{}' is {} in the file but {} in the model", name, shape_text(signed_shape(info.shape)),
                                       shape_text(it->second.shape)));
    else if (!io::dtype_is_float(info.dtype))
      mismatched.push_back(fmt::format("'{}' is {}, not floating point", name, io::dtype_name(info.dtype)));
  }
  if (!partial)
    for (const auto& [name, info] : known)
      if (!has(name)) missing.push_back(name);
  std::vector<std::string> problems;
  if (!unknown.empty()) {
    std::vector<std::string> some;
    for (const auto& [name, info] : known) {
      if (some.size() == 4) break;
      some.push_back(name);
    }
    problems.push_back(
        fmt::format("{} tensor(s) are not parameters of the model: {} (its parameters are named like {}; "
                    "buffers such as BatchNorm statistics are not loaded: save named_parameters() only)",
                    unknown.size(), some_names(unknown), some_names(some)));
  }
  if (!mismatched.empty()) problems.push_back(fmt::format("shapes differ: {}", fmt::join(mismatched, "; ")));
  if (!missing.empty()) problems.push_back(fmt::format("{} parameter(s) are missing: {}", missing.size(), some_names(missing)));
  if (!problems.empty()) throw DataError(where, fmt::format("weights for {} do not fit: {}", model.describe(), fmt::join(problems, "; ")));

  for (const auto& name : names) {
    const std::vector<float> values = file.to_float(name);
    model.write_parameter(name, values);
  }
}

void save_weights(const Model& model, const std::filesystem::path& path, const std::vector<std::string>& only,
                  const std::map<std::string, std::string>& extra_metadata) {
  std::vector<ParameterInfo> chosen;
  const auto params = model.parameters();
  if (only.empty()) {
    chosen = params;
  } else {
    for (const auto& name : only) {
      auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.name == name; });
      if (it == params.end()) throw Error(fmt::format("{} has no parameter '{}' to save", model.describe(), name));
      chosen.push_back(*it);
    }
  }
  std::vector<io::SafetensorsWriter::Entry> entries;
  for (const auto& p : chosen) entries.push_back({p.name, io::DType::F32, std::vector<std::size_t>(p.shape.begin(), p.shape.end())});
  std::map<std::string, std::string> metadata = extra_metadata;
  metadata["caulk.model"] = model.name();
  if (!model.head_parameters().empty()) metadata["caulk.head"] = model.output_kind() == OutputKind::Logits ? "logits" : "values";
  io::SafetensorsWriter writer(path, entries, metadata);
  std::vector<float> buffer;
  for (const auto& p : chosen) {
    buffer.resize(static_cast<std::size_t>(p.size()));
    model.read_parameter(p.name, buffer);
    writer.write(p.name, buffer.data(), buffer.size() * sizeof(float));
  }
  writer.commit();
}

void save_fisher(const Model& model, const FisherDiagonal& fisher, const std::filesystem::path& path, double divide_by) {
  std::map<std::string, ParameterInfo> shapes;
  for (auto& p : model.parameters()) shapes.emplace(p.name, p);
  std::vector<io::SafetensorsWriter::Entry> entries;
  for (std::size_t i = 0; i < fisher.names.size(); ++i) {
    const auto it = shapes.find(fisher.names[i]);
    if (it == shapes.end() || it->second.size() != static_cast<std::int64_t>(fisher.values[i].size()))
      throw Error(fmt::format("the Fisher diagonal's '{}' does not match a parameter of {}", fisher.names[i], model.describe()));
    entries.push_back({fisher.names[i], io::DType::F32, std::vector<std::size_t>(it->second.shape.begin(), it->second.shape.end())});
  }
  io::SafetensorsWriter writer(path, entries, {{"caulk.model", model.name()}, {"caulk.content", "fisher_diagonal"}});
  std::vector<float> buffer;
  for (std::size_t i = 0; i < fisher.names.size(); ++i) {
    buffer.resize(fisher.values[i].size());
    for (std::size_t j = 0; j < buffer.size(); ++j) buffer[j] = float(fisher.values[i][j] / divide_by);
    writer.write(fisher.names[i], buffer.data(), buffer.size() * sizeof(float));
  }
  writer.commit();
}

}  // namespace caulk::models
