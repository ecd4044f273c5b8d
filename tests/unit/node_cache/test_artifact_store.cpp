// Every framework artifact type saved and read back (caulk/artifact_store.hpp) is bit for bit the
// same: doubles (NaN, infinities, -0, subnormals), float32 arrays that stay float32, integers that
// stay integers in tables, file references checked by content hash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "caulk/artifact_store.hpp"
#include "caulk/artifacts.hpp"
#include "caulk/io/npy.hpp"
#include "temp_dir.hpp"

using namespace caulk;
using namespace caulk::testing;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Awkward doubles: what a decimal text could lose.
Matrix awkward(Eigen::Index rows, Eigen::Index cols, double seed) {
  Matrix m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = std::nextafter(seed * (i + 1) / 3.0, 1e300);
  if (m.size() > 3) {
    m.data()[0] = -0.0;
    m.data()[1] = std::numeric_limits<double>::denorm_min();
    m.data()[2] = 0.1 + 0.2;
  }
  return m;
}

bool same_bits(const Matrix& a, const Matrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(double)) == 0;
}

// A view's elements, read as its own type's bits.
bool same_view(const MatrixView& a, const MatrixView& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols() || a.scalar_type() != b.scalar_type()) return false;
  for (std::size_t r = 0; r < a.rows(); ++r)
    for (std::size_t c = 0; c < a.cols(); ++c) {
      const double x = a(r, c), y = b(r, c);
      if (std::memcmp(&x, &y, sizeof x) != 0) return false;
    }
  return true;
}

template <class T>
std::shared_ptr<const T> round_trip(const T& a, const fs::path& dir) {
  FileHashCache hashes;
  const Json header = save_artifact(a, dir, "x", hashes);
  // Through text, as the entry's JSON file holds it.
  const Json reread = Json::parse(header.dump());
  auto back = std::dynamic_pointer_cast<const T>(load_artifact(reread, dir, hashes));
  EXPECT_NE(back, nullptr);
  return back;
}

TEST(ArtifactStore, DatasetWithFloat32InputsAndFloat64CovariatesRoundTripsBitForBit) {
  TempDir dir;
  Dataset d;
  d.kind = TaskKind::Classification;
  d.class_names = {"cat", "dog", "7"};
  auto inputs = std::make_shared<RowMatrixF>(4, 3);
  for (int i = 0; i < 12; ++i) inputs->data()[i] = std::nextafter(static_cast<float>(i) / 7.0f, 2.0f);
  DatasetSplit s;
  s.name = "train";
  s.rows = 4;
  s.classes = {0, 2, 1, 2};
  s.inputs = ArrayFile{{}, MatrixView::of(std::shared_ptr<const RowMatrixF>(inputs))};
  s.covariates = ArrayFile{{}, MatrixView::of(std::make_shared<const Matrix>(awkward(4, 2, 1.7)))};
  s.labels_file = "/somewhere/labels.npy";
  d.splits.push_back(s);
  DatasetSplit t;
  t.name = "test";
  t.rows = 0;  // an empty split keeps its shape
  d.splits.push_back(t);
  d.producer_node = "task";
  d.producer_port = "data";
  auto back = round_trip(d, dir.path());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->class_names, d.class_names);
  EXPECT_EQ(back->producer_node, "task");
  EXPECT_EQ(back->producer_port, "data");
  ASSERT_EQ(back->splits.size(), 2u);
  EXPECT_EQ(back->splits[0].classes, s.classes);
  ASSERT_TRUE(back->splits[0].inputs && back->splits[0].inputs->in_memory());
  EXPECT_EQ(back->splits[0].inputs->memory.scalar_type(), ScalarType::F32) << "float32 stays float32";
  EXPECT_TRUE(same_view(back->splits[0].inputs->memory, s.inputs->memory));
  EXPECT_TRUE(same_view(back->splits[0].covariates->memory, s.covariates->memory));
  EXPECT_EQ(back->splits[0].labels_file, s.labels_file);
  EXPECT_EQ(back->splits[1].name, "test");
  EXPECT_FALSE(back->splits[1].inputs);
  // The float32 array is stored as float32 (4 bytes an element), not widened.
  bool saw_f32 = false;
  for (const auto& e : fs::directory_iterator(dir.path()))
    if (e.path().extension() == ".npy" && io::NpyArray::read_header(e.path()).dtype == io::DType::F32) saw_f32 = true;
  EXPECT_TRUE(saw_f32);
}

TEST(ArtifactStore, RegressionTargetsRoundTripBitForBit) {
  TempDir dir;
  Dataset d;
  d.kind = TaskKind::Regression;
  DatasetSplit s;
  s.name = "train";
  s.rows = 5;
  s.targets = awkward(5, 2, 3.3);
  d.splits.push_back(s);
  auto back = round_trip(d, dir.path());
  EXPECT_EQ(back->kind, TaskKind::Regression);
  EXPECT_TRUE(same_bits(back->splits[0].targets, s.targets));
}

