// Model inputs of any rank read batch by batch (caulk/models/inputs.hpp): the values a model is
// given, whatever the file's dtype and order, batches in parallel with the same result for any
// pool width, and the errors for arrays no model can take.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "caulk/error.hpp"
#include "caulk/models/inputs.hpp"
#include "caulk/models/mlp_model.hpp"
#include "caulk/parallel.hpp"
#include "model_test_support.hpp"
#include "npy_bytes.hpp"
#include "temp_dir.hpp"

namespace caulk::models {
namespace {

using caulk::testing::npy_image;
using caulk::testing::TempDir;
using ::testing::HasSubstr;

// An MLP of 6 inputs, 4 features, 3 logits, random weights.
MlpModel random_model() {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  const auto random = [&](int r, int c) {
    mlp::Mat<float> m(r, c);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = 0.5f * nd(rng);
    return m;
  };
  mlp::Model<float> m;
  m.activation = mlp::Activation::Tanh;
  m.output = mlp::Output::Softmax;
  m.layers = {{random(5, 6), random(5, 1)}, {random(4, 5), random(4, 1)}, {random(3, 4), random(3, 1)}};
  m.feature_layer = 1;
  return MlpModel("m", "m.safetensors", m);
}

std::vector<float> random_values(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

ArrayFile file_of(const std::filesystem::path& p) { return ArrayFile{p, {}}; }

TEST(ModelInputs, BatchesInParallelGiveTheWholeRunForAnyPoolWidth) {
  TempDir dir;
  const auto x = random_values(23 * 6, 1);
  const auto path = dir.write("x.npy", npy_image("<f4", "(23, 6)", x.data(), x.size() * 4));
  const MlpModel model = random_model();
  const ModelInputs in = ModelInputs::open(file_of(path), "inputs");
  EXPECT_EQ(in.rows(), 23);

  // The reference: one run of the model on every row at once.
  const Outputs whole = model.run({io::DType::F32, {23, 6}, x.data()}, true, true);
  for (std::int64_t batch : {1, 4, 23, 100}) {
    Outputs serial = run_in_batches(model, in, batch, true, true);
    ThreadPool pool(2);
    ScopedPool scoped(&pool);
    Outputs parallel = run_in_batches(model, in, batch, true, true);
    EXPECT_LT(testing::relative_error(serial.features, whole.features), 1e-6) << batch;
    EXPECT_LT(testing::relative_error(serial.outputs, whole.outputs), 1e-6) << batch;
    // Bit for bit the same with two threads as with one.
    EXPECT_TRUE(parallel.features == serial.features) << batch;
    EXPECT_TRUE(parallel.outputs == serial.outputs) << batch;
  }
}

TEST(ModelInputs, OtherDtypesAndOrdersReachTheModelAsItsFloat32Rows) {
  TempDir dir;
  // Small integers as float64, int32 and column-major float32: all exact in float32.
  std::vector<float> rows(4 * 6);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = float(int(i % 7) - 3);
  std::vector<double> as_f64(rows.begin(), rows.end());
  std::vector<std::int32_t> as_i32(rows.begin(), rows.end());
  std::vector<float> column_major(rows.size());
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 6; ++c) column_major[std::size_t(c * 4 + r)] = rows[std::size_t(r * 6 + c)];
  const auto f64 = dir.write("f64.npy", npy_image("<f8", "(4, 6)", as_f64.data(), as_f64.size() * 8));
  const auto i32 = dir.write("i32.npy", npy_image("<i4", "(4, 6)", as_i32.data(), as_i32.size() * 4));
  const auto fortran = dir.write("fortran.npy", npy_image("<f4", "(4, 6)", column_major.data(), column_major.size() * 4, true));
  const MlpModel model = random_model();
  const Outputs expected = model.run({io::DType::F32, {4, 6}, rows.data()}, true, true);
  for (const auto& p : {f64, i32, fortran}) {
    const ModelInputs in = ModelInputs::open(file_of(p), "inputs");
    EXPECT_EQ(in.dtype_for(model), io::DType::F32);
    std::vector<std::byte> buffer;
    const InputBatch b = in.batch(1, 2, io::DType::F32, buffer);
    EXPECT_EQ(b.shape, (std::vector<std::int64_t>{2, 6}));
    const float* v = static_cast<const float*>(b.data);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(v[i], rows[std::size_t(6 + i)]) << p;
    const Outputs out = run_in_batches(model, in, 3, true, true);
    EXPECT_TRUE(out.features == expected.features) << p;
  }
  // A matrix in memory (as nodes publish): the same.
  const Matrix m = Eigen::Map<const RowMatrixF>(rows.data(), 4, 6).cast<double>();
  const ModelInputs in = ModelInputs::open(ArrayFile{{}, MatrixView::borrow(m)}, "inputs");
  EXPECT_TRUE(run_in_batches(model, in, 3, true, true).features == expected.features);
}

TEST(ModelInputs, AnyRankKeepsItsSampleShapeAndIntegersBecomeTokenIds) {
  TempDir dir;
  std::vector<std::int16_t> ids(3 * 2 * 5);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::int16_t(i * 7);
  const auto p = dir.write("ids.npy", npy_image("<i2", "(3, 2, 5)", ids.data(), ids.size() * 2));
  const ModelInputs in = ModelInputs::open(file_of(p), "inputs");
  EXPECT_EQ(in.shape(), (std::vector<std::int64_t>{3, 2, 5}));
  std::vector<std::byte> buffer;
  const InputBatch b = in.batch(2, 1, io::DType::I64, buffer);
  EXPECT_EQ(b.shape, (std::vector<std::int64_t>{1, 2, 5}));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(static_cast<const std::int64_t*>(b.data)[i], (20 + i) * 7);
  // One value per sample: N x 1.
  const std::vector<float> v{1, 2, 3};
  const auto one = dir.write("one.npy", npy_image("<f4", "(3,)", v.data(), 12));
  EXPECT_EQ(ModelInputs::open(file_of(one), "inputs").shape(), (std::vector<std::int64_t>{3, 1}));
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelInputs, ArraysNoModelCanTakeAreRefusedByName) {
  TempDir dir;
  const float s = 1;
  const auto scalar = dir.write("scalar.npy", npy_image("<f4", "()", &s, 4));
  EXPECT_THAT(error_of([&] { ModelInputs::open(file_of(scalar), "the inputs of split 'test'"); }),
              HasSubstr("scalar.npy: the inputs of split 'test' is a scalar"));
  const bool flags[4] = {true, false, true, true};
  const auto booleans = dir.write("bool.npy", npy_image("|b1", "(4,)", flags, 4));
  EXPECT_THAT(error_of([&] { ModelInputs::open(file_of(booleans), "inputs"); }), HasSubstr("bool.npy: inputs are booleans"));
  const auto x = random_values(2 * 3 * 4, 2);
  const auto cube = dir.write("cube.npy", npy_image("<f4", "(2, 3, 4)", x.data(), x.size() * 4, true));
  EXPECT_THAT(error_of([&] { ModelInputs::open(file_of(cube), "inputs"); }),
              HasSubstr("cube.npy: inputs are in Fortran (column-major) order with 3 dimensions"));

  // Floats cannot become token ids.
  const auto floats = dir.write("floats.npy", npy_image("<f4", "(2, 12)", x.data(), x.size() * 4));
  const ModelInputs in = ModelInputs::open(file_of(floats), "inputs");
  std::vector<std::byte> buffer;
  EXPECT_THAT(error_of([&] { in.batch(0, 1, io::DType::I64, buffer); }),
              HasSubstr("floats.npy: inputs are floats (F32) but the model takes int64 token ids"));

  // Samples of another shape than the model's: both named before anything runs.
  const MlpModel model = random_model();
  const std::string e = error_of([&] { run_in_batches(model, in, 4, true, true); });
  EXPECT_THAT(e, HasSubstr("floats.npy: model 'm' (m.safetensors) takes samples of shape [6], but these inputs have samples "
                           "of shape [12] (the array is [2, 12])"));
  EXPECT_THAT(error_of([&] { run_in_batches(model, in, 0, true, true); }), HasSubstr("a batch size of 0"));
}

// An MLP reads a sample of any shape flattened (images of 1 x 2 x 3 for an MLP of 6 inputs): the
// same numbers as the N x 6 rows of the same bytes. A sample of another size is still refused.
TEST(ModelInputs, AnMlpReadsSamplesOfAnyShapeFlattened) {
  TempDir dir;
  const auto x = random_values(5 * 6, 3);
  const auto flat = dir.write("flat.npy", npy_image("<f4", "(5, 6)", x.data(), x.size() * 4));
  const auto images = dir.write("images.npy", npy_image("<f4", "(5, 1, 2, 3)", x.data(), x.size() * 4));
  const MlpModel model = random_model();
  const Outputs rows = run_in_batches(model, ModelInputs::open(file_of(flat), "inputs"), 2, true, true);
  const Outputs shaped = run_in_batches(model, ModelInputs::open(file_of(images), "inputs"), 2, true, true);
  EXPECT_TRUE(shaped.features == rows.features);
  EXPECT_TRUE(shaped.outputs == rows.outputs);
  const auto other = dir.write("other.npy", npy_image("<f4", "(5, 2, 2)", x.data(), 5 * 4 * 4));
  EXPECT_THAT(error_of([&] { run_in_batches(model, ModelInputs::open(file_of(other), "inputs"), 2, true, true); }),
              HasSubstr("takes samples of shape [6], but these inputs have samples of shape [2, 2]"));
}

TEST(SoftmaxRows, IsTheNormalisedExponentialAndStaysFiniteForLargeLogits) {
  RowMatrixF z(2, 3);
  z << 0.f, std::log(2.f), std::log(3.f), 1000.f, 0.f, -1000.f;
  const Matrix p = softmax_rows(z);
  EXPECT_NEAR(p(0, 0), 1.0 / 6, 1e-7);
  EXPECT_NEAR(p(0, 1), 2.0 / 6, 1e-7);
  EXPECT_NEAR(p(0, 2), 3.0 / 6, 1e-7);
  EXPECT_EQ(p(1, 0), 1.0);
  EXPECT_EQ(p(1, 1), std::exp(-1000.0) / (1 + std::exp(-1000.0)));  // 0 in float64
  EXPECT_EQ(p(1, 2), 0.0);
}

}  // namespace
}  // namespace caulk::models
