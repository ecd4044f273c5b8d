// Data checks before running (caulk/data_check.hpp): the context a node's check gets, the helpers
// for files, and the pass over a validated pipeline.
#include "caulk/data_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "caulk/io/input_file.hpp"
#include "caulk/io/safetensors.hpp"
#include "caulk/pipeline.hpp"

namespace fs = std::filesystem;

namespace caulk {

DataCheck::DataCheck(const PipelineNode& node, std::vector<std::pair<std::string, const Json*>> input_facts)
    : node_(node), input_facts_(std::move(input_facts)) {}

const Params& DataCheck::params() const { return node_.params; }
const std::string& DataCheck::node_id() const { return node_.config.id; }

std::vector<const Json*> DataCheck::inputs(const std::string& port) const {
  std::vector<const Json*> out;
  for (const auto& [p, facts] : input_facts_)
    if (p == port) out.push_back(facts);
  return out;
}

const Json* DataCheck::input(const std::string& port) const {
  for (const auto& [p, facts] : input_facts_)
    if (p == port) return facts;
  return nullptr;
}

namespace {
// "labels" or "labels.test" (one split's entry of a SplitPaths table): its value's location.
SourceLocation locate(const PipelineNode& node, const std::string& param) {
  const auto dot = param.find('.');
  const std::string name = param.substr(0, dot);
  SourceLocation where = node.params.where(name);
  if (dot != std::string::npos && node.params.has(name) && node.params.get(name).is_table())
    for (const auto& [split, v] : node.params.get(name).as_table())
      if (split == param.substr(dot + 1) && !v.where().file.empty()) where = v.where();
  if (where.file.empty()) where = node.config.where;
  return where;
}
}  // namespace

void DataCheck::problem(const std::string& param, const std::string& message) {
  const std::string name = param.substr(0, param.find('.'));
  diagnostics_.push_back({param.empty() ? node_.config.where : locate(node_, param),
                          "node '" + node_.config.id + "': " + (param.empty() ? "" : "parameter '" + name + "': ") + message});
}

void DataCheck::problem_at(const Json& location, const std::string& message) {
  SourceLocation where = node_.config.where;
  std::string prefix = "node '" + node_.config.id + "': ";
  if (location.is_object() && location.contains("file")) {
    where.file = location.value("file", std::string());
    where.line = location.value("line", 0);
    where.column = location.value("column", 0);
    prefix = "node '" + location.value("node", std::string()) + "': parameter '" + location.value("param", std::string()) + "': ";
  }
  diagnostics_.push_back({where, prefix + message});
}

Json DataCheck::location_json(const std::string& param) const {
  const SourceLocation where = locate(node_, param);
  return Json{{"file", where.file},
              {"line", where.line},
              {"column", where.column},
              {"node", node_.config.id},
              {"param", param.substr(0, param.find('.'))}};
}

bool DataCheck::expect_file(const std::string& param, const fs::path& file, const std::string& what) {
  if (auto why = data_file_problem(file)) {
    problem(param, fmt::format("{} {}: {}", what, file.string(), *why));
    return false;
  }
  return true;
}

std::optional<io::NpyHeader> DataCheck::expect_npy(const std::string& param, const fs::path& file, const std::string& what,
                                                   std::optional<std::size_t> rows, const std::string& rows_from) {
  if (!expect_file(param, file, what)) return std::nullopt;
  io::NpyHeader h;
  try {
    h = io::NpyArray::read_header(file);
  } catch (const DataError& e) {
    if (auto hint = npy_conversion_hint(file)) {
      problem(param, fmt::format("{} {}: {}", what, file.string(), *hint));
    } else {
      problem(param, fmt::format("{} {}", what, e.what()));
    }
    return std::nullopt;
  }
  if (rows && (h.shape.empty() || h.shape[0] != *rows)) {
    problem(param, fmt::format("{} {} has {} rows (its first dimension) but {} {}; give files with one row per sample, "
                               "in the same order",
                               what, file.string(), h.shape.empty() ? 0 : h.shape[0], rows_from, *rows));
    return std::nullopt;
  }
  return h;
}

const Json* DataCheck::expect_split(const std::string& param, const std::string& port) {
  const Json* data = input(port);
  if (!data || !data->contains("splits")) return nullptr;
  const std::string& split = params().string(param);
  const Json& splits = data->at("splits");
  if (splits.contains(split)) return &splits.at(split);
  std::vector<std::string> names;
  for (const auto& [name, facts] : splits.items()) names.push_back(name);
  std::string list;
  for (std::size_t i = 0; i < names.size(); ++i) list += (i ? ", '" : "'") + names[i] + "'";
  problem(param, fmt::format("the data on input '{}' have no split '{}'{}; their splits are {} (name the split here, or give "
                             "its labels as {{ {} = \"FILE\", ... }} on the node that loads them)",
                             port, split, did_you_mean_among(split, names), list, split));
  return nullptr;
}

std::string did_you_mean_among(const std::string& name, const std::vector<std::string>& candidates) {
  auto close = closest_names(name, candidates);
  if (close.empty()) return {};
  std::string out;
  for (std::size_t i = 0; i < close.size(); ++i) out += (i ? (i + 1 == close.size() ? " or '" : ", '") : "'") + close[i] + "'";
  return " (did you mean " + out + "?)";
}

std::string sibling_suggestion(const fs::path& file) {
  std::error_code ec;
  fs::path folder = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  std::vector<std::string> names;
  // A folder holding very many files is not worth listing for a hint.
  std::size_t seen = 0;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end && seen < 10000; it.increment(ec), ++seen)
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  auto close = closest_names(file.filename().string(), names, 1);
  if (close.empty()) return {};
  return " (did you mean '" + (file.parent_path() / close.front()).string() + "'?)";
}