TEST(ArtifactStore, EmbeddingsInMemoryAndInFilesRoundTrip) {
  TempDir dir;
  const fs::path features = dir / "f.npy";
  RowMatrixF f(3, 2);
  f << 1.5f, -2.25f, 3.0f, 0.1f, 1e-30f, 7.0f;
  io::write_npy(features, f);
  Embeddings e;
  e.hub = "demo";
  ModelEmbedding m;
  m.name = "a";
  m.description = "one";
  m.features["train"] = ArrayFile{features, {}};
  m.source_probs["train"] = ArrayFile{{}, MatrixView::of(std::make_shared<const RowMatrixF>(f))};
  m.checkpoint = "/x/a.safetensors";
  e.models.push_back(m);
  fs::create_directories(dir / "entry");
  auto back = round_trip(e, dir / "entry");
  ASSERT_EQ(back->models.size(), 1u);
  EXPECT_EQ(back->hub, "demo");
  EXPECT_EQ(back->models[0].features.at("train").path, features);
  EXPECT_EQ(back->models[0].source_probs.at("train").memory.scalar_type(), ScalarType::F32);
  EXPECT_TRUE(same_view(back->models[0].source_probs.at("train").memory, m.source_probs["train"].memory));
  EXPECT_EQ(back->models[0].checkpoint, m.checkpoint);
}

TEST(ArtifactStore, AFileAnArtifactNamesThatChangedFailsTheRead) {
  TempDir dir;
  const fs::path features = dir / "f.npy";
  io::write_npy(features, Matrix(awkward(2, 2, 1.0)));
  Embeddings e;
  ModelEmbedding m;
  m.name = "a";
  m.features["train"] = ArrayFile{features, {}};
  e.models.push_back(m);
  fs::create_directories(dir / "entry");
  FileHashCache hashes;
  const Json header = save_artifact(e, dir / "entry", "x", hashes);
  io::write_npy(features, Matrix(awkward(2, 2, 2.0)));
  FileHashCache fresh;
  EXPECT_THROW(load_artifact(header, dir / "entry", fresh), std::exception);
}

TEST(ArtifactStore, ScoresKeepNonFiniteValuesAndPosteriorWeights) {
  TempDir dir;
  Scores s;
  s.method = "logme";
  s.higher_is_better = false;
  s.scores = {{"a", 0.1 + 0.2, 1.25}, {"b", kNaN, 0}, {"c", -kInf, 0}, {"d", kInf, 0}, {"e", -0.0, 0}};
  s.posterior_weights["a"] = awkward(3, 4, 0.7);
  auto back = round_trip(s, dir.path());
  ASSERT_EQ(back->scores.size(), 5u);
  EXPECT_EQ(back->method, "logme");
  EXPECT_FALSE(back->higher_is_better);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(back->scores[i].model, s.scores[i].model);
    EXPECT_EQ(std::memcmp(&back->scores[i].score, &s.scores[i].score, sizeof(double)), 0) << i;
    EXPECT_EQ(back->scores[i].seconds, s.scores[i].seconds);
  }
  EXPECT_TRUE(same_bits(back->posterior_weights.at("a"), s.posterior_weights["a"]));
}

