#include "caulk/manifest.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <set>

#include "caulk/io/input_file.hpp"
#include "caulk/pipeline.hpp"  // closest_names
#include "toml_guard.hpp"

namespace fs = std::filesystem;

namespace caulk {

const Value* ManifestModel::get(const std::string& key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return &v;
  return nullptr;
}

std::map<std::string, fs::path> ManifestModel::split_paths(const std::string& key) const {
  std::map<std::string, fs::path> out;
  const Value* v = get(key);
  if (!v) return out;
  if (v->is_string()) {
    out["train"] = v->as_string();
  } else {
    for (const auto& [split, p] : v->as_table()) out[split] = p.as_string();
  }
  return out;
}

fs::path ManifestModel::path(const std::string& key) const {
  const Value* v = get(key);
  return v ? fs::path(v->as_string()) : fs::path();
}

std::string ManifestModel::string(const std::string& key, const std::string& fallback) const {
  const Value* v = get(key);
  return v ? v->as_string() : fallback;
}

bool ManifestModel::flag(const std::string& key, bool fallback) const {
  const Value* v = get(key);
  return v ? v->as_bool() : fallback;
}

std::string ManifestModel::location(const std::string& key) const {
  if (const Value* v = key.empty() ? nullptr : get(key)) return v->where().str();
  return where.str();
}

const ManifestModel* Manifest::find(const std::string& model) const {
  for (const auto& m : models)
    if (m.name == model) return &m;
  return nullptr;
}

namespace {

[[noreturn]] void fail(const SourceLocation& where, const std::string& problem) { throw DataError(where.str(), problem); }

class ManifestParser {
 public:
  ManifestParser(fs::path file, const ManifestSchema& schema) : file_(std::move(file)), schema_(schema) {}

