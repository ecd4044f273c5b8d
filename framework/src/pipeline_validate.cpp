// PipelineConfig -> Pipeline: every check against the node types' descriptions, before anything runs.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "caulk/graph.hpp"
#include "caulk/number_format.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/registry.hpp"

namespace fs = std::filesystem;

namespace caulk {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<std::string> closest_names(const std::string& name, const std::vector<std::string>& candidates, std::size_t limit) {
  std::vector<std::pair<std::size_t, std::string>> scored;
  std::size_t budget = std::max<std::size_t>(2, name.size() / 3);
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(name, c);
    // A name that contains the other (e.g. "logme" for "rank.logme") is close too.
    bool contains = std::min(name.size(), c.size()) >= 3 && (c.find(name) != std::string::npos || name.find(c) != std::string::npos);
    if (d <= budget || contains) scored.emplace_back(contains ? std::min(d, budget) : d, c);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  // Only the near-best: a one-letter slip should not also suggest names three edits away.
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scored.size() && i < limit && scored[i].first <= scored[0].first + 1; ++i) out.push_back(scored[i].second);
  return out;
}

std::size_t Pipeline::index_of(const std::string& id) const {
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].config.id == id) return i;
  return nodes.size();
}

namespace {

std::string quoted_list(const std::vector<std::string>& names, const char* conj = "or") {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += (i + 1 == names.size()) ? std::string(" ") + conj + " " : std::string(", ");
    out += "'" + names[i] + "'";
  }
  return out;
}

std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates) {
  auto close = closest_names(name, candidates);
  return close.empty() ? std::string() : " (did you mean " + quoted_list(close) + "?)";
}

class Validator {
 public:
  Validator(PipelineConfig config, const Registry& registry) : registry_(registry) { pipeline_.config = std::move(config); }

  void error(const SourceLocation& where, std::string message) { diags_.push_back({where, std::move(message)}); }

  fs::path base_dir_for(const Value& v) const {
    // Paths are relative to the file that names them; overrides from the command line to the
    // current directory.
    if (v.where().file == pipeline_.config.file.string()) return pipeline_.config.file.parent_path();
    return {};
  }

  Value resolve_path(const Value& v) const {
    fs::path p = v.as_string();
    if (p.is_relative()) p = base_dir_for(v) / p;
    Value out(p.lexically_normal().string());
    out.located(v.where());
    return out;
  }

  // Checks one given value against its spec; returns the value to keep (converted, resolved).
  // `owner` is "node 'ID'" or "observer 'ID'".
  std::optional<Value> check_param(const std::string& owner, const ParamSpec& spec, const Value& v) {
    std::string ctx = owner + ": parameter '" + spec.name + "'";
    auto wrong = [&](const std::string& want) {
      std::string found = v.kind_name();
      if (!v.is_table() && !v.is_array()) found.append(" ").append(v.to_toml());
      error(v.where(), ctx + " must be " + want + ", found " + found);
      return std::nullopt;
    };
    Value out = v;
    switch (spec.kind) {
      case ParamKind::Bool:
        if (!v.is_bool()) return wrong("a boolean (true or false)");
        break;
      case ParamKind::Int:
        if (!v.is_int()) return wrong("an integer");
        break;
      case ParamKind::Float:
        if (!v.is_number()) return wrong("a number");
        out = Value(v.as_number());
        out.located(v.where());
        break;
      case ParamKind::String:
        if (!v.is_string()) return wrong("a string");
        break;
      case ParamKind::Path:
        if (!v.is_string() || v.as_string().empty()) return wrong("a path (a non-empty string)");
        out = resolve_path(v);
        break;
      case ParamKind::SplitPaths:
        if (v.is_string() && !v.as_string().empty()) {
          out = resolve_path(v);
        } else if (v.is_table() && !v.as_table().empty()) {
          Value::Table t;
          for (const auto& [split, p] : v.as_table()) {
            if (!p.is_string() || p.as_string().empty()) {
              error(p.where(), ctx + ": split '" + split + "' must be a path (a non-empty string)");
              return std::nullopt;
            }
            t.emplace_back(split, resolve_path(p));
          }
          out = Value(std::move(t));
          out.located(v.where());
        } else {
          return wrong("a path, or a table of split name = path");
        }
        break;
      case ParamKind::List:
        if (!v.is_array()) return wrong("an array");
        break;
      case ParamKind::Table:
        if (!v.is_table()) return wrong("a table");
        break;
      case ParamKind::Any:
        break;
    }
    if (v.is_number() && (spec.min || spec.max)) {
      double x = v.as_number();
      if ((spec.min && x < *spec.min) || (spec.max && x > *spec.max) || std::isnan(x)) {
        error(v.where(), ctx + " must be in [" + (spec.min ? format_number(*spec.min) : "-inf") + ", " +
                             (spec.max ? format_number(*spec.max) : "inf") + "], found " + v.to_toml());
        return std::nullopt;
      }
    }
    if (!spec.choices.empty() && v.is_string() &&
        std::find(spec.choices.begin(), spec.choices.end(), v.as_string()) == spec.choices.end()) {
      std::vector<std::string> quoted;
      for (const auto& c : spec.choices) quoted.push_back("\"" + c + "\"");
      std::string list;
      for (std::size_t i = 0; i < quoted.size(); ++i) list += (i ? ", " : "") + quoted[i];
      error(v.where(), ctx + " must be one of " + list + ", found " + v.to_toml() + did_you_mean(v.as_string(), spec.choices));
      return std::nullopt;
    }
    if (spec.check) {
      std::string problem = spec.check(out);
      if (!problem.empty()) {
        error(v.where(), ctx + ": " + problem);
        return std::nullopt;
      }
    }
    return out;
  }

