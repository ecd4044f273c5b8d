#include "caulk/artifact_store.hpp"

#include <cmath>
#include <limits>

#include "caulk/artifacts.hpp"
#include "caulk/error.hpp"
#include "caulk/file_hash.hpp"
#include "caulk/io/durable.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/provenance.hpp"
#include "io/npy_format.hpp"

namespace fs = std::filesystem;

namespace caulk {

namespace {

// Writes a .npy (the bytes io::write_npy writes) into an entry's folder while it is staged
// (caulk/io/durable.hpp) and returns the XXH3-128 of its data. The file is not flushed: the entry
// records each array's hash and the folder is committed whole, and a reader rejects an entry whose
// arrays do not hash to what it says (Reader::open), so a crash that loses an array's bytes costs a
// recomputation, never a wrong result.
std::string write_npy_in_staged_folder(const fs::path& path, io::DType dtype, const std::vector<std::size_t>& shape, const void* data,
                                       std::size_t bytes) {
  const auto descr = io::detail::npy_descr(dtype);
  if (!descr) throw DataError(path.string(), "this type has no NumPy dtype");
  const std::string header = io::detail::npy_header_image(*descr, shape, false);
  const std::string_view body(static_cast<const char*>(data), bytes);
  io::write_file_in_staged_folder(path, {header, body});
  return content_hash(body);
}

// The hash an entry records for an array's data (written by write_npy_in_staged_folder).
constexpr const char* kArrayHashKey = "xxh3_128";

// A double as JSON: a number (the shortest text that reads back the same bits), or the strings
// "nan", "inf", "-inf".
Json number(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  return d;
}

double number_of(const Json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.get<std::string>();
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (s == "inf") return std::numeric_limits<double>::infinity();
  if (s == "-inf") return -std::numeric_limits<double>::infinity();
  throw Error("a number was expected, found \"" + s + "\"");
}

// Writes the arrays of one artifact into the entry's folder under names of its own.
struct Writer {
  const fs::path& dir;
  std::string prefix;
  FileHashCache& hashes;
  int count = 0;

  std::string next_name() { return prefix + "." + std::to_string(count++) + ".npy"; }

  Json matrix(const Matrix& m) {
    Json j = Json::object();
    j["rows"] = m.rows();
    j["cols"] = m.cols();
    if (m.size() == 0) return j;
    const std::string name = next_name();
    const RowMatrix c_order = m;  // float64, C order
    j[kArrayHashKey] =
        write_npy_in_staged_folder(dir / name, io::DType::F64, {static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())},
                                   c_order.data(), static_cast<std::size_t>(c_order.size()) * sizeof(double));
    j["npy"] = name;
    return j;
  }

  Json file(const fs::path& path) {
    Json j = Json::object();
    j["path"] = path.string();
    if (path.empty()) return j;
    auto h = output_hash(path, hashes);
    if (!h) throw Error("cannot hash " + path.string() + ", which the artifact names");
    j["xxh3_128"] = *h;
    return j;
  }

  Json array_file(const ArrayFile& a) {
    if (!a.in_memory()) return file(a.path);
    const MatrixView& v = a.memory;
    Json j = Json::object();
    j["rows"] = v.rows();
    j["cols"] = v.cols();
    j["dtype"] = v.scalar_type() == ScalarType::F32 ? "F32" : "F64";
    if (v.empty()) return j;
    const std::string name = next_name();
    const std::vector<std::size_t> shape{v.rows(), v.cols()};
    // Element by element into C order, in the view's own type: a float32 array stays float32
    // (a float converted to double and back is the same float).
    if (v.scalar_type() == ScalarType::F32) {
      RowMatrixF m(static_cast<Eigen::Index>(v.rows()), static_cast<Eigen::Index>(v.cols()));
      for (std::size_t r = 0; r < v.rows(); ++r)
        for (std::size_t c = 0; c < v.cols(); ++c)
          m(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)) = static_cast<float>(v(r, c));
      j[kArrayHashKey] =
          write_npy_in_staged_folder(dir / name, io::DType::F32, shape, m.data(), static_cast<std::size_t>(m.size()) * sizeof(float));
    } else {
      RowMatrix m(static_cast<Eigen::Index>(v.rows()), static_cast<Eigen::Index>(v.cols()));
      v.rows_to(0, v.rows(), m);
      j[kArrayHashKey] =
          write_npy_in_staged_folder(dir / name, io::DType::F64, shape, m.data(), static_cast<std::size_t>(m.size()) * sizeof(double));
    }
    j["npy"] = name;
    return j;
  }
};

