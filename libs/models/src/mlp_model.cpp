#include "caulk/models/mlp_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <regex>

#include "caulk/error.hpp"
#include "caulk/mlp/backprop.hpp"
#include "caulk/mlp/mlp_checkpoint.hpp"
#include "caulk/mlp/peft.hpp"
#include "caulk/seeding/seeding.hpp"

namespace caulk::models {

namespace {

struct MlpPass final : ForwardPass {
  mlp::Trace<float> trace;
};

// The names of a model's parameters, in parameters() order.
template <class S>
std::vector<std::string> names_of(const mlp::Model<S>& m) {
  std::vector<std::string> out;
  for (const auto& p : mlp::parameters(m)) out.push_back(p.name);
  return out;
}

// Row-major (C order) values of a column-major parameter tensor, and back.
template <class P>
void copy_out(const mlp::ParamRef<P>& p, std::span<float> out) {
  for (int i = 0; i < p.rows; ++i)
    for (int j = 0; j < p.cols; ++j)
      out[static_cast<std::size_t>(i) * p.cols + j] = float(p.data[static_cast<std::size_t>(j) * p.rows + i]);
}

}  // namespace

MlpModel::MlpModel(std::string name, std::filesystem::path file, mlp::Model<float> model)
    : Model(std::move(name), std::move(file)), model_(std::move(model)) {
  mlp::validate(model_);
  trainable_.assign(mlp::parameters(model_).size(), true);
}

std::unique_ptr<MlpModel> MlpModel::open(const std::string& name, const std::filesystem::path& checkpoint) {
  return std::make_unique<MlpModel>(name, checkpoint, mlp::load_model(checkpoint));
}

OutputKind MlpModel::output_kind() const { return model_.output == mlp::Output::Softmax ? OutputKind::Logits : OutputKind::Values; }

Eigen::Map<const mlp::Mat<float>> MlpModel::columns(const InputBatch& x) const {
  if (x.dtype != io::DType::F32)
    throw DataError(file().string(), fmt::format("{} takes float32 inputs, not {}", describe(), io::dtype_name(x.dtype)));
  if (x.shape.empty() || x.sample_size() != model_.input_dim())
    throw DataError(file().string(),
                    fmt::format("{} takes samples of {} values (N x {}; a sample of any shape is read flattened), "
                                "not {} per sample",
                                describe(), model_.input_dim(), model_.input_dim(), x.shape.empty() ? 0 : x.sample_size()));
  return {static_cast<const float*>(x.data), model_.input_dim(), static_cast<Eigen::Index>(x.rows())};
}

Outputs MlpModel::run(const InputBatch& x, bool want_features, bool want_outputs) const {
  mlp::Trace<float> t;
  mlp::forward(model_, mlp::Mat<float>(columns(x)), &t);
  Outputs out;
  if (want_features) out.features = t.input[model_.feature_layer + 1].transpose();
  if (want_outputs) out.outputs = t.pre.back().transpose();
  return out;
}

std::vector<ParameterInfo> MlpModel::parameters() const {
  std::vector<ParameterInfo> out;
  for (const auto& p : mlp::parameters(model_))
    out.push_back({p.name, p.is_bias ? std::vector<std::int64_t>{p.rows} : std::vector<std::int64_t>{p.rows, p.cols}});
  return out;
}

std::size_t MlpModel::index_of(const std::string& name) const {
  const auto names = names_of(model_);
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) throw Error(fmt::format("{} has no parameter '{}'", describe(), name));
  return static_cast<std::size_t>(it - names.begin());
}

void MlpModel::read_parameter(const std::string& name, std::span<float> out) const {
  const auto p = mlp::parameters(model_)[index_of(name)];
  if (out.size() != p.size()) throw Error(fmt::format("{}: parameter '{}' has {} values, not {}", describe(), name, p.size(), out.size()));
  copy_out(p, out);
}

