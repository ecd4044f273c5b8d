// The MLP family behind the model interface, checked against the MLP runtime's own tested
// functions (forward, accumulate_gradient, fisher_diagonal, prepare_tuning) and against central
// finite differences for the gradient entering at the features; the interface's generic Fisher
// (per sample and class) against the MLP's vectorised one.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "caulk/error.hpp"
#include "caulk/io/safetensors.hpp"
#include "caulk/mlp/backprop.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/models/hub.hpp"
#include "caulk/models/mlp_model.hpp"
#include "caulk/seeding/seeding.hpp"
#include "model_test_support.hpp"
#include "temp_dir.hpp"

namespace caulk::models {
namespace {

using testing::names_of;
using testing::read;
using testing::relative_error;

// A manifest entry (only the fields given).
ModelSource entry(const std::string& name, const std::filesystem::path& checkpoint, const std::filesystem::path& torchscript = {},
                  const std::string& feature_method = "", const std::string& where = "") {
  ModelSource s;
  s.name = name;
  s.checkpoint = checkpoint;
  s.torchscript = torchscript;
  s.feature_method = feature_method;
  s.where = where;
  return s;
}

mlp::Model<float> random_mlp(mlp::Output output, bool with_peft_modules, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  const auto random = [&](int r, int c, float scale) {
    mlp::Mat<float> m(r, c);
    for (int j = 0; j < c; ++j)
      for (int i = 0; i < r; ++i) m(i, j) = scale * nd(rng);
    return m;
  };
  mlp::Model<float> m;
  m.activation = mlp::Activation::Tanh;
  m.output = output;
  const std::vector<int> widths{6, 5, 4, 3};
  for (std::size_t l = 0; l + 1 < widths.size(); ++l)
    m.layers.push_back({random(widths[l + 1], widths[l], 0.6f), random(widths[l + 1], 1, 0.3f)});
  m.feature_layer = 1;
  if (with_peft_modules) {
    mlp::Adapter<float> a;
    a.after = 0;
    a.down = {random(2, 5, 0.5f), random(2, 1, 0.3f)};
    a.up = {random(5, 2, 0.5f), random(5, 1, 0.3f)};
    m.adapters.push_back(a);
    m.loras.push_back({1, random(2, 5, 0.5f), random(4, 2, 0.5f), 1.5});
  }
  return m;
}

struct Batch {
  RowMatrixF x;  // N x 6
  InputBatch view() const { return {io::DType::F32, {x.rows(), x.cols()}, x.data()}; }
};

Batch random_batch(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  Batch b{RowMatrixF(n, 6)};
  for (Eigen::Index i = 0; i < b.x.size(); ++i) b.x.data()[i] = nd(rng);
  return b;
}

mlp::Mat<float> columns(const Batch& b) { return b.x.transpose(); }

TEST(MlpModel, FeaturesAndLogitsAreTheRuntimes) {
  const auto m = random_mlp(mlp::Output::Softmax, true, 1);
  MlpModel model("m", "m.safetensors", m);
  const Batch b = random_batch(7, 2);
  const Outputs out = model.run(b.view(), true, true);
  const RowMatrixF features = mlp::forward<float>(m, columns(b), nullptr, m.feature_layer).transpose();
  EXPECT_LT(relative_error(out.features, features), 1e-6);
  // The runtime's run_batches gives probabilities: the softmax of the interface's logits.
  const auto probs = mlp::run_batches(m, columns(b), true, true, 3);
  RowMatrixF softmax = out.outputs;
  for (Eigen::Index i = 0; i < softmax.rows(); ++i) {
    softmax.row(i).array() = (softmax.row(i).array() - softmax.row(i).maxCoeff()).exp();
    softmax.row(i) /= softmax.row(i).sum();
  }
  EXPECT_LT(relative_error(softmax, probs.outputs), 1e-6);
  EXPECT_LT(relative_error(out.features, probs.features), 1e-6);
  EXPECT_EQ(model.feature_dim(), 4);
  EXPECT_EQ(model.output_dim(), 3);
}

TEST(MlpModel, ParametersAreCheckpointNamesRowMajor) {
  auto m = random_mlp(mlp::Output::Softmax, true, 3);
  MlpModel model("m", "m.safetensors", m);
  const auto params = model.parameters();
  ASSERT_EQ(params.size(), 12u);
  EXPECT_EQ(params[0].name, "layers.0.weight");
  EXPECT_EQ(params[0].shape, (std::vector<std::int64_t>{5, 6}));
  EXPECT_EQ(params[1].shape, (std::vector<std::int64_t>{5}));
  EXPECT_EQ(params[10].name, "lora.1.A");
  const auto w = read(model, "layers.0.weight");
  EXPECT_EQ(w[1 * 6 + 2], m.layers[0].W(1, 2));  // row-major: element (1, 2)
  std::vector<float> changed = w;
  changed[1 * 6 + 2] = 42.f;
  model.write_parameter("layers.0.weight", changed);
  EXPECT_EQ(model.mlp().layers[0].W(1, 2), 42.f);
  EXPECT_THROW(model.write_parameter("layers.0.weight", std::vector<float>(3)), Error);
  std::vector<float> buffer(4);
  EXPECT_THROW(model.read_parameter("layers.9.weight", buffer), Error);
}

TEST(MlpModel, OutputGradientsAreAccumulateGradients) {
  const auto m = random_mlp(mlp::Output::Softmax, true, 4);
  MlpModel model("m", "m.safetensors", m);
  const Batch b = random_batch(5, 5);
  const std::vector<int> labels{0, 2, 1, 1, 0};
  auto pass = model.forward(b.view());
  // dL/dlogits of the mean cross-entropy: (p - onehot) / N.
  RowMatrixF d = pass->values.outputs;
  for (Eigen::Index i = 0; i < d.rows(); ++i) {
    d.row(i).array() = (d.row(i).array() - d.row(i).maxCoeff()).exp();
    d.row(i) /= d.row(i).sum();
    d(i, labels[i]) -= 1.f;
  }
  d /= float(d.rows());
  for (const bool partial : {false, true}) {
    std::vector<bool> mask(12, true);
    if (partial) {
      model.set_trainable({"layers.2.weight", "layers.2.bias", "lora.1.A", "lora.1.B"});
      mask.assign(12, false);
      mask[4] = mask[5] = mask[10] = mask[11] = true;
    }
    Gradients g;
    model.backward(*pass, nullptr, &d, g);
    mlp::Model<float> expected = mlp::zeros_like(m);
    mlp::Targets<float> y;
    y.classes = labels;
    mlp::accumulate_gradient(m, columns(b), y, 5.0, mask, expected);
    EXPECT_EQ(g.names, model.trainable());
    EXPECT_EQ(g.names.size(), partial ? 4u : 12u);
    MlpModel reference("r", "r", expected);
    for (std::size_t k = 0; k < g.names.size(); ++k)
      EXPECT_LT(relative_error(g.values[k], read(reference, g.names[k])), 1e-6) << g.names[k];
  }
}

// L = sum(features * G): its gradient by the interface against central differences in float64.
TEST(MlpModel, FeatureGradientsMatchFiniteDifferences) {
  const auto m = random_mlp(mlp::Output::Softmax, true, 6);
  MlpModel model("m", "m.safetensors", m);
  const Batch b = random_batch(4, 7);
  std::mt19937_64 rng(8);
  std::normal_distribution<float> nd(0.f, 1.f);
  RowMatrixF G(4, 4), H(4, 3);
  for (Eigen::Index i = 0; i < G.size(); ++i) G.data()[i] = nd(rng);
  for (Eigen::Index i = 0; i < H.size(); ++i) H.data()[i] = nd(rng);
  auto pass = model.forward(b.view());
  Gradients g;
  model.backward(*pass, &G, &H, g);  // both at once: L = sum(F * G) + sum(logits * H)

  const mlp::Model<double> md = m.cast<double>();
  const mlp::Mat<double> X = columns(b).cast<double>();
  const auto loss = [&](const mlp::Model<double>& p) {
    mlp::Trace<double> t;
    mlp::forward(p, X, &t);
    const mlp::Mat<double> f = t.input[p.feature_layer + 1];
    return (f.array() * G.transpose().cast<double>().array()).sum() + (t.pre.back().array() * H.transpose().cast<double>().array()).sum();
  };
  mlp::Model<double> probe = md;
  auto refs = mlp::parameters(probe);
  for (std::size_t k = 0; k < refs.size(); ++k) {
    std::vector<double> fd(refs[k].size());
    for (int i = 0; i < refs[k].rows; ++i)
      for (int j = 0; j < refs[k].cols; ++j) {
        double& v = refs[k].data[static_cast<std::size_t>(j) * refs[k].rows + i];
        const double saved = v, h = 1e-6;
        v = saved + h;
        const double up = loss(probe);
        v = saved - h;
        const double down = loss(probe);
        v = saved;
        fd[static_cast<std::size_t>(i) * refs[k].cols + j] = (up - down) / (2 * h);
      }
    ASSERT_EQ(g.names[k], refs[k].name);
    EXPECT_LT(relative_error(g.values[k], fd), 1e-4) << refs[k].name;  // float32 forward vs float64 differences
  }
}

TEST(MlpModel, FisherIsTheRuntimesAndTheGenericLoop) {
  for (const auto output : {mlp::Output::Softmax, mlp::Output::Identity}) {
    const auto m = random_mlp(output, true, 9);
    MlpModel model("m", "m.safetensors", m);
    const Batch b = random_batch(6, 10);
    const FisherDiagonal fast = model.fisher_diagonal(b.view(), false, 0);
    const FisherDiagonal generic = model.Model::fisher_diagonal(b.view(), false, 0);
    const mlp::Model<double> mean = mlp::fisher_diagonal(m.cast<double>(), columns(b).cast<double>());
    const auto refs = mlp::parameters(mean);
    ASSERT_EQ(fast.names, names_of(model.parameters()));
    ASSERT_EQ(generic.names, fast.names);
    for (std::size_t k = 0; k < refs.size(); ++k) {
      std::vector<double> sum(refs[k].size());
      for (int i = 0; i < refs[k].rows; ++i)
        for (int j = 0; j < refs[k].cols; ++j)
          sum[static_cast<std::size_t>(i) * refs[k].cols + j] = 6.0 * refs[k].data[static_cast<std::size_t>(j) * refs[k].rows + i];
      EXPECT_LT(relative_error(fast.values[k], sum), 1e-12) << refs[k].name;
      EXPECT_LT(relative_error(generic.values[k], sum), 1e-5) << refs[k].name;  // float32 passes
    }
    EXPECT_EQ(model.trainable().size(), 12u);  // restored
  }
}

// The sampled Fisher: per sample, the squared gradient of the cross-entropy at the class drawn
// from p(.|x) by the documented generator, each from the runtime's accumulate_gradient.
TEST(MlpModel, SampledFisherSquaresGradientsAtDrawnClasses) {
  const auto m = random_mlp(mlp::Output::Softmax, false, 11);
  MlpModel model("m", "m.safetensors", m);
  const Batch b = random_batch(8, 12);
  const FisherDiagonal sampled = model.fisher_diagonal(b.view(), true, 99);
  const FisherDiagonal generic = model.Model::fisher_diagonal(b.view(), true, 99);

  const mlp::Model<double> md = m.cast<double>();
  mlp::Trace<double> t;
  mlp::forward(md, mlp::Mat<double>(columns(b).cast<double>()), &t);
  caulk::seeding::SeededUniform rng(99);
  std::vector<std::vector<double>> expected(sampled.names.size());
  std::set<std::size_t> classes;
  for (Eigen::Index i = 0; i < 8; ++i) {
    const std::vector<double> p(t.output.col(i).data(), t.output.col(i).data() + 3);
    const std::size_t y = draw_class(p, rng.next_u64());
    classes.insert(y);
    mlp::Model<double> g = mlp::zeros_like(md);
    mlp::Targets<double> target;
    target.classes = {static_cast<int>(y)};
    mlp::accumulate_gradient(md, mlp::Mat<double>(columns(b).cast<double>().col(i)), target, 1.0, {}, g);
    const auto refs = mlp::parameters(g);
    for (std::size_t k = 0; k < refs.size(); ++k) {
      expected[k].resize(refs[k].size());
      for (int r = 0; r < refs[k].rows; ++r)
        for (int c = 0; c < refs[k].cols; ++c) {
          const double v = refs[k].data[static_cast<std::size_t>(c) * refs[k].rows + r];
          expected[k][static_cast<std::size_t>(r) * refs[k].cols + c] += v * v;
        }
    }
  }
  EXPECT_GE(classes.size(), 2u);  // the draws do vary
  for (std::size_t k = 0; k < expected.size(); ++k) {
    EXPECT_LT(relative_error(sampled.values[k], expected[k]), 1e-10) << sampled.names[k];
    EXPECT_LT(relative_error(generic.values[k], expected[k]), 1e-5) << sampled.names[k];
  }
  // A different seed draws differently.
  const FisherDiagonal other = model.fisher_diagonal(b.view(), true, 100);
  EXPECT_NE(other.values, sampled.values);
  MlpModel regression("r", "r", random_mlp(mlp::Output::Identity, false, 1));
  EXPECT_THROW(regression.fisher_diagonal(b.view(), true, 1), Error);
}

TEST(MlpModel, HeadAndLoraAreTunePeftsSetUp) {
  const auto m = random_mlp(mlp::Output::Softmax, false, 13);
  MlpModel model("m", "m.safetensors", m);
  model.replace_head(5, OutputKind::Logits, 21);
  auto lora = model.add_lora({"layers.0.weight", "layers.1.weight"}, 2, 3.0, 21);
  EXPECT_EQ(lora, (std::vector<std::string>{"lora.0.A", "lora.0.B", "lora.1.A", "lora.1.B"}));
  EXPECT_EQ(model.head_parameters(), (std::vector<std::string>{"layers.2.weight", "layers.2.bias"}));
  EXPECT_EQ(model.trainable(),
            (std::vector<std::string>{"layers.2.weight", "layers.2.bias", "lora.0.A", "lora.0.B", "lora.1.A", "lora.1.B"}));
  mlp::PeftOptions o;
  o.mode = mlp::PeftMode::Lora;
  o.outputs = 5;
  o.rank = 2;
  o.lora_alpha = 3.0;
  o.lora_layers = {0, 1};
  o.seed = 21;
  const auto setup = mlp::prepare_tuning(m, o);
  MlpModel reference("r", "r", setup.model);
  ASSERT_EQ(names_of(model.parameters()), names_of(reference.parameters()));
  for (const auto& p : model.parameters()) EXPECT_EQ(read(model, p.name), read(reference, p.name)) << p.name;
  EXPECT_EQ(model.mlp().loras[0].scale, 1.5);
  EXPECT_THROW(model.add_lora({"layers.2.weight"}, 2, 0, 1), Error);  // the head trains in full
  EXPECT_THROW(model.add_lora({"layers.0.bias"}, 2, 0, 1), Error);

  // Folding keeps the outputs.
  std::vector<float> b(static_cast<std::size_t>(model.parameters()[7].size()), 0.25f);
  model.write_parameter("lora.0.B", b);
  const Batch x = random_batch(4, 14);
  const Outputs before = model.run(x.view(), true, true);
  model.fold_lora();
  const Outputs after = model.run(x.view(), true, true);
  EXPECT_LT(relative_error(after.outputs, before.outputs), 1e-5);
  EXPECT_EQ(model.parameters().size(), 6u);
  EXPECT_EQ(model.trainable(), (std::vector<std::string>{"layers.2.weight", "layers.2.bias"}));
}

TEST(MlpModel, WeightsRoundTripAndRefuseWhatDoesNotFit) {
  caulk::testing::TempDir dir;
  const auto m = random_mlp(mlp::Output::Softmax, true, 15);
  mlp::save_model(dir / "m.safetensors", m);
  ModelSource source = entry("m", dir / "m.safetensors");
  auto model = open_model(source);
  EXPECT_EQ(model->family(), "mlp");
  std::vector<float> w = read(*model, "layers.1.weight");
  for (float& v : w) v *= 2;
  model->write_parameter("layers.1.weight", w);
  save_weights(*model, dir / "w.safetensors", {"layers.1.weight"});
  source.weights = dir / "w.safetensors";
  auto reloaded = open_model(source);
  EXPECT_EQ(read(*reloaded, "layers.1.weight"), w);
  EXPECT_EQ(read(*reloaded, "layers.0.weight"), read(*model, "layers.0.weight"));

  const auto expect_error = [&](const std::vector<io::Tensor>& tensors, bool partial, const std::vector<std::string>& fragments) {
    io::write_safetensors(dir / "bad.safetensors", tensors);
    auto fresh = open_model(entry("m", dir / "m.safetensors"));
    try {
      load_weights(*fresh, dir / "bad.safetensors", partial);
      ADD_FAILURE() << "no error";
    } catch (const DataError& e) {
      for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    }
  };
  const auto tensor = [](std::string name, std::vector<std::size_t> shape) {
    std::size_t n = 1;
    for (auto s : shape) n *= s;
    return io::Tensor{std::move(name), io::DType::F32, shape, std::vector<std::byte>(n * 4)};
  };
  expect_error({tensor("layers.7.weight", {2, 2})}, true, {"bad.safetensors", "model 'm'", "'layers.7.weight'", "not parameters"});
  expect_error({tensor("layers.0.bias", {4})}, true, {"'layers.0.bias' is [4] in the file but [5] in the model"});
  expect_error({tensor("layers.0.bias", {5})}, false, {"parameter(s) are missing", "'layers.0.weight'"});
}

TEST(MlpModel, InputsOfTheWrongKindAreRefused) {
  MlpModel model("m", "m.safetensors", random_mlp(mlp::Output::Softmax, false, 16));
  std::vector<std::int64_t> ids(12);
  EXPECT_THROW(
      {
        try {
          model.run({io::DType::I64, {2, 6}, ids.data()}, true, true);
        } catch (const DataError& e) {
          EXPECT_NE(std::string(e.what()).find("takes float32 inputs, not I64"), std::string::npos) << e.what();
          throw;
        }
      },
      DataError);
  std::vector<float> x(2 * 7);
  EXPECT_THROW(model.run({io::DType::F32, {2, 7}, x.data()}, true, true), DataError);
  // Any sample shape of the right size is read flattened (a 2 x 3 "image" of 6 inputs).
  std::vector<float> image(2 * 6, 0.5f);
  const Outputs flat = model.run({io::DType::F32, {2, 6}, image.data()}, true, false);
  const Outputs shaped = model.run({io::DType::F32, {2, 2, 3}, image.data()}, true, false);
  EXPECT_EQ(flat.features, shaped.features);
}

TEST(OpenModel, NamesWhatIsWrongWithAnEntry) {
  caulk::testing::TempDir dir;
  const auto message = [](const ModelSource& s) -> std::string {
    try {
      open_model(s);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message(entry("x", {}, {}, "", "hub.toml:3:1")).find("hub.toml:3:1: model 'x' must name exactly one of"), std::string::npos);
  EXPECT_NE(message(entry("x", "a", "b")).find("(2 given)"), std::string::npos);
  EXPECT_NE(message([&] {
              ModelSource s = entry("x", {});
              s.onnx = dir / "m.onnx";
              return s;
            }())
                .find("model 'x': the file does not exist"),
            std::string::npos);  // opened by the ONNX family
  mlp::save_model(dir / "m.safetensors", random_mlp(mlp::Output::Softmax, false, 17));
  EXPECT_NE(message(entry("x", dir / "m.safetensors", {}, "embed")).find("feature_method applies to TorchScript"), std::string::npos);
}

TEST(OpenModel, ManifestEntriesBecomeSources) {
  caulk::testing::TempDir dir;
  const auto path = dir.write("hub.toml", R"([hub]
name = "zoo"
[[model]]
name = "cnn"
torchscript = "models/cnn.pt"
feature_method = "embed"
weights = "tuned.safetensors"
[[model]]
name = "mlp"
checkpoint = "mlp.safetensors"
)");
  const Manifest m = read_manifest(path, model_hub_schema());
  const ModelSource cnn = source_of(m.models[0]);
  EXPECT_EQ(cnn.torchscript, dir / "models/cnn.pt");
  EXPECT_EQ(cnn.feature_method, "embed");
  EXPECT_EQ(cnn.weights, dir / "tuned.safetensors");
  EXPECT_TRUE(cnn.checkpoint.empty());
  EXPECT_NE(cnn.where.find("hub.toml:3:1"), std::string::npos) << cnn.where;
  EXPECT_EQ(source_of(m.models[1]).checkpoint, dir / "mlp.safetensors");
  EXPECT_THROW(parse_manifest_text("[hub]\n[[model]]\nname = \"x\"\nfeatures = \"f.npy\"\n", dir / "h.toml", model_hub_schema()),
               DataError);
}

// A Checkpoint entry carries a TorchScript model as its module, feature method and weights, and an
// MLP as its checkpoint alone; either way back to the same source. ONNX cannot be a Checkpoint.
TEST(OpenModel, CheckpointEntriesCarryEitherFamily) {
  ModelSource cnn;
  cnn.name = "cnn";
  cnn.torchscript = "models/cnn.pt";
  cnn.feature_method = "embed";
  cnn.weights = "tuned.safetensors";
  const CheckpointRef ref = checkpoint_of(cnn);
  EXPECT_EQ(ref.module, cnn.torchscript);
  EXPECT_EQ(ref.path, cnn.weights);
  const ModelSource back = source_of(ref);
  EXPECT_EQ(back.torchscript, cnn.torchscript);
  EXPECT_EQ(back.weights, cnn.weights);
  EXPECT_EQ(back.feature_method, "embed");
  EXPECT_TRUE(back.checkpoint.empty());

  ModelSource mlp;
  mlp.name = "mlp";
  mlp.checkpoint = "mlp.safetensors";
  const CheckpointRef mref = checkpoint_of(mlp);
  EXPECT_EQ(mref.path, mlp.checkpoint);
  EXPECT_TRUE(mref.module.empty());
  EXPECT_EQ(source_of(mref).checkpoint, mlp.checkpoint);
  EXPECT_TRUE(source_of(mref).torchscript.empty());

  ModelSource onnx;
  onnx.name = "o";
  onnx.onnx = "o.onnx";
  EXPECT_THROW(checkpoint_of(onnx), Error);
}

// Without the TorchScript library, a TorchScript entry says what to install (a process that runs
// no TorchScript model never looks for it).
TEST(OpenModel, MissingTorchLibraryIsAClearError) {
  caulk::testing::TempDir dir;
  setenv("CAULK_MODELS_TORCH", (dir / "libcaulk_models_torch.so").c_str(), 1);
  try {
    open_model(entry("resnet", {}, dir / "resnet.pt", "", "hub.toml:7:1"));
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    const std::string text = e.what();
    EXPECT_NE(text.find("resnet.pt: hub.toml:7:1: model 'resnet': TorchScript models need libcaulk_models_torch.so"), std::string::npos)
        << text;
    EXPECT_NE(text.find("install libtorch-dev"), std::string::npos) << text;
  }
  unsetenv("CAULK_MODELS_TORCH");
}

}  // namespace
}  // namespace caulk::models