TEST(ArtifactStore, PredictionsWeightsCheckpointTableAndFigureRoundTrip) {
  TempDir dir;
  Predictions p;
  p.kind = TaskKind::Classification;
  p.models.push_back({"m", {{"test", awkward(6, 3, 0.9)}, {"val", Matrix(0, 3)}}});
  auto pb = round_trip(p, dir.path());
  EXPECT_TRUE(same_bits(pb->models[0].splits.at("test"), p.models[0].splits["test"]));
  EXPECT_EQ(pb->models[0].splits.at("val").cols(), 3);

  const fs::path weights_file = dir / "w.safetensors";
  std::ofstream(weights_file) << "pretend weights";
  Checkpoint c;
  c.models.push_back({"a", weights_file, {}, true, {}, {}});
  auto cb = round_trip(c, dir.path());
  ASSERT_EQ(cb->models.size(), 1u);
  EXPECT_EQ(cb->models[0].path, weights_file);
  EXPECT_TRUE(cb->models[0].fisher.empty());
  EXPECT_TRUE(cb->models[0].base);
  EXPECT_TRUE(cb->models[0].module.empty());

  // A TorchScript entry: its module and feature method come back, its weights may be absent.
  const fs::path module_file = dir / "net.pt";
  std::ofstream(module_file) << "pretend module";
  Checkpoint t_c;
  t_c.models.push_back({"net", {}, {}, false, module_file, "embed"});
  auto tcb = round_trip(t_c, dir.path());
  ASSERT_EQ(tcb->models.size(), 1u);
  EXPECT_EQ(tcb->models[0].module, module_file);
  EXPECT_EQ(tcb->models[0].feature_method, "embed");
  EXPECT_TRUE(tcb->models[0].path.empty());

  Weights w;
  w.models = {"a", "b"};
  w.splits["test"] = awkward(4, 2, 2.2);
  w.function_file = weights_file;
  auto wb = round_trip(w, dir.path());
  EXPECT_EQ(wb->models, w.models);
  EXPECT_TRUE(same_bits(wb->splits.at("test"), w.splits["test"]));
  EXPECT_EQ(wb->function_file, weights_file);

  Table t;
  t.title = "scores";
  t.columns = {"model", "score", "count", "none"};
  t.rows.push_back({std::string("a"), 2.0, 3LL, std::monostate{}});
  t.rows.push_back({std::string("b"), kNaN, -4LL, 0.1 + 0.2});
  auto tb = round_trip(t, dir.path());
  EXPECT_EQ(tb->title, t.title);
  EXPECT_EQ(tb->columns, t.columns);
  ASSERT_EQ(tb->rows.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<double>(tb->rows[0][1])) << "a whole double stays a double";
  EXPECT_TRUE(std::holds_alternative<long long>(tb->rows[0][2]));
  EXPECT_EQ(std::get<long long>(tb->rows[1][2]), -4);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(tb->rows[0][3]));
  EXPECT_TRUE(std::isnan(std::get<double>(tb->rows[1][1])));
  EXPECT_EQ(std::get<double>(tb->rows[1][3]), 0.1 + 0.2);

  Figure f;
  f.title = "scores";
  f.caption = "one bar a model";
  f.spec = Json{{"mark", "bar"}, {"data", {{"values", Json::array({Json{{"model", "a"}, {"score", 0.1 + 0.2}}})}}}};
  f.images = {"node/norms.png"};
  auto fb = round_trip(f, dir.path());
  EXPECT_EQ(fb->title, f.title);
  EXPECT_EQ(fb->caption, f.caption);
  EXPECT_EQ(fb->spec, f.spec);
  EXPECT_EQ(fb->spec["data"]["values"][0]["score"].get<double>(), 0.1 + 0.2) << "a spec's numbers keep their bits";
  EXPECT_EQ(fb->images, f.images);
}

TEST(ArtifactStore, ATruncatedOrMismatchedArrayFailsTheReadWithoutCrashing) {
  TempDir dir;
  Scores s;
  s.method = "logme";
  s.posterior_weights["a"] = awkward(30, 4, 0.7);
  FileHashCache hashes;
  const Json header = save_artifact(s, dir.path(), "x", hashes);
  const fs::path npy = dir / header["body"]["posterior_weights"]["a"]["npy"].get<std::string>();
  fs::resize_file(npy, fs::file_size(npy) / 2);
  EXPECT_THROW(load_artifact(header, dir.path(), hashes), std::exception);
  // A header whose shape disagrees with the file.
  io::write_npy(npy, Matrix(awkward(3, 4, 0.7)));
  EXPECT_THROW(load_artifact(header, dir.path(), hashes), std::exception);
  Json wrong = header;
  wrong["body"]["scores"] = "not a list";
  EXPECT_THROW(load_artifact(wrong, dir.path(), hashes), std::exception);
}

// Arrays are not flushed one by one when stored: a reader checks their bytes against the hash
// the entry recorded, so data a crash lost or damaged (same size, other bytes) is never used.
TEST(ArtifactStore, AnArrayWhoseBytesChangedFailsTheRead) {
  TempDir dir;
  Dataset d;
  d.kind = TaskKind::Classification;
  d.class_names = {"a", "b"};
  DatasetSplit split;
  split.name = "train";
  split.rows = 3;
  split.classes = {0, 1, 1};
  split.targets = awkward(3, 2, 0.3);
  d.splits.push_back(split);
  FileHashCache hashes;
  const Json header = save_artifact(d, dir.path(), "d", hashes);
  ASSERT_NO_THROW(load_artifact(header, dir.path(), hashes));
  for (const std::string which : {"targets", "classes"}) {
    const Json& sj = header["body"]["splits"][0];
    const fs::path npy = dir / (which == "classes" ? sj["classes"] : sj["targets"]["npy"]).get<std::string>();
    const std::string original = read_file(npy);
    std::string bytes = original;
    bytes.back() = static_cast<char>(bytes.back() ^ 1);
    std::ofstream(npy, std::ios::binary | std::ios::trunc) << bytes;
    try {
      load_artifact(header, dir.path(), hashes);
      ADD_FAILURE() << which << ": a changed array was read";
    } catch (const std::exception& e) {
      EXPECT_THAT(e.what(), HasSubstr("does not hold the data its entry recorded")) << which;
    }
    std::ofstream(npy, std::ios::binary | std::ios::trunc) << original;
    EXPECT_NO_THROW(load_artifact(header, dir.path(), hashes)) << which;
  }
}

}  // namespace