void MlpModel::write_parameter(const std::string& name, std::span<const float> values) {
  auto p = mlp::parameters(model_)[index_of(name)];
  if (values.size() != p.size())
    throw Error(fmt::format("{}: parameter '{}' has {} values, not {}", describe(), name, p.size(), values.size()));
  for (int i = 0; i < p.rows; ++i)
    for (int j = 0; j < p.cols; ++j) p.data[static_cast<std::size_t>(j) * p.rows + i] = values[static_cast<std::size_t>(i) * p.cols + j];
}

void MlpModel::replace_head(std::int64_t outputs, OutputKind kind, std::uint64_t seed, std::int64_t features) {
  if (features >= 0 && features != model_.feature_dim())
    throw Error(fmt::format("{}: a head on {} features, but the model has {}", describe(), features, model_.feature_dim()));
  mlp::PeftOptions o;
  o.mode = mlp::PeftMode::LinearProbe;
  o.outputs = static_cast<int>(outputs);
  o.output = kind == OutputKind::Logits ? mlp::Output::Softmax : mlp::Output::Identity;
  o.seed = seed;
  const std::vector<std::string> was = trainable();
  model_ = mlp::prepare_tuning(model_, o).model;
  new_head_ = true;
  std::vector<std::string> train = was;
  for (const auto& n : head_parameters()) train.push_back(n);
  const auto names = names_of(model_);
  std::erase_if(train, [&](const std::string& n) { return std::find(names.begin(), names.end(), n) == names.end(); });
  set_trainable(train);
}

std::vector<std::string> MlpModel::head_parameters() const {
  if (!new_head_) return {};
  const int head = model_.num_layers() - 1;
  return {fmt::format("layers.{}.weight", head), fmt::format("layers.{}.bias", head)};
}

void MlpModel::set_trainable(const std::vector<std::string>& names) {
  std::vector<bool> mask(trainable_.size(), false);
  for (const auto& n : names) mask[index_of(n)] = true;
  trainable_ = std::move(mask);
}

std::vector<std::string> MlpModel::trainable() const {
  std::vector<std::string> out;
  const auto names = names_of(model_);
  for (std::size_t k = 0; k < names.size(); ++k)
    if (trainable_[k]) out.push_back(names[k]);
  return out;
}

std::vector<std::string> MlpModel::add_lora(const std::vector<std::string>& weights, int rank, double alpha, std::uint64_t seed) {
  static const std::regex weight_re(R"(layers\.(\d+)\.weight)");
  mlp::PeftOptions o;
  o.mode = mlp::PeftMode::Lora;
  o.outputs = model_.output_dim();
  o.output = model_.output;
  o.rank = rank;
  o.lora_alpha = alpha > 0 ? alpha : 0;
  o.seed = seed;
  for (const auto& w : weights) {
    std::smatch m;
    if (!std::regex_match(w, m, weight_re))
      throw Error(fmt::format("{}: LoRA applies to an MLP's layer weights (layers.N.weight), not '{}'", describe(), w));
    index_of(w);
    o.lora_layers.push_back(std::stoi(m[1]));
  }
  if (o.lora_layers.empty()) throw Error(fmt::format("{}: LoRA needs at least one weight", describe()));
  // The set-up draws the head first, then the LoRA factors, from `seed`: the same factors as
  // tune.peft with that seed. Only the new factors are taken; every other parameter stays.
  const mlp::Model<float> tuned = mlp::prepare_tuning(model_, o).model;
  std::vector<std::string> added;
  for (const auto& lo : tuned.loras)
    if (std::find(o.lora_layers.begin(), o.lora_layers.end(), lo.layer) != o.lora_layers.end()) {
      model_.loras.push_back(lo);
      added.push_back(fmt::format("lora.{}.A", lo.layer));
      added.push_back(fmt::format("lora.{}.B", lo.layer));
    }
  std::sort(model_.loras.begin(), model_.loras.end(), [](const auto& a, const auto& b) { return a.layer < b.layer; });
  mlp::validate(model_);
  trainable_.assign(mlp::parameters(model_).size(), false);
  std::vector<std::string> train = added;
  for (int l = model_.feature_layer + 1; l < model_.num_layers(); ++l) {
    train.push_back(fmt::format("layers.{}.weight", l));
    train.push_back(fmt::format("layers.{}.bias", l));
  }
  set_trainable(train);
  return added;
}

