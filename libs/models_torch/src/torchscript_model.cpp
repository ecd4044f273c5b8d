// Opening, running and the parameters of a TorchScript model; the library's entry points.
#include "torchscript_model.hpp"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <regex>
#include <sstream>

#include "caching_cpu_allocator.hpp"
#include "caulk/error.hpp"
#include "caulk/seeding/seeding.hpp"
#include "torch_entry.hpp"

namespace caulk::models::torchscript {

namespace {

std::string shape_text(at::IntArrayRef s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

std::string dtype_text(io::DType t) {
  return t == io::DType::I64 ? "int64" : t == io::DType::F32 ? "float32" : std::string(io::dtype_name(t));
}

// The owner submodule and slot name of a dotted parameter name ("layer4.1.conv2.weight").
std::pair<torch::jit::Module, std::string> slot_of(const torch::jit::Module& root, const std::string& name) {
  torch::jit::Module owner = root;
  std::size_t start = 0;
  for (std::size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', start)) {
    owner = owner.attr(name.substr(start, dot - start)).toModule();
    start = dot + 1;
  }
  return {owner, name.substr(start)};
}

// A module's result as an N x K tensor (more dimensions are flattened), or a clear error.
at::Tensor as_rows(const c10::IValue& v, std::int64_t n, const std::string& what) {
  if (!v.isTensor()) throw Error(fmt::format("{} returned a {}, not a tensor (N x D)", what, v.tagKind()));
  at::Tensor t = v.toTensor();
  if (t.dim() < 2 || t.size(0) != n)
    throw Error(fmt::format("{} returned a tensor of shape {} for {} samples; expected N x D", what, shape_text(t.sizes()), n));
  return t.dim() == 2 ? t : t.flatten(1);
}

RowMatrixF to_matrix(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous();
  RowMatrixF m(c.size(0), c.size(1));
  std::memcpy(m.data(), c.data_ptr<float>(), sizeof(float) * static_cast<std::size_t>(c.numel()));
  return m;
}

}  // namespace

std::string short_error(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  const std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
  static const std::regex error_line(R"(^\s*[A-Za-z_.:]*(Error|Exception): (.+)$)");
  std::istringstream lines(text);
  std::string line, found, first;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, error_line)) found = m[2];
    if (first.empty() && line.find_first_not_of(" \t") != std::string::npos) first = line;
  }
  std::string out = found.empty() ? first : found;
  if (out.size() > 400) out = out.substr(0, 400) + "...";
  return out;
}

// The cache's bound: a quarter of the memory, at most 4 GiB (a ResNet-18 on two batches of 64
// images at 224 x 224 in flight keeps under 2 GiB).
std::size_t cpu_cache_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const std::size_t quarter = pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) / 4 : 0;
  return std::min<std::size_t>(quarter, std::size_t{4} << 30);
}

void configure_runtime() {
  static std::once_flag once;
  std::call_once(once, [] {
    install_caching_cpu_allocator(cpu_cache_limit());
    at::set_num_threads(1);
    try {
      at::set_num_interop_threads(1);
    } catch (const std::exception&) {
      // Already set by the host (or the pool already started): keep it.
    }
  });
}

TorchScriptModel::TorchScriptModel(std::string name, std::filesystem::path file, torch::jit::Module module, std::string feature_method)
    : Model(std::move(name), std::move(file)), module_(std::move(module)), feature_method_(std::move(feature_method)) {
  for (const auto& p : module_.named_parameters(/*recurse=*/true)) {
    auto [owner, attribute] = slot_of(module_, p.name);
    params_.push_back({p.name, p.value, owner, attribute, true});
    if (!p.value.requires_grad()) p.value.requires_grad_(true);
  }
}

std::unique_ptr<TorchScriptModel> TorchScriptModel::open(const ModelSource& source) {
  configure_runtime();
  const std::string file = source.torchscript.string();
  const auto problem = [&](const std::string& text) { return DataError(file, fmt::format("model '{}': {}", source.name, text)); };
  if (!std::filesystem::exists(source.torchscript)) throw problem("the file does not exist");
  torch::jit::Module module;
  try {
    module = torch::jit::load(file);
  } catch (const std::exception& e) {
    throw problem(
        fmt::format("not a TorchScript file ({}); save one with torch.jit.save(torch.jit.script(model), "
                    "path) or torch.jit.trace",
                    short_error(e)));
  }
  module.eval();
  if (!source.feature_method.empty() && !module.find_method(source.feature_method)) {
    std::vector<std::string> methods;
    for (const auto& m : module.get_methods()) methods.push_back(m.name());
    throw problem(
        fmt::format("feature_method '{}' is not a method of the module (its methods: {}); export it with "
                    "@torch.jit.export (scripting) or torch.jit.trace_module(model, {{'forward': x, '{}': x}})",
                    source.feature_method, fmt::join(methods, ", "), source.feature_method));
  }
  return std::unique_ptr<TorchScriptModel>(new TorchScriptModel(source.name, source.torchscript, module, source.feature_method));
}