  void check_params(PipelineNode& node) {
    const NodeSpec& spec = node.type->spec;
    const std::string noun = spec.observer ? "observer" : "node";
    const std::string& id = node.config.id;
    const std::string owner = noun + " '" + id + "'";
    std::map<std::string, Value> values;
    std::set<std::string> given;
    std::vector<std::string> known;
    for (const auto& p : spec.params) known.push_back(p.name);
    for (const auto& [name, v] : node.config.params) {
      const ParamSpec* p = spec.find_param(name);
      if (!p) {
        std::string hint = did_you_mean(name, known);
        if (hint.empty()) hint = known.empty() ? " (it takes no parameters)" : " (it takes " + quoted_list(known, "and") + ")";
        error(v.where(), owner + ": unknown parameter '" + name + "' for " + spec.type + hint);
        continue;
      }
      given.insert(name);
      if (auto checked = check_param(owner, *p, v)) values[name] = std::move(*checked);
    }
    bool complete = true;
    for (const auto& p : spec.params) {
      if (given.count(p.name)) {
        complete = complete && values.count(p.name);
        continue;
      }
      if (p.required) {
        error(node.config.where,
              owner + ": missing required parameter '" + p.name + "' (" + std::string(param_kind_name(p.kind)) + ": " + p.doc + ")");
        complete = false;
      } else if (p.default_value) {
        Value d = *p.default_value;
        d.located(node.config.where);
        values[p.name] = std::move(d);
      }
    }
    std::set<std::string> declared;
    for (const auto& p : spec.params) declared.insert(p.name);
    node.params = Params(id, std::move(values), std::move(declared));
    if (complete && spec.check) {
      for (const auto& [param, problem] : spec.check(node.params)) {
        SourceLocation where = param.empty() ? node.config.where : node.params.where(param);
        if (where.file.empty()) where = node.config.where;
        error(where, owner + ": " + (param.empty() ? "" : "parameter '" + param + "': ") + problem);
      }
    }
  }