void MlpModel::fold_lora() {
  const std::vector<std::string> was = trainable();
  model_ = mlp::fold_lora(model_);
  trainable_.assign(mlp::parameters(model_).size(), false);
  const auto names = names_of(model_);
  std::vector<std::string> train;
  for (const auto& n : was)
    if (std::find(names.begin(), names.end(), n) != names.end()) train.push_back(n);
  set_trainable(train);
}

std::unique_ptr<ForwardPass> MlpModel::forward(const InputBatch& x) {
  auto pass = std::make_unique<MlpPass>();
  mlp::forward(model_, mlp::Mat<float>(columns(x)), &pass->trace);
  pass->values.features = pass->trace.input[model_.feature_layer + 1].transpose();
  pass->values.outputs = pass->trace.pre.back().transpose();
  return pass;
}

// dL/doutputs enters at the output layer's pre-activation, where the MLP's backward pass starts.
// dL/dfeatures enters at the feature layer's output: the same backward pass runs on the layers up
// to the features topped by an identity layer (its pre-activation is the features), whose own
// parameters are not trained.
void MlpModel::backward(ForwardPass& base, const RowMatrixF* d_features, const RowMatrixF* d_outputs, Gradients& grad) {
  auto& pass = dynamic_cast<MlpPass&>(base);
  const mlp::Trace<float>& t = pass.trace;
  const Eigen::Index n = t.output.cols();
  const std::vector<std::string> train = trainable();
  if (grad.names.empty()) {
    grad.names = train;
    for (const auto& p : parameters())
      if (std::find(train.begin(), train.end(), p.name) != train.end()) grad.values.emplace_back(static_cast<std::size_t>(p.size()), 0.f);
  } else if (grad.names != train) {
    throw Error(fmt::format("{}: the gradients were allocated for another set of trainable parameters", describe()));
  }
  // Adds g's tensors to `grad` by name, skipping tensors [skip_from, skip_to).
  const auto add = [&](const mlp::Model<float>& model, const mlp::Model<float>& g, std::size_t skip_from, std::size_t skip_to) {
    const auto names = names_of(model);
    const auto refs = mlp::parameters(g);
    for (std::size_t k = 0; k < refs.size(); ++k) {
      if (k >= skip_from && k < skip_to) continue;
      const auto it = std::find(grad.names.begin(), grad.names.end(), names[k]);
      if (it == grad.names.end()) continue;
      std::vector<float> values(refs[k].size());
      copy_out(refs[k], values);
      auto& dst = grad.values[static_cast<std::size_t>(it - grad.names.begin())];
      for (std::size_t i = 0; i < values.size(); ++i) dst[i] += values[i];
    }
  };
  if (d_outputs) {
    if (d_outputs->rows() != n || d_outputs->cols() != model_.output_dim())
      throw Error(fmt::format("{}: dL/doutputs is {}x{}, expected {}x{}", describe(), d_outputs->rows(), d_outputs->cols(), n,
                              model_.output_dim()));
    mlp::Model<float> g = mlp::zeros_like(model_);
    mlp::backward(model_, t, mlp::Mat<float>(d_outputs->transpose()), trainable_, g);
    add(model_, g, 0, 0);
  }
  if (d_features) {
    const int f = model_.feature_layer, D = model_.feature_dim();
    if (d_features->rows() != n || d_features->cols() != D)
      throw Error(fmt::format("{}: dL/dfeatures is {}x{}, expected {}x{}", describe(), d_features->rows(), d_features->cols(), n, D));
    mlp::Model<float> top;
    top.activation = model_.activation;
    top.output = mlp::Output::Identity;
    top.feature_layer = f;
    top.layers.assign(model_.layers.begin(), model_.layers.begin() + f + 1);
    top.layers.push_back({mlp::Mat<float>::Identity(D, D), mlp::Vec<float>::Zero(D)});
    mlp::Trace<float> tt;
    tt.input.assign(t.input.begin(), t.input.begin() + f + 1);
    tt.pre.assign(t.pre.begin(), t.pre.begin() + f + 1);
    tt.input.push_back(t.input[f + 1]);
    tt.pre.push_back(t.input[f + 1]);
    std::size_t a = 0, l = 0;
    for (; a < model_.adapters.size() && model_.adapters[a].after <= f; ++a) top.adapters.push_back(model_.adapters[a]);
    for (; l < model_.loras.size() && model_.loras[l].layer <= f; ++l) top.loras.push_back(model_.loras[l]);
    tt.adapter_in.assign(t.adapter_in.begin(), t.adapter_in.begin() + a);
    tt.adapter_pre.assign(t.adapter_pre.begin(), t.adapter_pre.begin() + a);
    tt.adapter_act.assign(t.adapter_act.begin(), t.adapter_act.begin() + a);
    tt.lora_hidden.assign(t.lora_hidden.begin(), t.lora_hidden.begin() + l);
    const auto top_names = names_of(top);
    std::vector<bool> mask(top_names.size(), false);
    for (std::size_t k = 0; k < top_names.size(); ++k)
      mask[k] = top_names[k].rfind(fmt::format("layers.{}.", f + 1), 0) != 0 &&
                std::find(train.begin(), train.end(), top_names[k]) != train.end();
    mlp::Model<float> g = mlp::zeros_like(top);
    mlp::backward(top, tt, mlp::Mat<float>(d_features->transpose()), mask, g);
    // The identity layer (tensors 2(f+1) and 2(f+1)+1) bears the real head's names: skipped.
    const auto identity = static_cast<std::size_t>(2 * (f + 1));
    add(top, g, identity, identity + 2);
  }
}

