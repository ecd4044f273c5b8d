// Pipeline files -> PipelineConfig: TOML syntax and the file's structure (not node types yet).
#include <toml++/toml.h>

#include <algorithm>
#include <tuple>

#include "caulk/io/input_file.hpp"
#include "caulk/pipeline.hpp"
#include "toml_guard.hpp"

namespace caulk {

namespace {

class Parser {
 public:
  explicit Parser(std::filesystem::path file) : file_(std::move(file)) {}

  SourceLocation at(const toml::source_region& r) const {
    return {file_.string(), static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
  }
  void error(const SourceLocation& where, std::string message) { diags_.push_back({where, std::move(message)}); }

  // A TOML value as a caulk Value (dates and times are refused).
  bool convert(const toml::node& n, Value& out, const std::string& context) {
    SourceLocation where = at(n.source());
    if (auto v = n.as_boolean()) {
      out = Value(v->get());
    } else if (auto v = n.as_integer()) {
      out = Value(static_cast<std::int64_t>(v->get()));
    } else if (auto v = n.as_floating_point()) {
      out = Value(v->get());
    } else if (auto v = n.as_string()) {
      out = Value(v->get());
    } else if (auto a = n.as_array()) {
      Value::Array items;
      for (const auto& e : *a) {
        Value item;
        if (!convert(e, item, context)) return false;
        items.push_back(std::move(item));
      }
      out = Value(std::move(items));
    } else if (auto t = n.as_table()) {
      Value::Table entries;
      for (const auto& [k, v] : *t) {
        Value item;
        if (!convert(v, item, context)) return false;
        entries.emplace_back(std::string(k.str()), std::move(item));
      }
      out = Value(std::move(entries));
    } else {
      error(where, context + ": dates and times are not supported as values");
      return false;
    }
    out.located(where);
    return true;
  }

  std::optional<std::string> string_field(const toml::table& t, std::string_view key, const std::string& context, SourceLocation* where_out,
                                          bool required, const SourceLocation& owner) {
    const toml::node* n = t.get(key);
    if (!n) {
      if (required) error(owner, context + ": missing '" + std::string(key) + "'");
      return std::nullopt;
    }
    if (where_out) *where_out = at(n->source());
    if (auto s = n->as_string()) return s->get();
    error(at(n->source()), context + ": '" + std::string(key) + "' must be a string");
    return std::nullopt;
  }

  static bool valid_id(const std::string& id) {
    if (id.empty()) return false;
    for (char c : id)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
    return true;
  }

  void parse_inputs(const toml::node& n, NodeConfig& node, const std::string& context) {
    auto table = n.as_table();
    if (!table) {
      error(at(n.source()), context + ": 'inputs' must be a table of port = \"node\" or port = [\"node\", ...]");
      return;
    }
    for (const auto& [key, value] : *table) {
      InputBinding b;
      b.port = std::string(key.str());
      b.where = at(key.source());
      auto add = [&](const toml::node& item) {
        auto s = item.as_string();
        if (!s) {
          error(at(item.source()), context + ": input '" + b.port + "' must name a node (\"node\" or \"node.port\")");
          return;
        }
        std::string text = s->get();
        InputRef ref;
        ref.where = at(item.source());
        auto dot = text.find('.');
        ref.node = text.substr(0, dot);
        if (dot != std::string::npos) ref.port = text.substr(dot + 1);
        if (ref.node.empty() || (dot != std::string::npos && ref.port.empty())) {
          error(ref.where, context + ": input '" + b.port + "' has a malformed source \"" + text + "\" (write \"node\" or \"node.port\")");
          return;
        }
        b.sources.push_back(std::move(ref));
      };
      if (auto a = value.as_array()) {
        b.written_as_list = true;
        if (a->empty()) error(at(value.source()), context + ": input '" + b.port + "' is an empty list");
        for (const auto& item : *a) add(item);
      } else {
        add(value);
      }
      node.inputs.push_back(std::move(b));
    }
  }

  // plugins = ["path/to/plugin.so", "path/to/folder", "name"]: what the pipeline needs loaded.
  void parse_plugins(const toml::node& n) {
    const auto* list = n.as_array();
    if (!list) {
      error(at(n.source()), "[pipeline]: 'plugins' must be a list of plugin paths or names, e.g. plugins = [\"build/my_plugin.so\"]");
      return;
    }
    for (const auto& item : *list) {
      const auto* s = item.as_string();
      if (!s || s->get().empty()) {
        error(at(item.source()),
              "[pipeline]: each entry of 'plugins' must be a non-empty string (a plugin's path, a folder, or a plugin name)");
        continue;
      }
      config_.plugins.push_back({s->get(), at(item.source())});
    }
  }

  // A [[node]], or an [[observer]] (caulk/run_observer.hpp): the same keys but inputs, and an id
  // that defaults to the type.
  void parse_node(const toml::table& t, std::size_t index, bool observer) {
    NodeConfig node;
    node.where = at(t.source());
    const std::string noun = observer ? "observer" : "node";
    std::string context = noun + " #" + std::to_string(index + 1);
    if (auto id = string_field(t, "id", context, &node.id_where, !observer, node.where)) {
      node.id = *id;
      if (!valid_id(node.id))
        error(node.id_where, context + ": id '" + node.id + "' may only contain letters, digits, '_' and '-'");
      else
        context = noun + " '" + node.id + "'";
    }
    if (auto type = string_field(t, "type", context, &node.type_where, true, node.where)) node.type = *type;
    if (observer && node.id.empty()) {
      node.id = node.type;
      node.id_where = node.type_where;
      if (!node.type.empty()) context = noun + " '" + node.id + "'";
    }
    for (const auto& [key, value] : t) {
      std::string k(key.str());
      if (k == "id" || k == "type") continue;
      if (k == "params") {
        node.params_where = at(value.source());
        auto params = value.as_table();
        if (!params) {
          error(at(value.source()), context + ": 'params' must be a table");
          continue;
        }
        for (const auto& [pk, pv] : *params) {
          Value v;
          if (convert(pv, v, context + ": parameter '" + std::string(pk.str()) + "'")) {
            // Point at the key for messages about the parameter as a whole.
            node.params.emplace_back(std::string(pk.str()), std::move(v));
          }
        }
      } else if (k == "inputs" && !observer) {
        parse_inputs(value, node, context);
      } else if (observer) {
        error(at(key.source()),
              context + ": unknown key '" + k + "' (an observer has type, params and an optional id; it takes no inputs)");
      } else {
        error(at(key.source()), context + ": unknown key '" + k + "' (a node has id, type, params and inputs)");
      }
    }
    (observer ? config_.observers : config_.nodes).push_back(std::move(node));
  }

  PipelineConfig parse(std::string_view text) {
    config_.file = file_;
    toml::table root;
    try {
      root = detail::parse_toml(text, file_.string());
    } catch (const detail::TomlTextError& e) {
      throw PipelineError({{e.where(), e.problem()}});
    }
    SourceLocation file_start{file_.string(), 1, 1};
    bool saw_pipeline = false;
    for (const auto& [key, value] : root) {
      std::string k(key.str());
      if (k == "pipeline") {
        saw_pipeline = true;
        auto t = value.as_table();
        if (!t) {
          error(at(value.source()), "[pipeline] must be a table");
          continue;
        }
        SourceLocation where = at(t->source());
        if (auto name = string_field(*t, "name", "[pipeline]", nullptr, true, where)) {
          config_.name = *name;
          if (config_.name.empty() || config_.name.find('/') != std::string::npos || config_.name == "." || config_.name == "..")
            error(at(t->get("name")->source()), "[pipeline]: name must be a non-empty name without '/'");
        }
        if (auto d = string_field(*t, "description", "[pipeline]", nullptr, false, where)) config_.description = *d;
        if (const toml::node* plugins = t->get("plugins")) parse_plugins(*plugins);
        for (const auto& [pk, pv] : *t) {
          std::string p(pk.str());
          if (p != "name" && p != "description" && p != "plugins")
            error(at(pk.source()), "[pipeline]: unknown key '" + p + "' (it has name, description and plugins)");
        }
      } else if (k == "node" || k == "observer") {
        auto a = value.as_array();
        if (!a || !a->is_array_of_tables()) {
          error(at(value.source()), "'" + k + "' must be an array of tables: write each " + k + " under [[" + k + "]]");
          continue;
        }
        std::size_t i = 0;
        for (const auto& n : *a) parse_node(*n.as_table(), i++, k == "observer");
      } else {
        error(at(key.source()), "unknown top-level key '" + k + "' (a pipeline has [pipeline], [[node]] and [[observer]] entries)");
      }
    }
    if (!saw_pipeline) error(file_start, "missing [pipeline] table with the pipeline's name");
    if (config_.nodes.empty() && diags_.empty()) error(file_start, "the pipeline has no [[node]]");
    if (!diags_.empty()) {
      // In file order, as a person reads the file.
      std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
      });
      throw PipelineError(std::move(diags_));
    }
    return std::move(config_);
  }