  void check_inputs(PipelineNode& node, const std::map<std::string, std::size_t>& ids) {
    const NodeSpec& spec = node.type->spec;
    const std::string& id = node.config.id;
    std::vector<std::string> ports;
    for (const auto& p : spec.inputs) ports.push_back(p.name);
    std::set<std::string> connected;
    for (const auto& binding : node.config.inputs) {
      const PortSpec* port = spec.find_input(binding.port);
      if (!port) {
        std::string hint = did_you_mean(binding.port, ports);
        if (hint.empty()) hint = ports.empty() ? " (it has no inputs)" : " (it has " + quoted_list(ports, "and") + ")";
        error(binding.where, "node '" + id + "': unknown input port '" + binding.port + "' for " + spec.type + hint);
        continue;
      }
      connected.insert(port->name);
      if (!port->multiple && binding.sources.size() > 1) {
        error(binding.where,
              "node '" + id + "': input '" + port->name + "' takes one source, found " + std::to_string(binding.sources.size()));
        continue;
      }
      ResolvedInput resolved;
      resolved.port = port->name;
      for (const auto& ref : binding.sources) {
        auto it = ids.find(ref.node);
        if (it == ids.end()) {
          std::vector<std::string> all;
          for (const auto& [n, i] : ids) all.push_back(n);
          error(ref.where,
                "node '" + id + "': input '" + port->name + "' names unknown node '" + ref.node + "'" + did_you_mean(ref.node, all));
          continue;
        }
        const PipelineNode& source = pipeline_.nodes[it->second];
        if (!source.type) continue;  // its type is unknown: already reported
        const NodeSpec& sspec = source.type->spec;
        const PortSpec* out = nullptr;
        if (ref.port.empty()) {
          // A bare node name means its one output, or else its one output of the input's type (a
          // node's Figure and Table outputs beside its main one need no port name).
          std::vector<const PortSpec*> fitting;
          for (const auto& o : sspec.outputs)
            if (sspec.outputs.size() == 1 || port->type == kAnyArtifact || o.type == kAnyArtifact || o.type == port->type)
              fitting.push_back(&o);
          // None fits: the first (main) output, which the type check below names.
          if (fitting.empty() && !sspec.outputs.empty()) fitting.push_back(&sspec.outputs.front());
          if (fitting.size() != 1) {
            std::vector<std::string> outs;
            for (const auto& o : sspec.outputs) outs.push_back(o.name);
            error(ref.where,
                  "node '" + id + "': input '" + port->name + "': node '" + ref.node + "' has " +
                      (outs.empty() ? std::string("no outputs")
                                    : std::to_string(outs.size()) + " outputs (" + quoted_list(outs, "and") + "), " +
                                          std::to_string(fitting.size()) + " of type " + port->type + "; write '" + ref.node + ".PORT'"));
            continue;
          }
          out = fitting.front();
        } else {
          out = sspec.find_output(ref.port);
          if (!out) {
            std::vector<std::string> outs;
            for (const auto& o : sspec.outputs) outs.push_back(o.name);
            error(ref.where, "node '" + id + "': input '" + port->name + "': node '" + ref.node + "' (" + sspec.type + ") has no output '" +
                                 ref.port + "'" + did_you_mean(ref.port, outs) +
                                 (outs.empty() ? "" : "; its outputs are " + quoted_list(outs, "and")));
            continue;
          }
        }
        if (port->type != kAnyArtifact && out->type != kAnyArtifact && port->type != out->type) {
          error(ref.where, "input '" + port->name + "' of node '" + id + "' expects " + port->type + " but '" + ref.text() + "' produces " +
                               out->type);
          continue;
        }
        if (out->optional && !port->optional) {
          error(ref.where, "input '" + port->name + "' of node '" + id + "' is required but '" + ref.text() +
                               "' is an optional output, published only sometimes (" + out->doc +
                               "); connect it to an optional input, or connect another output");
          continue;
        }
        resolved.sources.push_back({it->second, out->name});
        node.depends_on.push_back(it->second);
      }
      if (!resolved.sources.empty()) node.inputs.push_back(std::move(resolved));
    }
    for (const auto& p : spec.inputs)
      if (!p.optional && !connected.count(p.name))
        error(node.config.where, "node '" + id + "': input '" + p.name + "' (" + p.type + ") is not connected");
    std::sort(node.depends_on.begin(), node.depends_on.end());
    node.depends_on.erase(std::unique(node.depends_on.begin(), node.depends_on.end()), node.depends_on.end());
  }

  // For an unknown node type: the plugins that failed and may provide it, the plugin folders that
  // were searched, and how to add one.
  std::string where_types_come_from(const std::string& type) const {
    std::string out;
    for (const auto* p : registry_.failed_plugins_that_may_provide(type))
      out +=
          "\n  " +
          std::string(p->node_types_known ? "a plugin that was not loaded offers it: " : "a plugin that was not loaded may provide it: ") +
          p->problem();
    // (A registry filled by hand, as in tests, searched nothing: no hint then.)
    if (registry_.searched().empty()) return out;
    std::string folders;
    for (const auto& f : registry_.searched()) folders += (folders.empty() ? "" : ", ") + f.string();
    out += "\n  plugin folders searched: " + folders;
    out +=
        "\n  to add one: --plugin-path DIR, CAULK_PLUGIN_PATH=DIR, or plugins = [\"DIR\"] in [pipeline] "
        "(docs/pipeline-format.md)";
    return out;
  }

