#include "caulk/units.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cstring>

#include "caulk/cancel.hpp"
#include "caulk/context.hpp"
#include "caulk/error.hpp"
#include "caulk/parallel.hpp"

namespace caulk {

UnitDispatcher::~UnitDispatcher() = default;

const std::string& UnitContext::type() const { return batch_.node_type->spec.type; }

std::shared_ptr<const Dataset> UnitContext::dataset(const std::string& port) const {
  for (const auto& [p, d] : batch_.datasets)
    if (p == port) return d;
  throw Error(fmt::format("node '{}': a unit asked for the Dataset on input '{}', which {}", batch_.node_id, port,
                          batch_.datasets.empty() ? "has none (the node has no Dataset input)" : "has none"));
}

bool UnitContext::has_dataset(const std::string& port) const {
  for (const auto& [p, d] : batch_.datasets)
    if (p == port) return true;
  return false;
}

std::unique_ptr<Node> UnitContext::make_node() const { return batch_.node_type->make(); }

void UnitContext::check_memory(std::size_t bytes, const std::string& what, const std::string& advice) const {
  const std::size_t limit = memory_limit();
  if (limit == 0 || bytes <= limit) return;
  throw Error(fmt::format("would need about {} for {}, more than the memory budget of {} (--memory-limit). {}",
                          format_bytes(static_cast<double>(bytes)), what, format_bytes(static_cast<double>(limit)), advice));
}

void UnitContext::throw_if_cancelled() const { caulk::throw_if_cancelled(); }

void UnitContext::log(const std::string& message) const {
  if (batch_.node) batch_.node->log(message);
}

UnitOutcome run_unit_caught(const UnitBatch& batch, const Json& payload, int rank) {
  UnitOutcome out;
  out.rank = rank;
  try {
    if (!batch.node_type || !batch.node_type->run_unit)
      throw Error(fmt::format("node type '{}' declares no run_unit", batch.node_type ? batch.node_type->spec.type : std::string("?")));
    UnitContext ctx(batch, rank);
    out.result = batch.node_type->run_unit(ctx, payload);
  } catch (const std::bad_alloc&) {
    out.error = "out of memory";
  } catch (const std::exception& e) {
    out.error = e.what();
    if (out.error.empty()) out.error = "failed without a message";
  } catch (...) {
    out.error = "failed with an exception that is not a std::exception";
  }
  return out;
}

UnitOutcome run_unit_caught(const UnitBatch& batch, std::size_t index, int rank) {
  return run_unit_caught(batch, (*batch.payloads)[index], rank);
}

std::vector<UnitOutcome> LocalUnitDispatcher::run(const UnitBatch& batch) {
  const auto& d = *batch.payloads;
  std::vector<UnitOutcome> out(d.size());
  parallel_for(d.size(), [&](std::size_t i) {
    if (const int signal = cancel_signal()) {  // no unit starts after a stop was requested
      out[i].error = Interrupted(signal).what();
      return;
    }
    out[i] = run_unit_caught(batch, i, current_rank());
    if (batch.on_unit_done) batch.on_unit_done();
  });
  return out;
}

namespace {
std::atomic<int> g_rank{0};
}
int current_rank() { return g_rank.load(); }
void set_current_rank(int rank) { g_rank.store(rank); }

// ------------------------------------------------------------------ conversions

namespace {

Json bytes_of(const void* data, std::size_t size) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  return Json::binary(std::vector<std::uint8_t>(p, p + size));
}

const std::vector<std::uint8_t>& binary_of(const Json& j, std::size_t expected, const char* what) {
  if (!j.is_binary()) throw Error(fmt::format("unit description: {} is not binary data", what));
  const auto& b = j.get_binary();
  if (b.size() != expected) throw Error(fmt::format("unit description: {} has {} bytes where {} were expected", what, b.size(), expected));
  return b;
}

Json classes_to_json(const std::vector<int>& c) {
  std::vector<std::int32_t> v(c.begin(), c.end());
  return bytes_of(v.data(), v.size() * sizeof(std::int32_t));
}

std::vector<int> classes_from_json(const Json& j, std::size_t rows) {
  const auto& b = binary_of(j, rows * sizeof(std::int32_t), "the class labels");
  std::vector<std::int32_t> v(rows);
  if (rows) std::memcpy(v.data(), b.data(), b.size());
  return std::vector<int>(v.begin(), v.end());
}

}  // namespace

Json matrix_to_json(const Matrix& m) {
  Json j = Json::object();
  j["rows"] = m.rows();
  j["cols"] = m.cols();
  j["f64_col_major"] = bytes_of(m.data(), static_cast<std::size_t>(m.size()) * sizeof(double));
  return j;
}

Matrix matrix_from_json(const Json& j) {
  const auto rows = j.at("rows").get<Eigen::Index>(), cols = j.at("cols").get<Eigen::Index>();
  if (rows < 0 || cols < 0) throw Error("unit description: a matrix has a negative shape");
  Matrix m(rows, cols);
  const auto& b = binary_of(j.at("f64_col_major"), static_cast<std::size_t>(rows * cols) * sizeof(double), "a matrix");
  if (m.size()) std::memcpy(m.data(), b.data(), b.size());
  return m;
}

Json array_file_to_json(const ArrayFile& f) {
  Json j = Json::object();
  if (!f.in_memory()) {
    j["path"] = f.path.string();
    return j;
  }
  // In memory (made by a node of this run): the contents travel with the description.
  const MatrixView& v = f.memory;
  j["rows"] = v.rows();
  j["cols"] = v.cols();
  j["f32"] = v.scalar_type() == ScalarType::F32;
  j["row_major"] = v.row_major();
  const std::size_t scalar = v.scalar_type() == ScalarType::F32 ? sizeof(float) : sizeof(double);
  j["data"] = bytes_of(v.data(), v.rows() * v.cols() * scalar);
  return j;
}