std::optional<std::string> data_file_problem(const fs::path& file) {
  auto problem = io::input_file_problem(file);
  if (!problem) return std::nullopt;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(file, ec))) {
    if (!file.parent_path().empty() && !fs::is_directory(file.parent_path(), ec))
      return *problem + " (its folder " + file.parent_path().string() + " does not exist either)";
    return *problem + sibling_suggestion(file);
  }
  return problem;
}

std::optional<std::string> safetensors_problem(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_directory(file, ec))
    if (auto why = data_file_problem(file)) return why;
  try {
    io::Checkpoint::open(file);  // maps every shard and validates its header; reads no tensor
  } catch (const DataError& e) {
    return e.file() == file.string() ? e.problem() : std::string(e.what());
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

std::optional<std::string> npy_conversion_hint(const fs::path& file) {
  // The first bytes only (the file is known to be regular: data_file_problem came first).
  std::ifstream in(file, std::ios::binary);
  std::string head(512, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  if (head.empty()) return std::nullopt;
  for (unsigned char c : head)
    if (c == 0 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t')) return std::nullopt;
  const std::string first_line = head.substr(0, head.find('\n'));
  const bool has_letters = std::any_of(first_line.begin(), first_line.end(), [](unsigned char c) { return std::isalpha(c) != 0; });
  const bool commas = first_line.find(',') != std::string::npos;
  std::string load = fmt::format("np.loadtxt('{}'{}{})", file.string(), commas ? ", delimiter=','" : "", has_letters ? ", skiprows=1" : "");
  fs::path target = file;
  target.replace_extension(".npy");
  if (target == file) target = file.string() + ".converted.npy";
  return fmt::format(
      "it is text ({}), not a .npy file; convert it with: /usr/bin/python3 -c \"import numpy as np; "
      "np.save('{}', {})\" and name the .npy file here",
      commas ? (has_letters ? "CSV with a header" : "CSV") : "numbers as text", target.string(), load);
}

void run_data_checks(const Pipeline& pipeline) {
  std::vector<Json> facts(pipeline.nodes.size(), Json::object());
  std::vector<Diagnostic> diags;
  for (std::size_t i : pipeline.order) {
    const PipelineNode& node = pipeline.nodes[i];
    if (!node.type || !node.type->spec.data_check) continue;
    std::vector<std::pair<std::string, const Json*>> inputs;
    for (const auto& in : node.inputs)
      for (const auto& source : in.sources) {
        // A source port's facts: the producing node's facts under the port's name, or all of them.
        const auto& f = facts[source.node];
        const Json* sf = f.contains(source.port) ? &f.at(source.port) : nullptr;
        inputs.emplace_back(in.port, sf);
      }
    DataCheck check(node, std::move(inputs));
    try {
      node.type->spec.data_check(check);
    } catch (const std::exception& e) {
      // A check that throws is a bug in the check; its message is still a problem to show.
      check.problem("", std::string("data check failed: ") + e.what());
    }
    facts[i] = std::move(check.facts());
    diags.insert(diags.end(), check.diagnostics().begin(), check.diagnostics().end());
  }
  if (diags.empty()) return;
  std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.where.file, a.where.line, a.where.column) < std::tie(b.where.file, b.where.line, b.where.column);
  });
  // The same problem found by several checks (two rankers on one hub) is said once.
  std::vector<Diagnostic> unique;
  std::set<std::pair<std::string, std::string>> said;
  for (auto& d : diags)
    if (said.emplace(d.where.str(), d.message).second) unique.push_back(std::move(d));
  throw PipelineError(std::move(unique));
}

}  // namespace caulk