FisherDiagonal MlpModel::fisher_diagonal(const InputBatch& x, bool sampled, std::uint64_t seed) {
  const mlp::Model<double> md = model_.cast<double>();
  const mlp::Mat<double> X = columns(x).cast<double>();
  const double n = double(X.cols());
  mlp::Model<double> sum;
  if (!sampled) {
    sum = mlp::fisher_diagonal(md, X);  // the mean over the batch
    for (auto& p : mlp::parameters(sum))
      for (std::size_t i = 0; i < p.size(); ++i) p.data[i] *= n;
  } else {
    if (model_.output != mlp::Output::Softmax)
      throw Error(
          fmt::format("{}: the sampled Fisher information draws classes; this model's outputs are values (use the exact one)", describe()));
    sum = mlp::zeros_like(md);
    mlp::Trace<double> t;
    mlp::forward(md, X, &t);
    // d log p(y_i|x_i) / dz = e_{y_i} - p_i, squared per sample by the weighted backward pass.
    mlp::Mat<double> dz = -t.output;
    seeding::SeededUniform rng(seed);
    for (Eigen::Index i = 0; i < t.output.cols(); ++i) {
      const auto y = draw_class(std::span<const double>(t.output.col(i).data(), static_cast<std::size_t>(t.output.rows())), rng.next_u64());
      dz(static_cast<Eigen::Index>(y), i) += 1.0;
    }
    const mlp::Vec<double> ones = mlp::Vec<double>::Ones(t.output.cols());
    mlp::backward(md, t, std::move(dz), {}, sum, &ones);
  }
  FisherDiagonal out;
  for (const auto& p : mlp::parameters(sum)) {
    out.names.push_back(p.name);
    std::vector<double> v(p.size());
    for (int i = 0; i < p.rows; ++i)
      for (int j = 0; j < p.cols; ++j) v[static_cast<std::size_t>(i) * p.cols + j] = p.data[static_cast<std::size_t>(j) * p.rows + i];
    out.values.push_back(std::move(v));
  }
  return out;
}

void MlpModel::save(const std::filesystem::path& path) const { mlp::save_model(path, mlp::fold_lora(model_)); }

std::unique_ptr<Model> MlpModel::clone() const { return std::make_unique<MlpModel>(*this); }

}  // namespace caulk::models