 private:
  std::filesystem::path file_;
  PipelineConfig config_;
  std::vector<Diagnostic> diags_;
};

}  // namespace

PipelineConfig parse_pipeline_text(std::string_view text, const std::filesystem::path& file) { return Parser(file).parse(text); }

PipelineConfig parse_pipeline_file(const std::filesystem::path& file) {
  std::string text;
  try {
    text = io::read_text_file(file);
  } catch (const DataError& e) {
    const bool missing = e.problem() == "cannot open: no such file";
    throw PipelineError({{{file.string(), 0, 0}, missing ? std::string("no such pipeline file") : e.problem()}});
  }
  return parse_pipeline_text(text, file);
}

void apply_overrides(PipelineConfig& config, const std::vector<std::string>& overrides) {
  std::vector<Diagnostic> diags;
  for (const auto& text : overrides) {
    SourceLocation where{"--set " + text, 0, 0};
    auto eq = text.find('=');
    auto dot = text.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq || dot == 0 || dot + 1 == eq) {
      diags.push_back({where, "malformed override: write --set NODE_ID.PARAM=VALUE"});
      continue;
    }
    std::string id = text.substr(0, dot), param = text.substr(dot + 1, eq - dot - 1), raw = text.substr(eq + 1);
    // An observer is named by its id (given ids have no dot; `--set report.title=...` needs
    // `id = "report"` on the observer).
    NodeConfig* node = nullptr;
    for (auto& n : config.nodes)
      if (n.id == id) node = &n;
    for (auto& n : config.observers)
      if (n.id == id) node = &n;
    if (!node) {
      std::vector<std::string> ids;
      for (const auto& n : config.nodes) ids.push_back(n.id);
      for (const auto& n : config.observers) ids.push_back(n.id);
      auto close = closest_names(id, ids);
      diags.push_back({where, std::string(config.observers.empty() ? "no node '" : "no node or observer '") + id + "' in " +
                                  config.file.string() + (close.empty() ? std::string() : " (did you mean '" + close.front() + "'?)")});
      continue;
    }
    Value v;
    try {
      std::string doc = "v = " + raw;
      toml::table t = detail::parse_toml(doc, "--set");
      const toml::node* n = t.get("v");
      if (n && t.size() == 1 && !n->is_date() && !n->is_time() && !n->is_date_time()) {
        Parser p("");
        if (!p.convert(*n, v, "")) v = Value(raw);
      } else {
        v = Value(raw);
      }
    } catch (const detail::TomlTextError&) {
      v = Value(raw);  // a bare word such as a path or a choice
    }
    std::function<void(Value&)> relocate = [&](Value& x) {
      x.located(where);
      if (x.is_array())
        for (auto& e : x.as_array()) relocate(e);
      if (x.is_table())
        for (auto& [k, e] : x.as_table()) relocate(e);
    };
    relocate(v);
    bool replaced = false;
    for (auto& [k, old] : node->params)
      if (k == param) {
        old = v;
        replaced = true;
      }
    if (!replaced) node->params.emplace_back(param, v);
  }
  if (!diags.empty()) throw PipelineError(std::move(diags));
}

}  // namespace caulk
