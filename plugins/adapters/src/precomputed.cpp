// adapter.precomputed: a hub of models given by their precomputed feature files.
#include <fmt/format.h>

#include "adapters/src/nodes.hpp"
#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/figures/summaries.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/manifest.hpp"

namespace fs = std::filesystem;

namespace caulk::adapters {

namespace {

// Shapes of a model's files by split, checked without reading the data.
std::map<std::string, ArrayFile> arrays(const ManifestModel& m, const std::string& key, std::size_t* cols) {
  std::map<std::string, ArrayFile> out;
  for (const auto& [split, file] : m.split_paths(key)) {
    std::string what = fmt::format("model '{}' ({}, split '{}', {})", m.name, key, split, m.location(key));
    if (auto problem = io::input_file_problem(file)) throw DataError(file.string(), what + ": " + *problem);
    ArrayFile a{file, {}};
    std::pair<std::size_t, std::size_t> shape;
    try {
      shape = a.shape();
    } catch (const DataError& e) {
      throw DataError(e.file(), what + ": " + e.problem());
    }
    if (shape.first == 0 || shape.second == 0) throw DataError(file.string(), what + ": the array is empty");
    if (*cols == 0) *cols = shape.second;
    if (shape.second != *cols)
      throw DataError(file.string(), fmt::format("{}: has {} columns but other splits have {}", what, shape.second, *cols));
    out.emplace(split, std::move(a));
  }
  return out;
}

class Precomputed : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("adapter.precomputed", "A hub of models given by precomputed feature files (a hub manifest)");
    s.output("features", "Embeddings", "every model's features (and source-class probabilities when given)");
    s.output("summary", "Table", "per model and split: rows, feature columns, source-class columns");
    s.param(ParamSpec::path("manifest", "hub manifest (TOML): [hub] name, and [[model]] name, features, source_probs"));
    add_hub_data_check(s);
    return s;
  }

  void run(NodeContext& ctx) override {
    Manifest manifest = read_manifest(ctx.params().path("manifest"), hub_manifest_schema());
    auto out = std::make_shared<Embeddings>();
    out->hub = manifest.name;
    Json dims = Json::object();
    for (const auto& m : manifest.models) {
      ModelEmbedding e;
      e.name = m.name;
      e.description = m.string("description");
      std::size_t d = 0, cs = 0;
      e.features = arrays(m, "features", &d);
      if (m.has("source_probs")) {
        e.source_probs = arrays(m, "source_probs", &cs);
        for (const auto& [split, probs] : e.source_probs) {
          auto f = e.features.find(split);
          if (f == e.features.end())
            throw DataError(probs.path.string(),
                            fmt::format("model '{}': source_probs has split '{}' but features has not", m.name, split));
          if (probs.shape().first != f->second.shape().first)
            throw DataError(probs.path.string(),
                            fmt::format("model '{}': source_probs has {} rows for split '{}' but its features ({}) have {}", m.name,
                                        probs.shape().first, split, f->second.path.string(), f->second.shape().first));
        }
      }
      dims[m.name] = d;
      out->models.push_back(std::move(e));
    }
    ctx.summary()["hub"] = out->hub;
    ctx.summary()["models"] = out->models.size();
    ctx.summary()["feature_dims"] = dims;
    ctx.publish("summary", std::make_shared<Table>(figures::hub_summary_table(*out)));
    ctx.publish("features", std::move(out));
  }
};

}  // namespace

void register_precomputed(PluginRegistrar& r) { r.add_node<Precomputed>(); }

}  // namespace caulk::adapters