void TorchScriptModel::fail(const std::string& problem) const {
  throw DataError(file().string(), fmt::format("model '{}': {}", name(), problem));
}

std::size_t TorchScriptModel::index_of(const std::string& name) const {
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (params_[i].name == name) return i;
  throw Error(fmt::format("{} has no parameter '{}'", describe(), name));
}

const Lora* TorchScriptModel::lora_of(const std::string& weight) const {
  for (const auto& l : loras_)
    if (l.weight == weight) return &l;
  return nullptr;
}

at::Tensor TorchScriptModel::to_tensor(const InputBatch& x) const {
  at::ScalarType type;
  if (x.dtype == io::DType::F32)
    type = at::kFloat;
  else if (x.dtype == io::DType::I64)
    type = at::kLong;
  else
    fail(fmt::format("inputs must be float32 or int64, not {}", io::dtype_name(x.dtype)));
  if (x.shape.empty()) fail("an input batch needs a shape (N, ...)");
  // A copy: a model may work in place on its input, which may be a read-only mapped file.
  return torch::from_blob(const_cast<void*>(x.data), x.shape, at::TensorOptions().dtype(type)).clone();
}

void TorchScriptModel::set_slot(const Param& p, const at::Tensor& value) const {
  // A slot assignment, not a data copy: the module's type still lists it as a parameter.
  torch::jit::Module owner = *p.owner;
  owner.setattr(p.attribute, value);
}

at::Tensor TorchScriptModel::effective_weight(const Lora& lora, bool graph) const {
  const at::Tensor& w0 = params_[index_of(lora.weight)].value;
  const at::Tensor& a = params_[index_of(lora.weight + ".lora_A")].value;
  const at::Tensor& b = params_[index_of(lora.weight + ".lora_B")].value;
  if (!graph) {
    torch::NoGradGuard no_grad;
    return (w0 + lora.scale * b.mm(a).view(w0.sizes())).detach();
  }
  return w0 + lora.scale * b.mm(a).view(w0.sizes());
}

void TorchScriptModel::refresh_slots() {
  for (const auto& l : loras_) set_slot(params_[index_of(l.weight)], effective_weight(l, false));
}

std::pair<at::Tensor, at::Tensor> TorchScriptModel::compute(const at::Tensor& input, bool want_features, bool want_outputs,
                                                            bool graph) const {
  const std::int64_t n = input.size(0);
  const bool head = head_prefix_.has_value();
  at::Tensor features, outputs;
  if (graph)
    for (const auto& l : loras_) set_slot(params_[index_of(l.weight)], effective_weight(l, true));
  try {
    if (want_features || (want_outputs && (head || feature_method_.empty()))) {
      const std::string what = feature_method_.empty() ? "forward" : fmt::format("feature_method '{}'", feature_method_);
      const c10::IValue v = feature_method_.empty() ? module_.get_method("forward")({input}) : module_.get_method(feature_method_)({input});
      features = as_rows(v, n, what);
    }
    if (want_outputs) {
      if (head) {
        const std::string& p = *head_prefix_;
        outputs = torch::linear(features, params_[index_of(p + ".weight")].value, params_[index_of(p + ".bias")].value);
      } else if (feature_method_.empty()) {
        outputs = features;
      } else {
        outputs = as_rows(module_.get_method("forward")({input}), n, "forward");
      }
    }
  } catch (...) {
    if (graph)
      for (const auto& l : loras_) set_slot(params_[index_of(l.weight)], effective_weight(l, false));
    throw;
  }
  // Between passes the slots hold detached sums, so no graph outlives its pass through them.
  if (graph)
    for (const auto& l : loras_) set_slot(params_[index_of(l.weight)], effective_weight(l, false));
  if (features.defined()) feature_dim_.store(features.size(1));
  if (outputs.defined()) output_dim_.store(outputs.size(1));
  return {features, outputs};
}