  Pipeline run() {
    auto& cfg = pipeline_.config;
    std::map<std::string, std::size_t> ids;
    for (std::size_t i = 0; i < cfg.nodes.size(); ++i) {
      const auto& n = cfg.nodes[i];
      if (n.id.empty()) continue;
      auto [it, fresh] = ids.emplace(n.id, i);
      if (!fresh) error(n.id_where, "duplicate node id '" + n.id + "' (first defined at " + cfg.nodes[it->second].id_where.str() + ")");
    }
    auto known_types = registry_.node_type_names();
    for (const auto& n : cfg.nodes) {
      PipelineNode node;
      node.config = n;
      node.type = registry_.find_node(n.type);
      if (!node.type && !n.type.empty())
        error(n.type_where, "node '" + n.id + "': unknown node type '" + n.type + "'" + did_you_mean(n.type, known_types) +
                                "; `caulk nodes` lists them" + where_types_come_from(n.type));
      pipeline_.nodes.push_back(std::move(node));
    }
    for (auto& node : pipeline_.nodes) {
      if (!node.type) continue;
      if (node.type->spec.observer) {
        error(node.config.type_where,
              "node '" + node.config.id + "': " + node.config.type +
                  " is a run observer, not a node: declare it under [[observer]] (type and params; no id or inputs needed)");
        continue;
      }
      check_params(node);
      check_inputs(node, ids);
    }
    std::map<std::string, std::size_t> observer_ids;
    for (const auto& o : cfg.observers) {
      PipelineNode observer;
      observer.config = o;
      observer.type = registry_.find_node(o.type);
      if (!o.id.empty())
        if (auto [it, fresh] = observer_ids.emplace(o.id, 0); !fresh)
          error(o.id_where, "observer '" + o.id + "' is declared twice; give the second an id of its own");
      if (!observer.type && !o.type.empty()) {
        std::vector<std::string> observer_types;
        for (const auto* t : registry_.node_types())
          if (t->spec.observer) observer_types.push_back(t->spec.type);
        error(o.type_where, "observer '" + o.id + "': unknown run observer type '" + o.type + "'" + did_you_mean(o.type, observer_types) +
                                "; `caulk nodes` lists them" + where_types_come_from(o.type));
      } else if (observer.type && !observer.type->spec.observer) {
        error(o.type_where, "observer '" + o.id + "': " + o.type + " is a node type, not a run observer: declare it under [[node]]");
        observer.type = nullptr;
      }
      if (observer.type) check_params(observer);
      pipeline_.observers.push_back(std::move(observer));
    }
    // Cycles and the run order come from the graph of the nodes that resolved.
    PipelineGraph graph(pipeline_);
    for (const auto& cycle : graph.cycles()) {
      std::vector<std::string> names;
      for (std::size_t i : cycle) names.push_back(pipeline_.nodes[i].config.id);
      std::string path;
      for (const auto& n : names) path += "'" + n + "' -> ";
      path += "'" + names.front() + "'";
      error(pipeline_.nodes[cycle.front()].config.where, "node '" + names.front() + "': the inputs form a cycle: " + path);
    }
    if (!diags_.empty()) {
      std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
      });
      throw PipelineError(std::move(diags_));
    }
    pipeline_.order = graph.topological_order();
    return std::move(pipeline_);
  }

 private:
  const Registry& registry_;
  Pipeline pipeline_;
  std::vector<Diagnostic> diags_;
};

}  // namespace

std::vector<Diagnostic> load_pipeline_plugins(const PipelineConfig& config, Registry& registry) {
  std::vector<Diagnostic> diags;
  for (const auto& entry : config.plugins) {
    std::string problem = registry.require_plugin(entry.text, config.file.parent_path());
    if (!problem.empty()) diags.push_back({entry.where, "plugin \"" + entry.text + "\": " + problem});
  }
  return diags;
}

Pipeline validate_pipeline(PipelineConfig config, const Registry& registry) { return Validator(std::move(config), registry).run(); }

}  // namespace caulk
