#include "caulk/mlp/mlp_checkpoint.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <regex>
#include <set>

#include "caulk/error.hpp"
#include "caulk/io/safetensors.hpp"

namespace fs = std::filesystem;

namespace caulk::mlp {

namespace {

int parse_int(const std::string& file, const std::string& key, const std::string& text) {
  int v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size())
    throw DataError(file, fmt::format("__metadata__ '{}' = '{}' is not an integer", key, text));
  return v;
}

double parse_double(const std::string& file, const std::string& key, const std::string& text) {
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw DataError(file, fmt::format("__metadata__ '{}' = '{}' is not a number", key, text));
}

std::string require_meta(const std::string& file, const std::map<std::string, std::string>& meta, const std::string& key) {
  auto it = meta.find(key);
  if (it == meta.end()) throw DataError(file, fmt::format("__metadata__ has no '{}' (is this a caulk MLP checkpoint?)", key));
  return it->second;
}

// A tensor as an out x in matrix (2-D) or a vector (1-D), shape checked.
Mat<float> matrix_tensor(const io::Checkpoint& c, const std::string& file, const std::string& name) {
  if (!std::binary_search(c.names().begin(), c.names().end(), name)) throw DataError(file, fmt::format("tensor '{}' is missing", name));
  const auto& info = c.info(name);
  if (info.shape.size() != 2)
    throw DataError(file, fmt::format("tensor '{}' must be 2-D (out x in), it has {} dimensions", name, info.shape.size()));
  if (!io::dtype_is_float(info.dtype))
    throw DataError(file, fmt::format("tensor '{}' is {}, not floating point", name, io::dtype_name(info.dtype)));
  const auto rows = static_cast<Eigen::Index>(info.shape[0]), cols = static_cast<Eigen::Index>(info.shape[1]);
  const std::vector<float> v = c.to_float(name);
  Mat<float> m = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(v.data(), rows, cols);
  if (!m.allFinite()) throw DataError(file, fmt::format("tensor '{}' holds a NaN or an infinity", name));
  return m;
}

Vec<float> vector_tensor(const io::Checkpoint& c, const std::string& file, const std::string& name, Eigen::Index expected) {
  if (!std::binary_search(c.names().begin(), c.names().end(), name)) throw DataError(file, fmt::format("tensor '{}' is missing", name));
  const auto& info = c.info(name);
  if (info.shape.size() != 1 || static_cast<Eigen::Index>(info.shape[0]) != expected)
    throw DataError(file, fmt::format("tensor '{}' must have shape [{}]", name, expected));
  if (!io::dtype_is_float(info.dtype))
    throw DataError(file, fmt::format("tensor '{}' is {}, not floating point", name, io::dtype_name(info.dtype)));
  const std::vector<float> v = c.to_float(name);
  Vec<float> out = Eigen::Map<const Vec<float>>(v.data(), expected);
  if (!out.allFinite()) throw DataError(file, fmt::format("tensor '{}' holds a NaN or an infinity", name));
  return out;
}

bool has(const io::Checkpoint& c, const std::string& name) { return std::binary_search(c.names().begin(), c.names().end(), name); }

Model<float> load(const fs::path& path, int depth) {
  const std::string file = path.string();
  if (depth > 4) throw DataError(file, "checkpoint bases nest more than 4 deep (a loop?)");
  const io::Checkpoint c = io::Checkpoint::open(path);
  const auto& meta = c.metadata();
  const std::string format = require_meta(file, meta, "format");
  if (format != kFormat) throw DataError(file, fmt::format("__metadata__ format is '{}', expected '{}'", format, kFormat));

  Model<float> base;
  const bool delta = meta.count("base") > 0;
  if (delta) {
    fs::path b = meta.at("base");
    if (b.is_relative()) b = path.parent_path() / b;
    try {
      base = load(b, depth + 1);
    } catch (const DataError& e) {
      throw DataError(file, fmt::format("its base checkpoint failed to load: {}", e.what()));
    }
  }

  // Which tensors the file holds, and the ones it is allowed to hold.
  static const std::regex layer_re(R"(layers\.(\d+)\.(weight|bias))"), adapter_re(R"(adapters\.(\d+)\.(down|up)\.(weight|bias))"),
      lora_re(R"(lora\.(\d+)\.(A|B))");
  std::set<int> layer_ids, adapter_ids, lora_ids;
  for (const auto& name : c.names()) {
    std::smatch mt;
    if (std::regex_match(name, mt, layer_re))
      layer_ids.insert(std::stoi(mt[1]));
    else if (std::regex_match(name, mt, adapter_re))
      adapter_ids.insert(std::stoi(mt[1]));
    else if (std::regex_match(name, mt, lora_re))
      lora_ids.insert(std::stoi(mt[1]));
    else
      throw DataError(file, fmt::format("tensor '{}' is not part of a caulk MLP (expected layers.N.weight/bias, "
                                        "adapters.N.down|up.weight|bias, lora.N.A|B)",
                                        name));
  }
  const int L = parse_int(file, "layers", require_meta(file, meta, "layers"));
  if (L < 2 || L > 10000) throw DataError(file, fmt::format("__metadata__ 'layers' = {} is out of range (2..10000)", L));

  Model<float> m;
  try {
    m.activation = parse_activation(require_meta(file, meta, "activation"));
  } catch (const DataError&) {
    throw;
  } catch (const Error& e) {
    throw DataError(file, fmt::format("__metadata__ 'activation': {}", e.what()));
  }
  const std::string output = require_meta(file, meta, "output");
  if (output != "softmax" && output != "identity")
    throw DataError(file, fmt::format("__metadata__ 'output' = '{}' (expected softmax or identity)", output));
  m.output = output == "softmax" ? Output::Softmax : Output::Identity;
  m.feature_layer = parse_int(file, "feature_layer", require_meta(file, meta, "feature_layer"));
  if (m.feature_layer < 0 || m.feature_layer > L - 2)
    throw DataError(file,
                    fmt::format("__metadata__ 'feature_layer' = {} is out of range for {} layers (0..{})", m.feature_layer, L, L - 2));
  for (int id : layer_ids)
    if (id >= L) throw DataError(file, fmt::format("tensor 'layers.{}.weight' is beyond the {} layers __metadata__ declares", id, L));

  for (int l = 0; l < L; ++l) {
    const std::string w = fmt::format("layers.{}.weight", l), b = fmt::format("layers.{}.bias", l);
    if (has(c, w) || has(c, b) || !delta) {
      Dense<float> d;
      d.W = matrix_tensor(c, file, w);
      if (!m.layers.empty() && d.W.cols() != m.layers.back().W.rows())
        throw DataError(file, fmt::format("tensor '{}' has shape [{}, {}] but layer {} has {} outputs (expected [out, {}])", w, d.W.rows(),
                                          d.W.cols(), l - 1, m.layers.back().W.rows(), m.layers.back().W.rows()));
      d.b = vector_tensor(c, file, b, d.W.rows());
      m.layers.push_back(std::move(d));
    } else if (l <= base.feature_layer && l < base.num_layers()) {
      m.layers.push_back(base.layers[l]);  // a frozen layer of the pre-trained model
    } else {
      throw DataError(file, fmt::format("tensor 'layers.{}.weight' is missing (not in this delta, and layer {} is not "
                                        "part of the base's feature extractor)",
                                        l, l));
    }
  }
  for (int id : adapter_ids) {
    Adapter<float> a;
    a.after = id;
    const std::string p = fmt::format("adapters.{}.", id);
    a.down.W = matrix_tensor(c, file, p + "down.weight");
    a.down.b = vector_tensor(c, file, p + "down.bias", a.down.W.rows());
    a.up.W = matrix_tensor(c, file, p + "up.weight");
    a.up.b = vector_tensor(c, file, p + "up.bias", a.up.W.rows());
    m.adapters.push_back(std::move(a));
  }
  for (int id : lora_ids) {
    Lora<float> lo;
    lo.layer = id;
    lo.A = matrix_tensor(c, file, fmt::format("lora.{}.A", id));
    lo.B = matrix_tensor(c, file, fmt::format("lora.{}.B", id));
    const std::string key = fmt::format("lora.{}.scale", id);
    lo.scale = meta.count(key) ? parse_double(file, key, meta.at(key)) : 1.0;
    m.loras.push_back(std::move(lo));
  }
  try {
    validate(m);
  } catch (const DataError&) {
    throw;
  } catch (const Error& e) {
    throw DataError(file, e.what());
  }
  return m;
}

std::map<std::string, std::string> structure_metadata(const Model<float>& m) {
  std::map<std::string, std::string> meta{{"format", kFormat},
                                          {"layers", std::to_string(m.num_layers())},
                                          {"activation", activation_name(m.activation)},
                                          {"output", m.output == Output::Softmax ? "softmax" : "identity"},
                                          {"feature_layer", std::to_string(m.feature_layer)}};
  for (const auto& lo : m.loras) meta[fmt::format("lora.{}.scale", lo.layer)] = fmt::format("{:.17g}", lo.scale);
  return meta;
}

template <class S>
void write(const fs::path& path, const std::vector<ParamRef<const S>>& params, const std::vector<std::string>* only,
           std::map<std::string, std::string> meta, io::OnExisting existing = io::OnExisting::Replace) {
  std::vector<io::Tensor> tensors;
  for (const auto& p : params) {
    if (only && std::find(only->begin(), only->end(), p.name) == only->end()) continue;
    io::Tensor t;
    t.name = p.name;
    t.dtype = io::DType::F32;
    if (p.is_bias)
      t.shape = {static_cast<std::size_t>(p.rows)};
    else
      t.shape = {static_cast<std::size_t>(p.rows), static_cast<std::size_t>(p.cols)};
    // Column-major out x in in memory; row-major on disk.
    Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>> src(p.data, p.rows, p.cols);
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = src.template cast<float>();
    t.data.resize(rm.size() * sizeof(float));
    std::memcpy(t.data.data(), rm.data(), t.data.size());
    tensors.push_back(std::move(t));
  }
  io::write_safetensors(path, tensors, meta, existing);
}

}  // namespace

Model<float> load_model(const fs::path& path) { return load(path, 0); }

void save_model(const fs::path& path, const Model<float>& m, const std::map<std::string, std::string>& metadata, io::OnExisting existing) {
  validate(m);
  auto meta = metadata;
  for (auto& [k, v] : structure_metadata(m)) meta[k] = v;
  write<float>(path, parameters(m), nullptr, meta, existing);
}

void save_delta(const fs::path& path, const Model<float>& m, const std::vector<std::string>& tensors, const fs::path& base,
                const std::map<std::string, std::string>& metadata) {
  validate(m);
  auto meta = metadata;
  for (auto& [k, v] : structure_metadata(m)) meta[k] = v;
  std::error_code ec;
  const fs::path folder = fs::absolute(path, ec).parent_path();
  fs::path rel = fs::relative(fs::absolute(base, ec), folder, ec);
  meta["base"] = (ec || rel.empty() ? fs::absolute(base, ec) : rel).generic_string();
  write<float>(path, parameters(m), &tensors, meta);
}

void save_tensors(const fs::path& path, const Model<double>& values, const std::map<std::string, std::string>& metadata) {
  write<double>(path, parameters(values), nullptr, metadata);
}

}  // namespace caulk::mlp