Outputs TorchScriptModel::run(const InputBatch& x, bool want_features, bool want_outputs) const {
  Outputs out;
  if (x.rows() == 0) return out;
  const at::Tensor input = to_tensor(x);
  try {
    c10::InferenceMode inference;
    torch::jit::GraphOptimizerEnabledGuard plain(false);
    auto [features, outputs] = compute(input, want_features, want_outputs, /*graph=*/false);
    if (want_features) out.features = to_matrix(features);
    if (want_outputs) out.outputs = to_matrix(outputs);
  } catch (const DataError&) {
    throw;
  } catch (const std::exception& e) {
    fail(fmt::format("it failed on an input of shape {} ({}): {} (give it inputs of the shape and dtype it was exported for)",
                     shape_text(input.sizes()), dtype_text(x.dtype), short_error(e)));
  }
  return out;
}

std::vector<ParameterInfo> TorchScriptModel::parameters() const {
  std::vector<ParameterInfo> out;
  for (const auto& p : params_) out.push_back({p.name, p.value.sizes().vec()});
  return out;
}

void TorchScriptModel::read_parameter(const std::string& name, std::span<float> out) const {
  const at::Tensor& v = params_[index_of(name)].value;
  if (static_cast<std::int64_t>(out.size()) != v.numel())
    throw Error(fmt::format("{}: parameter '{}' has {} values, not {}", describe(), name, v.numel(), out.size()));
  const at::Tensor c = v.detach().to(at::kFloat).contiguous();
  std::memcpy(out.data(), c.data_ptr<float>(), sizeof(float) * out.size());
}

void TorchScriptModel::write_parameter(const std::string& name, std::span<const float> values) {
  at::Tensor& v = params_[index_of(name)].value;
  if (static_cast<std::int64_t>(values.size()) != v.numel())
    throw Error(fmt::format("{}: parameter '{}' has {} values, not {}", describe(), name, v.numel(), values.size()));
  {
    torch::NoGradGuard no_grad;
    v.copy_(torch::from_blob(const_cast<float*>(values.data()), v.sizes(), at::kFloat));
  }
  refresh_slots();
}

void TorchScriptModel::replace_head(std::int64_t outputs, OutputKind kind, std::uint64_t seed, std::int64_t features) {
  const std::int64_t known = feature_dim(), d = features >= 0 ? features : known;
  if (d < 0)
    throw Error(
        fmt::format("{}: its feature size is not known yet (TorchScript files do not state it): run the model on a "
                    "batch before replacing its head, or give the size",
                    describe()));
  if (known >= 0 && d != known) throw Error(fmt::format("{}: a head on {} features, but the model gives {}", describe(), d, known));
  feature_dim_.store(d);
  if (outputs < 1) throw Error(fmt::format("{}: a new head needs at least one output", describe()));
  if (!head_prefix_) {
    bool taken = false;
    for (const auto& p : params_) taken = taken || p.name.rfind("head.", 0) == 0;
    head_prefix_ = taken ? "caulk_head" : "head";
  } else {
    params_.erase(params_.begin() + static_cast<std::ptrdiff_t>(index_of(*head_prefix_ + ".weight")));
    params_.erase(params_.begin() + static_cast<std::ptrdiff_t>(index_of(*head_prefix_ + ".bias")));
  }
  // nn.Linear's initialisation, uniform in +-1/sqrt(D), drawn as the MLP family draws it (weight
  // column by column, then bias), so the same seed gives the same head in both families.
  seeding::SeededUniform rng(seed);
  const double bound = 1.0 / std::sqrt(double(d));
  at::Tensor w = torch::empty({outputs, d}, at::kFloat), b = torch::empty({outputs}, at::kFloat);
  auto wa = w.accessor<float, 2>();
  for (std::int64_t j = 0; j < d; ++j)
    for (std::int64_t i = 0; i < outputs; ++i) wa[i][j] = float(rng.next(bound));
  auto ba = b.accessor<float, 1>();
  for (std::int64_t i = 0; i < outputs; ++i) ba[i] = float(rng.next(bound));
  params_.push_back({*head_prefix_ + ".weight", w.requires_grad_(true), std::nullopt, "", true});
  params_.push_back({*head_prefix_ + ".bias", b.requires_grad_(true), std::nullopt, "", true});
  kind_ = kind;
  output_dim_.store(outputs);
}

