#include "caulk/node.hpp"

#include <fmt/format.h>

#include <cmath>

#include "caulk/number_format.hpp"

namespace caulk {

Node::~Node() = default;

std::string_view param_kind_name(ParamKind k) {
  switch (k) {
    case ParamKind::Bool:
      return "bool";
    case ParamKind::Int:
      return "int";
    case ParamKind::Float:
      return "float";
    case ParamKind::String:
      return "string";
    case ParamKind::Path:
      return "path";
    case ParamKind::SplitPaths:
      return "path or {split = path}";
    case ParamKind::List:
      return "array";
    case ParamKind::Table:
      return "table";
    case ParamKind::Any:
      return "any";
  }
  return "?";
}

namespace {
ParamSpec make(std::string name, ParamKind kind, std::string doc) {
  ParamSpec p;
  p.name = std::move(name);
  p.kind = kind;
  p.doc = std::move(doc);
  return p;
}

}  // namespace

ParamSpec ParamSpec::flag(std::string name, bool def, std::string doc) {
  auto p = make(std::move(name), ParamKind::Bool, std::move(doc));
  p.default_value = Value(def);
  return p;
}
ParamSpec ParamSpec::integer(std::string name, std::int64_t def, std::string doc) {
  auto p = make(std::move(name), ParamKind::Int, std::move(doc));
  p.default_value = Value(def);
  return p;
}
ParamSpec ParamSpec::real(std::string name, double def, std::string doc) {
  auto p = make(std::move(name), ParamKind::Float, std::move(doc));
  p.default_value = Value(def);
  return p;
}
ParamSpec ParamSpec::string(std::string name, std::string def, std::string doc) {
  auto p = make(std::move(name), ParamKind::String, std::move(doc));
  p.default_value = Value(std::move(def));
  return p;
}
ParamSpec ParamSpec::choice(std::string name, std::string def, std::vector<std::string> choices, std::string doc) {
  auto p = make(std::move(name), ParamKind::String, std::move(doc));
  p.default_value = Value(std::move(def));
  p.choices = std::move(choices);
  return p;
}
ParamSpec ParamSpec::path(std::string name, std::string doc) {
  auto p = make(std::move(name), ParamKind::Path, std::move(doc));
  p.required = true;
  return p;
}
ParamSpec ParamSpec::split_paths(std::string name, std::string doc) {
  auto p = make(std::move(name), ParamKind::SplitPaths, std::move(doc));
  p.required = true;
  return p;
}
ParamSpec ParamSpec::list(std::string name, std::string doc) { return make(std::move(name), ParamKind::List, std::move(doc)); }
ParamSpec ParamSpec::table(std::string name, std::string doc) { return make(std::move(name), ParamKind::Table, std::move(doc)); }
ParamSpec ParamSpec::any(std::string name, std::string doc) { return make(std::move(name), ParamKind::Any, std::move(doc)); }

ParamSpec& ParamSpec::range(double lo, double hi) {
  min = lo;
  max = hi;
  return *this;
}
ParamSpec& ParamSpec::at_least(double lo) {
  min = lo;
  return *this;
}
ParamSpec& ParamSpec::optional() {
  required = false;
  default_value.reset();
  return *this;
}
ParamSpec& ParamSpec::mandatory() {
  required = true;
  default_value.reset();
  return *this;
}
ParamSpec& ParamSpec::validate(std::function<std::string(const Value&)> fn) {
  check = std::move(fn);
  return *this;
}

std::string ParamSpec::describe_constraints() const {
  std::string out(param_kind_name(kind));
  if (required)
    out += ", required";
  else if (default_value)
    out += ", default " + default_value->to_toml();
  else
    out += ", optional";
  if (min || max)
    out += ", range [" + (min ? format_number(*min) : std::string("-inf")) + ", " + (max ? format_number(*max) : std::string("inf")) + "]";
  if (!choices.empty()) {
    out += ", one of ";
    for (std::size_t i = 0; i < choices.size(); ++i) out += (i ? " | " : "") + ("\"" + choices[i] + "\"");
  }
  return out;
}

NodeSpec::NodeSpec(std::string type_name, std::string one_line_summary)
    : type(std::move(type_name)), summary(std::move(one_line_summary)) {}

NodeSpec& NodeSpec::input(std::string name, std::string t, std::string doc) {
  inputs.push_back({std::move(name), std::move(t), std::move(doc), false, false});
  return *this;
}
NodeSpec& NodeSpec::inputs_many(std::string name, std::string t, std::string doc) {
  inputs.push_back({std::move(name), std::move(t), std::move(doc), true, false});
  return *this;
}
NodeSpec& NodeSpec::input_optional(std::string name, std::string t, std::string doc) {
  inputs.push_back({std::move(name), std::move(t), std::move(doc), false, true});
  return *this;
}
NodeSpec& NodeSpec::output(std::string name, std::string t, std::string doc) {
  outputs.push_back({std::move(name), std::move(t), std::move(doc), false, false});
  return *this;
}
NodeSpec& NodeSpec::output_optional(std::string name, std::string t, std::string doc) {
  outputs.push_back({std::move(name), std::move(t), std::move(doc), false, true});
  return *this;
}
NodeSpec& NodeSpec::param(ParamSpec p) {
  params.push_back(std::move(p));
  return *this;
}

const PortSpec* NodeSpec::find_input(const std::string& name) const {
  for (const auto& p : inputs)
    if (p.name == name) return &p;
  return nullptr;
}
const PortSpec* NodeSpec::find_output(const std::string& name) const {
  for (const auto& p : outputs)
    if (p.name == name) return &p;
  return nullptr;
}
const ParamSpec* NodeSpec::find_param(const std::string& name) const {
  for (const auto& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------

Params::Params(std::string node_id, std::map<std::string, Value> values) : node_id_(std::move(node_id)), values_(std::move(values)) {}

Params::Params(std::string node_id, std::map<std::string, Value> values, std::set<std::string> declared)
    : node_id_(std::move(node_id)),
      values_(std::move(values)),
      declared_(std::make_shared<const std::set<std::string>>(std::move(declared))) {}

void Params::require_declared(const std::string& name) const {
  if (declared_ && !declared_->count(name))
    throw Error("node '" + node_id_ + "' reads parameter '" + name +
                "', which its node type does not declare (a bug in the node type: declare it in its spec)");
}

bool Params::has(const std::string& name) const {
  require_declared(name);
  return values_.count(name) != 0;
}

const Value& Params::get(const std::string& name) const {
  require_declared(name);
  auto it = values_.find(name);
  if (it == values_.end()) throw Error("node '" + node_id_ + "': parameter '" + name + "' is not set");
  return it->second;
}
bool Params::flag(const std::string& name) const { return get(name).as_bool(); }
std::int64_t Params::integer(const std::string& name) const { return get(name).as_int(); }
double Params::real(const std::string& name) const { return get(name).as_number(); }
const std::string& Params::string(const std::string& name) const { return get(name).as_string(); }
std::filesystem::path Params::path(const std::string& name) const { return get(name).as_string(); }

std::map<std::string, std::filesystem::path> Params::split_paths(const std::string& name) const {
  const Value& v = get(name);
  std::map<std::string, std::filesystem::path> out;
  if (v.is_string()) {
    out["train"] = v.as_string();
  } else {
    for (const auto& [split, p] : v.as_table()) out[split] = p.as_string();
  }
  return out;
}

SourceLocation Params::where(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? SourceLocation{} : it->second.where();
}

}  // namespace caulk