struct Reader {
  const fs::path& dir;
  FileHashCache& hashes;

  // Arrays are not flushed one by one when stored (write_npy_in_staged_folder): their bytes must
  // be those the entry recorded.
  static void verify(const io::NpyArray& a, const std::string& expected) {
    const std::string_view bytes(static_cast<const char*>(a.data()), a.size() * io::dtype_size(a.dtype()));
    if (content_hash(bytes) != expected) throw DataError(a.path().string(), "does not hold the data its entry recorded");
  }

  io::NpyArray open(const Json& j, io::DType dtype, std::size_t rows, std::size_t cols) const {
    const std::string name = j.at("npy").get<std::string>();
    if (name.find('/') != std::string::npos || name.empty() || name[0] == '.') throw Error("bad array name \"" + name + "\"");
    io::NpyArray a = io::NpyArray::open(dir / name);
    if (a.dtype() != dtype || a.fortran_order() || a.ndim() != 2 || a.shape()[0] != rows || a.shape()[1] != cols)
      throw DataError((dir / name).string(), "not the array the header describes");
    verify(a, j.at(kArrayHashKey).get<std::string>());
    return a;
  }

  Matrix matrix(const Json& j) const {
    const auto rows = j.at("rows").get<std::size_t>(), cols = j.at("cols").get<std::size_t>();
    if (!j.contains("npy")) {
      if (rows != 0 && cols != 0) throw Error("an array without its file");
      return Matrix(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
    }
    const io::NpyArray a = open(j, io::DType::F64, rows, cols);
    Matrix m(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
    const RowMatrix whole =
        Eigen::Map<const RowMatrix>(static_cast<const double*>(a.data()), static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
    m = whole;
    return m;
  }

  fs::path file(const Json& j) const {
    fs::path path = j.at("path").get<std::string>();
    if (path.empty()) return path;
    auto h = output_hash(path, hashes);
    if (!h || *h != j.at("xxh3_128").get<std::string>()) throw DataError(path.string(), "changed since the entry was made");
    return path;
  }

  ArrayFile array_file(const Json& j) const {
    ArrayFile a;
    if (j.contains("path")) {
      a.path = file(j);
      if (a.path.empty()) throw Error("a file-backed array without its path");
      return a;
    }
    const auto rows = j.at("rows").get<std::size_t>(), cols = j.at("cols").get<std::size_t>();
    const std::string dtype = j.at("dtype").get<std::string>();
    if (dtype != "F32" && dtype != "F64") throw Error("unknown dtype " + dtype);
    const auto r = static_cast<Eigen::Index>(rows), c = static_cast<Eigen::Index>(cols);
    if (dtype == "F32") {
      auto m = std::make_shared<RowMatrixF>(r, c);
      if (m->size() > 0) std::memcpy(m->data(), open(j, io::DType::F32, rows, cols).data(), rows * cols * sizeof(float));
      a.memory = MatrixView::of(std::shared_ptr<const RowMatrixF>(std::move(m)));
    } else {
      auto m = std::make_shared<RowMatrix>(r, c);
      if (m->size() > 0) std::memcpy(m->data(), open(j, io::DType::F64, rows, cols).data(), rows * cols * sizeof(double));
      a.memory = MatrixView::of(std::shared_ptr<const RowMatrix>(std::move(m)));
    }
    return a;
  }
};

Json task_kind_json(TaskKind k) { return k == TaskKind::Classification ? "classification" : "regression"; }
TaskKind task_kind_of(const Json& j) {
  const std::string s = j.get<std::string>();
  if (s == "classification") return TaskKind::Classification;
  if (s == "regression") return TaskKind::Regression;
  throw Error("unknown task kind " + s);
}

Json save_dataset(const Dataset& d, Writer& w) {
  Json j = Json::object();
  j["kind"] = task_kind_json(d.kind);
  j["class_names"] = d.class_names;
  Json splits = Json::array();
  for (const auto& s : d.splits) {
    Json sj = Json::object();
    sj["name"] = s.name;
    sj["rows"] = s.rows;
    std::vector<std::int64_t> classes(s.classes.begin(), s.classes.end());
    if (!classes.empty()) {
      const std::string name = w.next_name();
      sj["classes_xxh3_128"] =
          write_npy_in_staged_folder(w.dir / name, io::DType::I64, {classes.size()}, classes.data(), classes.size() * sizeof(std::int64_t));
      sj["classes"] = name;
    }
    sj["targets"] = w.matrix(s.targets);
    if (s.inputs) sj["inputs"] = w.array_file(*s.inputs);
    if (s.covariates) sj["covariates"] = w.array_file(*s.covariates);
    sj["labels_file"] = s.labels_file.string();  // a record of where the labels came from; the key covers its content
    splits.push_back(std::move(sj));
  }
  j["splits"] = std::move(splits);
  return j;
}

std::shared_ptr<Artifact> load_dataset(const Json& j, const Reader& r) {
  auto d = std::make_shared<Dataset>();
  d->kind = task_kind_of(j.at("kind"));
  d->class_names = j.at("class_names").get<std::vector<std::string>>();
  for (const auto& sj : j.at("splits")) {
    DatasetSplit s;
    s.name = sj.at("name").get<std::string>();
    s.rows = sj.at("rows").get<std::size_t>();
    if (sj.contains("classes")) {
      const std::string name = sj.at("classes").get<std::string>();
      if (name.find('/') != std::string::npos || name.empty() || name[0] == '.') throw Error("bad array name \"" + name + "\"");
      const io::NpyArray classes = io::NpyArray::open(r.dir / name);
      Reader::verify(classes, sj.at("classes_xxh3_128").get<std::string>());
      for (std::int64_t c : classes.to_int64()) {
        if (c < std::numeric_limits<int>::min() || c > std::numeric_limits<int>::max()) throw Error("class index out of range");
        s.classes.push_back(static_cast<int>(c));
      }
    }
    s.targets = r.matrix(sj.at("targets"));
    if (sj.contains("inputs")) s.inputs = r.array_file(sj.at("inputs"));
    if (sj.contains("covariates")) s.covariates = r.array_file(sj.at("covariates"));
    s.labels_file = sj.at("labels_file").get<std::string>();
    d->splits.push_back(std::move(s));
  }
  return d;
}

Json save_embeddings(const Embeddings& e, Writer& w) {
  Json j = Json::object();
  j["hub"] = e.hub;
  Json models = Json::array();
  for (const auto& m : e.models) {
    Json mj = Json::object();
    mj["name"] = m.name;
    mj["description"] = m.description;
    Json features = Json::object(), probs = Json::object();
    for (const auto& [split, f] : m.features) features[split] = w.array_file(f);
    for (const auto& [split, f] : m.source_probs) probs[split] = w.array_file(f);
    mj["features"] = std::move(features);
    mj["source_probs"] = std::move(probs);
    mj["checkpoint"] = m.checkpoint.string();  // a path for later nodes; whoever reads it hashes it
    models.push_back(std::move(mj));
  }
  j["models"] = std::move(models);
  return j;
}

std::shared_ptr<Artifact> load_embeddings(const Json& j, const Reader& r) {
  auto e = std::make_shared<Embeddings>();
  e->hub = j.at("hub").get<std::string>();
  for (const auto& mj : j.at("models")) {
    ModelEmbedding m;
    m.name = mj.at("name").get<std::string>();
    m.description = mj.at("description").get<std::string>();
    for (const auto& [split, f] : mj.at("features").items()) m.features[split] = r.array_file(f);
    for (const auto& [split, f] : mj.at("source_probs").items()) m.source_probs[split] = r.array_file(f);
    m.checkpoint = mj.at("checkpoint").get<std::string>();
    e->models.push_back(std::move(m));
  }
  return e;
}

Json save_scores(const Scores& s, Writer& w) {
  Json j = Json::object();
  j["method"] = s.method;
  j["higher_is_better"] = s.higher_is_better;
  Json scores = Json::array();
  for (const auto& m : s.scores) scores.push_back(Json{{"model", m.model}, {"score", number(m.score)}, {"seconds", number(m.seconds)}});
  j["scores"] = std::move(scores);
  Json weights = Json::object();
  for (const auto& [model, m] : s.posterior_weights) weights[model] = w.matrix(m);
  j["posterior_weights"] = std::move(weights);
  return j;
}

std::shared_ptr<Artifact> load_scores(const Json& j, const Reader& r) {
  auto s = std::make_shared<Scores>();
  s->method = j.at("method").get<std::string>();
  s->higher_is_better = j.at("higher_is_better").get<bool>();
  for (const auto& m : j.at("scores"))
    s->scores.push_back({m.at("model").get<std::string>(), number_of(m.at("score")), number_of(m.at("seconds"))});
  for (const auto& [model, m] : j.at("posterior_weights").items()) s->posterior_weights[model] = r.matrix(m);
  return s;
}

Json save_predictions(const Predictions& p, Writer& w) {
  Json j = Json::object();
  j["kind"] = task_kind_json(p.kind);
  Json models = Json::array();
  for (const auto& m : p.models) {
    Json splits = Json::object();
    for (const auto& [split, values] : m.splits) splits[split] = w.matrix(values);
    models.push_back(Json{{"model", m.model}, {"splits", std::move(splits)}});
  }
  j["models"] = std::move(models);
  return j;
}

std::shared_ptr<Artifact> load_predictions(const Json& j, const Reader& r) {
  auto p = std::make_shared<Predictions>();
  p->kind = task_kind_of(j.at("kind"));
  for (const auto& mj : j.at("models")) {
    ModelPredictions m;
    m.model = mj.at("model").get<std::string>();
    for (const auto& [split, values] : mj.at("splits").items()) m.splits[split] = r.matrix(values);
    p->models.push_back(std::move(m));
  }
  return p;
}

Json save_checkpoint(const Checkpoint& c, Writer& w) {
  Json models = Json::array();
  for (const auto& m : c.models)
    models.push_back(Json{{"model", m.model},
                          {"path", w.file(m.path)},
                          {"fisher", w.file(m.fisher)},
                          {"base", m.base},
                          {"module", w.file(m.module)},
                          {"feature_method", m.feature_method}});
  return Json{{"models", std::move(models)}};
}

std::shared_ptr<Artifact> load_checkpoint(const Json& j, const Reader& r) {
  auto c = std::make_shared<Checkpoint>();
  for (const auto& mj : j.at("models"))
    c->models.push_back({mj.at("model").get<std::string>(), r.file(mj.at("path")), r.file(mj.at("fisher")), mj.at("base").get<bool>(),
                         r.file(mj.at("module")), mj.at("feature_method").get<std::string>()});
  return c;
}

Json save_weights(const Weights& wt, Writer& w) {
  Json j = Json::object();
  j["models"] = wt.models;
  Json splits = Json::object();
  for (const auto& [split, m] : wt.splits) splits[split] = w.matrix(m);
  j["splits"] = std::move(splits);
  j["function_file"] = w.file(wt.function_file);
  return j;
}

std::shared_ptr<Artifact> load_weights(const Json& j, const Reader& r) {
  auto wt = std::make_shared<Weights>();
  wt->models = j.at("models").get<std::vector<std::string>>();
  for (const auto& [split, m] : j.at("splits").items()) wt->splits[split] = r.matrix(m);
  wt->function_file = r.file(j.at("function_file"));
  return wt;
}

// Cells tagged by kind, so a whole double is not read back as an integer.
Json save_table(const Table& t) {
  Json rows = Json::array();
  for (const auto& row : t.rows) {
    Json rj = Json::array();
    for (const auto& cell : row) {
      if (std::holds_alternative<std::monostate>(cell))
        rj.push_back(nullptr);
      else if (const auto* s = std::get_if<std::string>(&cell))
        rj.push_back(Json::array({"s", *s}));
      else if (const auto* d = std::get_if<double>(&cell))
        rj.push_back(Json::array({"f", number(*d)}));
      else
        rj.push_back(Json::array({"i", std::get<long long>(cell)}));
    }
    rows.push_back(std::move(rj));
  }
  return Json{{"title", t.title}, {"columns", t.columns}, {"rows", std::move(rows)}};
}

std::shared_ptr<Artifact> load_table(const Json& j) {
  auto t = std::make_shared<Table>();
  t->title = j.at("title").get<std::string>();
  t->columns = j.at("columns").get<std::vector<std::string>>();
  for (const auto& rj : j.at("rows")) {
    std::vector<TableCell> row;
    for (const auto& c : rj) {
      if (c.is_null()) {
        row.emplace_back(std::monostate{});
        continue;
      }
      const std::string kind = c.at(0).get<std::string>();
      if (kind == "s")
        row.emplace_back(c.at(1).get<std::string>());
      else if (kind == "f")
        row.emplace_back(number_of(c.at(1)));
      else if (kind == "i")
        row.emplace_back(c.at(1).get<long long>());
      else
        throw Error("unknown table cell kind " + kind);
    }
    t->rows.push_back(std::move(row));
  }
  return t;
}

// The spec is JSON already (its numbers round-trip exactly); images are paths relative to the run
// folder, whose files the entry's outputs verify.
Json save_figure(const Figure& f) {
  Json images = Json::array();
  for (const auto& i : f.images) images.push_back(i.string());
  return Json{{"title", f.title}, {"caption", f.caption}, {"spec", f.spec}, {"images", std::move(images)}};
}

std::shared_ptr<Artifact> load_figure(const Json& j) {
  auto f = std::make_shared<Figure>();
  f->title = j.at("title").get<std::string>();
  f->caption = j.at("caption").get<std::string>();
  f->spec = j.at("spec");
  for (const auto& i : j.at("images")) f->images.emplace_back(i.get<std::string>());
  return f;
}

}  // namespace

bool artifact_storable(std::string_view type) {
  return type == Dataset::kType || type == Embeddings::kType || type == Scores::kType || type == Predictions::kType ||
         type == Checkpoint::kType || type == Weights::kType || type == Table::kType || type == Figure::kType;
}

Json save_artifact(const Artifact& artifact, const fs::path& dir, const std::string& prefix, FileHashCache& hashes) {
  Writer w{dir, prefix, hashes};
  Json body;
  if (const auto* d = dynamic_cast<const Dataset*>(&artifact))
    body = save_dataset(*d, w);
  else if (const auto* e = dynamic_cast<const Embeddings*>(&artifact))
    body = save_embeddings(*e, w);
  else if (const auto* s = dynamic_cast<const Scores*>(&artifact))
    body = save_scores(*s, w);
  else if (const auto* p = dynamic_cast<const Predictions*>(&artifact))
    body = save_predictions(*p, w);
  else if (const auto* c = dynamic_cast<const Checkpoint*>(&artifact))
    body = save_checkpoint(*c, w);
  else if (const auto* wt = dynamic_cast<const Weights*>(&artifact))
    body = save_weights(*wt, w);
  else if (const auto* t = dynamic_cast<const Table*>(&artifact))
    body = save_table(*t);
  else if (const auto* f = dynamic_cast<const Figure*>(&artifact))
    body = save_figure(*f);
  else
    throw Error("artifacts of type " + std::string(artifact.type_name()) + " cannot be stored");
  Json j = Json::object();
  j["type"] = std::string(artifact.type_name());
  j["producer_node"] = artifact.producer_node;
  j["producer_port"] = artifact.producer_port;
  j["body"] = std::move(body);
  return j;
}

std::shared_ptr<Artifact> load_artifact(const Json& header, const fs::path& dir, FileHashCache& hashes) {
  const Reader r{dir, hashes};
  const std::string type = header.at("type").get<std::string>();
  const Json& body = header.at("body");
  std::shared_ptr<Artifact> a;
  if (type == Dataset::kType)
    a = load_dataset(body, r);
  else if (type == Embeddings::kType)
    a = load_embeddings(body, r);
  else if (type == Scores::kType)
    a = load_scores(body, r);
  else if (type == Predictions::kType)
    a = load_predictions(body, r);
  else if (type == Checkpoint::kType)
    a = load_checkpoint(body, r);
  else if (type == Weights::kType)
    a = load_weights(body, r);
  else if (type == Table::kType)
    a = load_table(body);
  else if (type == Figure::kType)
    a = load_figure(body);
  else
    throw Error("artifacts of type " + type + " cannot be read back");
  a->producer_node = header.at("producer_node").get<std::string>();
  a->producer_port = header.at("producer_port").get<std::string>();
  return a;
}

}  // namespace caulk
