// The node contract.
//
// A node type describes itself (ports with artifact types, parameters with type, default, range and
// a one-line doc) separately from running. The engine validates a whole pipeline from these
// descriptions before anything runs; `caulk nodes` prints them and docs/nodes.md is generated from
// them. Running then gets its inputs and parameters already validated.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "caulk/value.hpp"

namespace caulk {

// ---------------------------------------------------------------------------------------------
// Parameters

enum class ParamKind {
  Bool,
  Int,
  Float,  // accepts integers too
  String,
  Path,        // a file or folder; relative paths are relative to the file that names them
  SplitPaths,  // one path (the split "train"), or a table of split name -> path
  List,        // an array (elements checked by `check` when needed)
  Table,       // a table (keys and values checked by `check` when needed)
  Any,         // anything; `check` decides
};
std::string_view param_kind_name(ParamKind k);

struct ParamSpec {
  std::string name;
  ParamKind kind = ParamKind::String;
  std::string doc;
  std::optional<Value> default_value;  // absent and !required: the parameter is optional
  bool required = false;
  std::optional<double> min, max;    // inclusive range for Int and Float
  std::vector<std::string> choices;  // allowed values for String
  // Extra validation of a given value: returns "" when fine, else the problem.
  std::function<std::string(const Value&)> check;

  // Builders. Each returns a spec that modifiers below refine.
  static ParamSpec flag(std::string name, bool def, std::string doc);
  static ParamSpec integer(std::string name, std::int64_t def, std::string doc);
  static ParamSpec real(std::string name, double def, std::string doc);
  static ParamSpec string(std::string name, std::string def, std::string doc);
  static ParamSpec choice(std::string name, std::string def, std::vector<std::string> choices, std::string doc);
  static ParamSpec path(std::string name, std::string doc);         // required
  static ParamSpec split_paths(std::string name, std::string doc);  // required
  static ParamSpec list(std::string name, std::string doc);         // optional
  static ParamSpec table(std::string name, std::string doc);        // optional
  static ParamSpec any(std::string name, std::string doc);          // optional

  ParamSpec& range(double lo, double hi);
  ParamSpec& at_least(double lo);
  ParamSpec& optional();  // no default, may be absent
  ParamSpec& mandatory();
  ParamSpec& validate(std::function<std::string(const Value&)> fn);

  // "int, default 11, range [1, 1000]" as `caulk nodes` prints it.
  std::string describe_constraints() const;
};

// ---------------------------------------------------------------------------------------------
// Ports

struct PortSpec {
  std::string name;
  std::string type;  // an artifact type name, or "Any"
  std::string doc;
  bool multiple = false;  // inputs: takes several sources (a list in the pipeline file)
  bool optional = false;  // inputs: may be left unconnected; outputs: may be left unpublished
};

struct NodeSpec {
  std::string type;     // "rank.logme"
  std::string summary;  // one line
  std::vector<PortSpec> inputs, outputs;
  std::vector<ParamSpec> params;
  // A run observer's type (caulk/run_observer.hpp), not a node's: a pipeline asks for it under
  // [[observer]], it has no ports, and it sees the run from outside the graph. Set by
  // PluginRegistrar::add_observer.
  bool observer = false;
  // False for a node whose results may differ between runs with the same inputs and parameters
  // (it reads the clock or the network): it runs every time, and so does whatever depends on it
  // (caulk/node_cache.hpp).
  bool cacheable = true;
  // Checks between parameters, before anything runs: returns (parameter name or "", problem).
  std::function<std::vector<std::pair<std::string, std::string>>(const class Params&)> check;
  // Checks of the data files the parameters name, cheap ones only (headers, manifests, row counts),
  // run by `caulk check` and at the start of `caulk run` once the pipeline is valid (caulk/data_check.hpp).
  std::function<void(class DataCheck&)> data_check;

  NodeSpec(std::string type_name, std::string one_line_summary);
  NodeSpec& input(std::string name, std::string type, std::string doc);
  NodeSpec& inputs_many(std::string name, std::string type, std::string doc);  // several sources
  NodeSpec& input_optional(std::string name, std::string type, std::string doc);
  NodeSpec& output(std::string name, std::string type, std::string doc);
  // An output the node publishes only when it has something to show (say when in `doc`): it may
  // feed optional inputs only, which are then left without it.
  NodeSpec& output_optional(std::string name, std::string type, std::string doc);
  NodeSpec& param(ParamSpec p);
  NodeSpec& not_cacheable() {  // see cacheable
    cacheable = false;
    return *this;
  }

  const PortSpec* find_input(const std::string& name) const;
  const PortSpec* find_output(const std::string& name) const;
  const ParamSpec* find_param(const std::string& name) const;
};

// ---------------------------------------------------------------------------------------------
// Validated parameter values of one node (defaults filled in, paths resolved).

class Params {
 public:
  Params() = default;
  Params(std::string node_id, std::map<std::string, Value> values);
  // Values of a node whose spec declares `declared`: asking for any other name (has, get...) is a
  // bug in the node type and throws, so a node cannot read a parameter the pipeline could never
  // set, nor keep a default of its own for one (docs/writing-plugins.md, section 3).
  Params(std::string node_id, std::map<std::string, Value> values, std::set<std::string> declared);

  bool has(const std::string& name) const;
  // The value; throws Error naming the node when absent (a node asking for an undeclared or
  // optional-and-absent parameter is a bug in the node).
  const Value& get(const std::string& name) const;
  bool flag(const std::string& name) const;
  std::int64_t integer(const std::string& name) const;
  double real(const std::string& name) const;
  const std::string& string(const std::string& name) const;
  std::filesystem::path path(const std::string& name) const;
  // A SplitPaths parameter as split -> path (a single path is the split "train").
  std::map<std::string, std::filesystem::path> split_paths(const std::string& name) const;
  SourceLocation where(const std::string& name) const;
  const std::map<std::string, Value>& values() const { return values_; }

 private:
  void require_declared(const std::string& name) const;

  std::string node_id_;
  std::map<std::string, Value> values_;
  std::shared_ptr<const std::set<std::string>> declared_;  // null: no spec to check against (a manifest entry)
};

// ---------------------------------------------------------------------------------------------
// Running

class NodeContext;

class Node {
 public:
  virtual ~Node();
  // Called once, on a worker thread, with every input available. Throw caulk::Error (or
  // DataError) to fail the node; the message reaches the user and run.json.
  virtual void run(NodeContext& ctx) = 0;
};

using NodeFactory = std::function<std::unique_ptr<Node>()>;

class RunObserver;  // caulk/run_observer.hpp
using ObserverFactory = std::function<std::unique_ptr<RunObserver>()>;

class UnitContext;
// A distributable node's unit (caulk/units.hpp): `static Json run_unit(UnitContext&, const Json&)`.
using UnitFunction = nlohmann::ordered_json (*)(UnitContext& ctx, const nlohmann::ordered_json& payload);

// A node type as the registry holds it.
struct NodeType {
  NodeSpec spec;
  NodeFactory make;                   // null for a run observer's type (spec.observer)
  std::string plugin;                 // the plugin that registered it
  std::shared_ptr<const void> owner;  // keeps the plugin's library loaded while in use
  UnitFunction run_unit = nullptr;    // set when the node class declares run_unit (distributable)
  ObserverFactory make_observer;      // set for a run observer's type (spec.observer) only
};

}  // namespace caulk