  SourceLocation at(const toml::source_region& r) const {
    return {file_.string(), static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
  }

  Value resolved_path(const toml::node& n, const std::string& what) const {
    auto s = n.as_string();
    if (!s || s->get().empty()) fail(at(n.source()), what + " must be a path (a non-empty string)");
    fs::path p = s->get();
    if (p.is_relative()) p = file_.parent_path() / p;
    Value v(p.lexically_normal().string());
    v.located(at(n.source()));
    return v;
  }

  Value plain(const toml::node& n, const std::string& what) const {
    Value v;
    if (auto b = n.as_boolean())
      v = Value(b->get());
    else if (auto i = n.as_integer())
      v = Value(static_cast<std::int64_t>(i->get()));
    else if (auto f = n.as_floating_point())
      v = Value(f->get());
    else if (auto s = n.as_string())
      v = Value(s->get());
    else if (auto t = n.as_table()) {
      Value::Table entries;
      for (const auto& [k, e] : *t) entries.emplace_back(std::string(k.str()), plain(e, what + "." + std::string(k.str())));
      v = Value(std::move(entries));
    } else if (auto a = n.as_array()) {
      Value::Array items;
      for (const auto& e : *a) items.push_back(plain(e, what));
      v = Value(std::move(items));
    } else {
      fail(at(n.source()), what + ": dates and times are not supported");
    }
    v.located(at(n.source()));
    return v;
  }

  Value field(const ManifestSchema::Key& key, const toml::node& n, const std::string& ctx) const {
    std::string what = ctx + ": '" + key.name + "'";
    switch (key.kind) {
      case ManifestSchema::Key::Path:
        return resolved_path(n, what);
      case ManifestSchema::Key::SplitPaths: {
        if (n.is_string()) return resolved_path(n, what);
        auto t = n.as_table();
        if (!t || t->empty()) fail(at(n.source()), what + " must be a path or a table of split = path");
        Value::Table entries;
        for (const auto& [split, p] : *t)
          entries.emplace_back(std::string(split.str()), resolved_path(p, what + " split '" + std::string(split.str()) + "'"));
        Value v(std::move(entries));
        v.located(at(n.source()));
        return v;
      }
      case ManifestSchema::Key::String:
        if (!n.is_string()) fail(at(n.source()), what + " must be a string");
        return plain(n, what);
      case ManifestSchema::Key::Bool:
        if (!n.is_boolean()) fail(at(n.source()), what + " must be true or false");
        return plain(n, what);
      case ManifestSchema::Key::Number:
        if (!n.is_number()) fail(at(n.source()), what + " must be a number");
        return plain(n, what);
      case ManifestSchema::Key::Table:
        if (!n.is_table()) fail(at(n.source()), what + " must be a table");
        return plain(n, what);
    }
    return {};
  }

  Manifest parse(std::string_view text) {
    toml::table root;
    try {
      root = detail::parse_toml(text, file_.string());
    } catch (const detail::TomlTextError& e) {
      fail(e.where(), e.problem());
    }
    Manifest m;
    m.file = file_;
    m.name = file_.stem().string();
    SourceLocation start{file_.string(), 1, 1};
    bool saw_models = false;
    for (const auto& [key, value] : root) {
      std::string k(key.str());
      if (k == schema_.header) {
        auto t = value.as_table();
        if (!t) fail(at(value.source()), "[" + k + "] must be a table");
        for (const auto& [hk, hv] : *t) {
          std::string h(hk.str());
          if (h == "name") {
            if (!hv.is_string()) fail(at(hv.source()), "[" + k + "] name must be a string");
            m.name = hv.as_string()->get();
            continue;
          }
          if (std::find(schema_.header_keys.begin(), schema_.header_keys.end(), h) == schema_.header_keys.end()) {
            std::vector<std::string> allowed = schema_.header_keys;
            allowed.insert(allowed.begin(), "name");
            fail(at(hk.source()), "[" + k + "]: unknown key '" + h + "'" + hint(h, allowed));
          }
          m.header.emplace_back(h, plain(hv, "[" + k + "] " + h));
        }
      } else if (k == "model") {
        saw_models = true;
        auto a = value.as_array();
        if (!a || !a->is_array_of_tables()) fail(at(value.source()), "'model' must be an array of tables: write each under [[model]]");
        std::set<std::string> names;
        for (const auto& n : *a) {
          ManifestModel model = parse_model(*n.as_table(), m.models.size());
          if (!names.insert(model.name).second) fail(model.where, "duplicate model name '" + model.name + "'");
          m.models.push_back(std::move(model));
        }
      } else {
        fail(at(key.source()), "unknown top-level key '" + k + "' (a manifest has [" + schema_.header + "] and [[model]] entries)");
      }
    }
    if (!saw_models || m.models.empty()) fail(start, "the manifest lists no [[model]]");
    return m;
  }

 private:
  static std::string hint(const std::string& key, const std::vector<std::string>& allowed) {
    auto close = closest_names(key, allowed, 1);
    if (!close.empty()) return " (did you mean '" + close.front() + "'?)";
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    return " (allowed: " + list + ")";
  }

  ManifestModel parse_model(const toml::table& t, std::size_t index) {
    ManifestModel model;
    model.where = at(t.source());
    std::string ctx = "model #" + std::to_string(index + 1);
    const toml::node* name = t.get("name");
    if (!name) fail(model.where, ctx + ": missing 'name'");
    if (!name->is_string() || name->as_string()->get().empty()) fail(at(name->source()), ctx + ": 'name' must be a non-empty string");
    model.name = name->as_string()->get();
    for (char c : model.name)
      if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
        fail(at(name->source()), ctx + ": model name '" + model.name + "' must not contain '/', '\\' or control characters");
    ctx = "model '" + model.name + "'";
    std::vector<std::string> allowed{"name"};
    for (const auto& k : schema_.model_keys) allowed.push_back(k.name);
    for (const auto& [key, value] : t) {
      std::string k(key.str());
      if (k == "name") continue;
      auto it = std::find_if(schema_.model_keys.begin(), schema_.model_keys.end(), [&](const auto& x) { return x.name == k; });
      if (it == schema_.model_keys.end()) fail(at(key.source()), ctx + ": unknown key '" + k + "'" + hint(k, allowed));
      model.fields.emplace_back(k, field(*it, value, ctx));
    }
    for (const auto& k : schema_.model_keys)
      if (k.required && !model.has(k.name)) fail(model.where, ctx + ": missing '" + k.name + "'");
    return model;
  }

  fs::path file_;
  const ManifestSchema& schema_;
};

}  // namespace

Manifest parse_manifest_text(std::string_view text, const fs::path& file, const ManifestSchema& schema) {
  return ManifestParser(file, schema).parse(text);
}

Manifest read_manifest(const fs::path& file, const ManifestSchema& schema) {
  return parse_manifest_text(io::read_text_file(file), file, schema);
}

const ManifestSchema& hub_manifest_schema() {
  static const ManifestSchema schema{"hub",
                                     {"description"},
                                     {{"features", ManifestSchema::Key::SplitPaths, true},
                                      {"source_probs", ManifestSchema::Key::SplitPaths, false},
                                      {"description", ManifestSchema::Key::String, false}}};
  return schema;
}

const ManifestSchema& checkpoint_hub_schema() {
  static const ManifestSchema schema{"hub",
                                     {"description"},
                                     {{"checkpoint", ManifestSchema::Key::Path, true},
                                      {"description", ManifestSchema::Key::String, false},
                                      {"base", ManifestSchema::Key::Bool, false}}};
  return schema;
}

}  // namespace caulk