ArrayFile array_file_from_json(const Json& j) {
  if (j.contains("path")) return ArrayFile{j.at("path").get<std::string>(), {}};
  const auto rows = j.at("rows").get<std::size_t>(), cols = j.at("cols").get<std::size_t>();
  const bool f32 = j.at("f32").get<bool>();
  const std::size_t scalar = f32 ? sizeof(float) : sizeof(double);
  auto owner = std::make_shared<std::vector<std::uint8_t>>(binary_of(j.at("data"), rows * cols * scalar, "an in-memory array"));
  MatrixView view(owner->data(), rows, cols, f32 ? ScalarType::F32 : ScalarType::F64, j.at("row_major").get<bool>(), owner);
  return ArrayFile{{}, view};
}

Json model_embedding_to_json(const ModelEmbedding& m, const std::string& split) {
  Json j = Json::object();
  j["name"] = m.name;
  j["description"] = m.description;
  j["checkpoint"] = m.checkpoint.string();
  auto files = [&](const std::map<std::string, ArrayFile>& by_split) {
    Json out = Json::object();
    for (const auto& [s, f] : by_split)
      if (split.empty() || s == split) out[s] = array_file_to_json(f);
    return out;
  };
  j["features"] = files(m.features);
  j["source_probs"] = files(m.source_probs);
  return j;
}

ModelEmbedding model_embedding_from_json(const Json& j) {
  ModelEmbedding m;
  m.name = j.at("name").get<std::string>();
  m.description = j.at("description").get<std::string>();
  m.checkpoint = j.at("checkpoint").get<std::string>();
  for (const auto& [s, f] : j.at("features").items()) m.features[s] = array_file_from_json(f);
  for (const auto& [s, f] : j.at("source_probs").items()) m.source_probs[s] = array_file_from_json(f);
  return m;
}

Json dataset_to_json(const Dataset& d, const std::string& split) {
  Json j = Json::object();
  j["kind"] = std::string(task_kind_name(d.kind));
  j["class_names"] = d.class_names;
  Json splits = Json::array();
  for (const auto& s : d.splits) {
    if (!split.empty() && s.name != split) continue;
    Json js = Json::object();
    js["name"] = s.name;
    js["rows"] = s.rows;
    js["classes"] = classes_to_json(s.classes);
    js["classes_count"] = s.classes.size();
    js["targets"] = matrix_to_json(s.targets);
    if (s.inputs) js["inputs"] = array_file_to_json(*s.inputs);
    if (s.covariates) js["covariates"] = array_file_to_json(*s.covariates);
    js["labels_file"] = s.labels_file.string();
    splits.push_back(std::move(js));
  }
  j["splits"] = std::move(splits);
  return j;
}

std::shared_ptr<Dataset> dataset_from_json(const Json& j) {
  auto d = std::make_shared<Dataset>();
  const auto kind = j.at("kind").get<std::string>();
  d->kind = kind == task_kind_name(TaskKind::Regression) ? TaskKind::Regression : TaskKind::Classification;
  d->class_names = j.at("class_names").get<std::vector<std::string>>();
  for (const auto& js : j.at("splits")) {
    DatasetSplit s;
    s.name = js.at("name").get<std::string>();
    s.rows = js.at("rows").get<std::size_t>();
    s.classes = classes_from_json(js.at("classes"), js.at("classes_count").get<std::size_t>());
    s.targets = matrix_from_json(js.at("targets"));
    if (js.contains("inputs")) s.inputs = array_file_from_json(js.at("inputs"));
    if (js.contains("covariates")) s.covariates = array_file_from_json(js.at("covariates"));
    s.labels_file = js.at("labels_file").get<std::string>();
    d->splits.push_back(std::move(s));
  }
  return d;
}

Json params_to_json(const Params& p) {
  Json j = Json::object();
  for (const auto& [k, v] : p.values()) j[k] = value_to_json(v);
  return j;
}

Params params_from_json(const std::string& node_id, const Json& j) {
  std::map<std::string, Value> values;
  for (const auto& [k, v] : j.items()) values.emplace(k, value_from_json(v));
  return Params(node_id, std::move(values));
}

// ------------------------------------------------------------------ batch headers

Json unit_batch_header(const UnitBatch& batch) {
  Json h = Json::object();
  h["type"] = batch.node_type ? batch.node_type->spec.type : std::string();
  h["node"] = batch.node_id;
  h["params"] = batch.params ? params_to_json(*batch.params) : Json::object();
  Json datasets = Json::array();
  for (const auto& [port, d] : batch.datasets) datasets.push_back(Json{{"port", port}, {"dataset", dataset_to_json(*d)}});
  h["datasets"] = std::move(datasets);
  h["memory_limit"] = batch.memory_limit;
  return h;
}

std::string unit_batch_type(const Json& header) { return header.at("type").get<std::string>(); }

std::shared_ptr<RemoteUnitBatch> unit_batch_from_header(const Json& header, const NodeType* node_type) {
  auto remote = std::make_shared<RemoteUnitBatch>();
  remote->batch.node_id = header.at("node").get<std::string>();
  remote->params = params_from_json(remote->batch.node_id, header.at("params"));
  remote->batch.params = &remote->params;
  remote->batch.node_type = node_type;
  for (const Json& d : header.at("datasets"))
    remote->batch.datasets.emplace_back(d.at("port").get<std::string>(), dataset_from_json(d.at("dataset")));
  remote->batch.memory_limit = header.at("memory_limit").get<std::size_t>();
  return remote;
}

}  // namespace caulk