std::vector<std::string> TorchScriptModel::head_parameters() const {
  if (!head_prefix_) return {};
  return {*head_prefix_ + ".weight", *head_prefix_ + ".bias"};
}

void TorchScriptModel::set_trainable(const std::vector<std::string>& names) {
  std::vector<bool> mask(params_.size(), false);
  for (const auto& n : names) mask[index_of(n)] = true;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    params_[i].trainable = mask[i];
    params_[i].value.requires_grad_(mask[i]);
  }
}

std::vector<std::string> TorchScriptModel::trainable() const {
  std::vector<std::string> out;
  for (const auto& p : params_)
    if (p.trainable) out.push_back(p.name);
  return out;
}

std::vector<std::string> TorchScriptModel::add_lora(const std::vector<std::string>& weights, int rank, double alpha, std::uint64_t seed) {
  if (rank < 1) throw Error(fmt::format("{}: LoRA rank must be at least 1", describe()));
  if (weights.empty()) throw Error(fmt::format("{}: LoRA needs at least one weight", describe()));
  // In parameters() order, so the draws do not depend on how the names were listed.
  std::vector<std::size_t> chosen;
  for (const auto& w : weights) {
    const std::size_t k = index_of(w);
    const Param& p = params_[k];
    if (!p.owner || p.value.dim() < 2)
      throw Error(fmt::format("{}: LoRA applies to a module's weight matrices (2-D or more), not '{}' of shape {}", describe(), w,
                              shape_text(p.value.sizes())));
    if (lora_of(w) || std::find(chosen.begin(), chosen.end(), k) != chosen.end())
      throw Error(fmt::format("{}: '{}' already has LoRA (or is listed twice)", describe(), w));
    chosen.push_back(k);
  }
  std::sort(chosen.begin(), chosen.end());
  seeding::SeededUniform rng(seed);
  const double scale = (alpha > 0 ? alpha : double(rank)) / double(rank);
  std::vector<std::string> added;
  std::vector<Param> factors;  // inserted after their weights below
  for (std::size_t k : chosen) {
    const at::Tensor& w0 = params_[k].value;
    const std::int64_t out = w0.size(0), in = w0.numel() / out;
    const double bound = 1.0 / std::sqrt(double(in));
    at::Tensor a = torch::empty({rank, in}, at::kFloat);
    auto aa = a.accessor<float, 2>();
    for (std::int64_t j = 0; j < in; ++j)
      for (std::int64_t i = 0; i < rank; ++i) aa[i][j] = float(rng.next(bound));
    const std::string& name = params_[k].name;
    factors.push_back({name + ".lora_A", a.to(w0.scalar_type()), std::nullopt, "", true});
    factors.push_back({name + ".lora_B", torch::zeros({out, rank}, w0.options().requires_grad(false)), std::nullopt, "", true});
    loras_.push_back({name, scale});
    added.push_back(name + ".lora_A");
    added.push_back(name + ".lora_B");
  }
  for (std::size_t f = 0; f < factors.size(); f += 2) {
    const std::string weight = factors[f].name.substr(0, factors[f].name.size() - 7);
    const auto at = params_.begin() + static_cast<std::ptrdiff_t>(index_of(weight)) + 1;
    params_.insert(at, {factors[f], factors[f + 1]});
  }
  std::vector<std::string> train = added;
  for (const auto& h : head_parameters()) train.push_back(h);
  set_trainable(train);
  refresh_slots();
  return added;
}

void TorchScriptModel::fold_lora() {
  torch::NoGradGuard no_grad;
  for (const auto& l : loras_) {
    const at::Tensor sum = effective_weight(l, false);
    Param& w = params_[index_of(l.weight)];
    w.value.copy_(sum);
    set_slot(w, w.value);
    params_.erase(params_.begin() + static_cast<std::ptrdiff_t>(index_of(l.weight + ".lora_A")));
    params_.erase(params_.begin() + static_cast<std::ptrdiff_t>(index_of(l.weight + ".lora_B")));
  }
  loras_.clear();
}

}  // namespace caulk::models::torchscript

// --- the entry points open_model finds with dlsym (torch_entry.hpp)

extern "C" __attribute__((visibility("default"))) const char* caulk_models_torch_version() { return caulk::models::kTorchEntryVersion; }

extern "C" __attribute__((visibility("default"))) caulk::models::Model* caulk_models_torch_open(const caulk::models::ModelSource& source) {
  return caulk::models::torchscript::TorchScriptModel::open(source).release();
}
