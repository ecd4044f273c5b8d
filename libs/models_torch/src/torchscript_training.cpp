// Gradients, the Fisher information, saving and copying a TorchScript model.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <ATen/VmapMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <sstream>

#include "caulk/error.hpp"
#include "caulk/seeding/seeding.hpp"
#include "caulk/io/atomic_file.hpp"
#include "torchscript_model.hpp"

namespace caulk::models::torchscript {

namespace {

struct TorchPass final : ForwardPass {
  at::Tensor features, outputs;  // graph-connected
};

at::Tensor from_matrix(const RowMatrixF& m, const at::Tensor& like) {
  return torch::from_blob(const_cast<float*>(m.data()), {m.rows(), m.cols()}, at::kFloat).to(like.scalar_type()).clone();
}

// At most this many gradient values (classes x parameters) per batched backward pass.
constexpr std::int64_t kBatchedGradientValues = std::int64_t{1} << 24;
std::atomic<bool> batched_gradients_work{true};

// CAULK_TORCH_FISHER (a diagnostic, docs/models.md): "batched" never falls back to one pass per
// class (a failure is an error), "loop" always does; unset, batched with a fallback.
std::string fisher_passes() {
  const char* v = std::getenv("CAULK_TORCH_FISHER");
  return v ? v : "";
}

// The gradients of `outputs` for every row of `seeds` (B x outputs' shape) in one backward pass,
// vectorised over the rows by ATen's vmap (what torch.autograd.grad(is_grads_batched=True) does):
// per leaf a B x shape tensor, undefined when the leaf does not reach the outputs.
std::vector<at::Tensor> batched_gradients(const at::Tensor& outputs, const std::vector<at::Tensor>& leaves, const at::Tensor& seeds) {
  const std::int64_t level = at::impl::VmapMode::increment_nesting();
  struct Exit {
    ~Exit() { at::impl::VmapMode::decrement_nesting(); }
  } exit;
  auto g = torch::autograd::grad({outputs}, leaves, {at::_add_batch_dim(seeds, 0, level)}, /*retain_graph=*/true,
                                 /*create_graph=*/false, /*allow_unused=*/true);
  for (auto& t : g)
    if (t.defined()) t = at::_remove_batch_dim(t, level, seeds.size(0), 0);
  return g;
}

RowMatrixF rows_of(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous();
  RowMatrixF m(c.size(0), c.size(1));
  std::memcpy(m.data(), c.data_ptr<float>(), sizeof(float) * static_cast<std::size_t>(c.numel()));
  return m;
}

}  // namespace

std::unique_ptr<ForwardPass> TorchScriptModel::forward(const InputBatch& x) {
  const at::Tensor input = to_tensor(x);
  auto pass = std::make_unique<TorchPass>();
  try {
    torch::AutoGradMode grad_mode(true);
    torch::jit::GraphOptimizerEnabledGuard plain(false);
    std::tie(pass->features, pass->outputs) = compute(input, true, true, /*graph=*/true);
  } catch (const DataError&) {
    throw;
  } catch (const std::exception& e) {
    fail(fmt::format("it failed on an input of shape [{}] ({}): {} (give it inputs of the shape and dtype it was exported for)",
                     fmt::join(x.shape, ", "), x.dtype == io::DType::I64 ? "int64" : "float32", short_error(e)));
  }
  pass->values.features = rows_of(pass->features);
  pass->values.outputs = rows_of(pass->outputs);
  return pass;
}

void TorchScriptModel::backward(ForwardPass& base, const RowMatrixF* d_features, const RowMatrixF* d_outputs, Gradients& grad) {
  auto& pass = dynamic_cast<TorchPass&>(base);
  std::vector<std::size_t> leaves;
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (params_[i].trainable) leaves.push_back(i);
  if (grad.names.empty()) {
    for (std::size_t i : leaves) {
      grad.names.push_back(params_[i].name);
      grad.values.emplace_back(static_cast<std::size_t>(params_[i].value.numel()), 0.f);
    }
  } else if (grad.names != trainable()) {
    throw Error(fmt::format("{}: the gradients were allocated for another set of trainable parameters", describe()));
  }
  std::vector<at::Tensor> roots, seeds;
  const auto add_root = [&](const at::Tensor& t, const RowMatrixF* d, const char* what) {
    if (!d) return;
    if (d->rows() != t.size(0) || d->cols() != t.size(1))
      throw Error(fmt::format("{}: dL/d{} is {}x{}, expected {}x{}", describe(), what, d->rows(), d->cols(), t.size(0), t.size(1)));
    if (!t.requires_grad()) return;  // nothing trainable feeds it
    roots.push_back(t);
    seeds.push_back(from_matrix(*d, t));
  };
  add_root(pass.features, d_features, "features");
  add_root(pass.outputs, d_outputs, "outputs");
  if (roots.empty() || leaves.empty()) return;
  std::vector<at::Tensor> inputs;
  for (std::size_t i : leaves) inputs.push_back(params_[i].value);
  std::vector<at::Tensor> g;
  try {
    g = torch::autograd::grad(roots, inputs, seeds, /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
  } catch (const std::exception& e) {
    // E.g. a parameter written between forward() and backward() (the interface forbids it).
    fail(fmt::format("its backward pass failed: {}", short_error(e)));
  }
  for (std::size_t k = 0; k < leaves.size(); ++k) {
    if (!g[k].defined()) continue;  // the parameter does not reach the loss
    const at::Tensor c = g[k].to(at::kFloat).contiguous();
    const float* src = c.data_ptr<float>();
    auto& dst = grad.values[k];
    for (std::size_t j = 0; j < dst.size(); ++j) dst[j] += src[j];
  }
}

// Per sample: one forward pass, then backward passes from d log p(y|x) / d logits = e_y - p, one
// per class (or per output column from e_t for values; one drawn class when sampled), each
// gradient squared and weighted by p(y|x). The classes of a sample go through one vectorised
// backward pass when their gradients fit in kBatchedGradientValues (else one pass each). Squares
// are summed over classes in float32 per sample, and over samples in float64, in sample order.
FisherDiagonal TorchScriptModel::fisher_diagonal(const InputBatch& x, bool sampled, std::uint64_t seed) {
  const bool logits = kind_ == OutputKind::Logits;
  if (sampled && !logits)
    throw Error(
        fmt::format("{}: the sampled Fisher information draws classes; this model's outputs are values (use the exact one)", describe()));
  std::vector<at::Tensor> leaves, totals;
  std::int64_t parameter_count = 0;
  for (const auto& p : params_) {
    leaves.push_back(p.value);
    totals.push_back(torch::zeros(p.value.sizes(), at::kDouble));
    parameter_count += p.value.numel();
  }
  const std::vector<std::string> was_trainable = trainable();
  std::vector<std::string> all;
  for (const auto& p : params_) all.push_back(p.name);
  set_trainable(all);
  seeding::SeededUniform rng(seed);
  try {
    torch::AutoGradMode grad_mode(true);
    torch::jit::GraphOptimizerEnabledGuard plain(false);
    for (std::int64_t i = 0; i < x.rows(); ++i) {
      const at::Tensor input = to_tensor(x.slice(i, 1));
      at::Tensor outputs;
      try {
        outputs = compute(input, false, true, /*graph=*/true).second;
      } catch (const DataError&) {
        throw;
      } catch (const std::exception& e) {
        fail(fmt::format("it failed on sample {} of shape [{}]: {}", i, fmt::join(x.shape, ", "), short_error(e)));
      }
      const std::int64_t classes = outputs.numel();
      std::vector<double> p(static_cast<std::size_t>(classes), 1.0);
      if (logits) {
        const at::Tensor probs = torch::softmax(outputs.detach().to(at::kDouble).reshape({-1}), 0);
        std::copy(probs.data_ptr<double>(), probs.data_ptr<double>() + classes, p.begin());
      }
      std::vector<std::int64_t> used;
      if (sampled)
        used.push_back(static_cast<std::int64_t>(draw_class(p, rng.next_u64())));
      else
        for (std::int64_t k = 0; k < classes; ++k)
          if (!logits || p[static_cast<std::size_t>(k)] > 0) used.push_back(k);
      // Row u: the backward seed of class used[u] and its weight.
      const auto count = static_cast<std::int64_t>(used.size());
      at::Tensor seeds = torch::zeros({count, classes}, at::kDouble), weights = torch::ones({count}, at::kFloat);
      auto seed_rows = seeds.accessor<double, 2>();
      auto weight_of = weights.accessor<float, 1>();
      for (std::int64_t u = 0; u < count; ++u) {
        const std::int64_t y = used[static_cast<std::size_t>(u)];
        if (logits) {
          for (std::int64_t k = 0; k < classes; ++k) seed_rows[u][k] = -p[static_cast<std::size_t>(k)];
          if (!sampled) weight_of[u] = float(p[static_cast<std::size_t>(y)]);
        }
        seed_rows[u][y] += 1.0;
      }
      seeds = seeds.to(outputs.scalar_type()).view({count, 1, classes});
      std::vector<at::Tensor> sample(leaves.size());
      const auto add = [&](std::size_t k, const at::Tensor& g, const at::Tensor& w) {  // g: B x shape
        const at::Tensor squares = at::matmul(w.unsqueeze(0), g.reshape({g.size(0), -1}).square()).view(leaves[k].sizes());
        sample[k] = sample[k].defined() ? sample[k] + squares : squares;
      };
      const std::int64_t chunk = std::clamp<std::int64_t>(kBatchedGradientValues / std::max<std::int64_t>(parameter_count, 1), 1, count);
      const std::string passes = fisher_passes();
      bool done = false;
      if (passes == "batched" || (passes != "loop" && chunk > 1 && batched_gradients_work.load())) {
        try {
          for (std::int64_t first = 0; first < count; first += chunk) {
            const std::int64_t n = std::min(chunk, count - first);
            const auto g = batched_gradients(outputs, leaves, seeds.narrow(0, first, n));
            for (std::size_t k = 0; k < leaves.size(); ++k)
              if (g[k].defined()) add(k, g[k].to(at::kFloat), weights.narrow(0, first, n));
          }
          done = true;
        } catch (const std::exception& e) {
          if (passes == "batched") fail(fmt::format("the batched Fisher passes failed: {}", short_error(e)));
          batched_gradients_work.store(false);  // an operation vmap cannot batch: one pass per class from now on
          sample.assign(leaves.size(), at::Tensor());
        }
      }
      if (!done)
        for (std::int64_t u = 0; u < count; ++u) {
          const auto g = torch::autograd::grad({outputs}, leaves, {seeds[u]}, /*retain_graph=*/true, /*create_graph=*/false,
                                               /*allow_unused=*/true);
          for (std::size_t k = 0; k < leaves.size(); ++k)
            if (g[k].defined()) add(k, g[k].to(at::kFloat).unsqueeze(0), weights.narrow(0, u, 1));
        }
      for (std::size_t k = 0; k < leaves.size(); ++k)
        if (sample[k].defined()) totals[k] += sample[k].to(at::kDouble);
    }
  } catch (...) {
    set_trainable(was_trainable);
    throw;
  }
  set_trainable(was_trainable);
  FisherDiagonal out;
  for (std::size_t k = 0; k < params_.size(); ++k) {
    out.names.push_back(params_[k].name);
    const at::Tensor c = totals[k].contiguous();
    out.values.emplace_back(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  }
  return out;
}

// A copy of the module (its slots hold the folded LoRA sums between passes), with the new head
// as a submodule and forward redefined to head(features), written by torch::jit::Module::save.
void TorchScriptModel::save(const std::filesystem::path& path) const {
  torch::NoGradGuard no_grad;
  torch::jit::Module copy = module_.clone();
  torch::jit::Module out = copy;
  try {
    if (head_prefix_) {
      torch::jit::Module head("__torch__.caulk.LinearHead");
      head.register_parameter("weight", params_[index_of(*head_prefix_ + ".weight")].value.detach().clone(), false);
      head.register_parameter("bias", params_[index_of(*head_prefix_ + ".bias")].value.detach().clone(), false);
      head.define("def forward(self, x):\n  return torch.linear(x, self.weight, self.bias)\n");
      if (feature_method_.empty()) {
        // The features are forward's output, which a redefined forward would lose: wrap instead
        // (the module's parameters are then named "backbone.*").
        out = torch::jit::Module("__torch__.caulk.Tuned");
        out.register_module("backbone", copy);
        out.register_module(*head_prefix_, head);
        out.define(
            fmt::format("def forward(self, x):\n  return self.{}.forward(self.backbone.forward(x).flatten(1))\n"
                        "def features(self, x):\n  return self.backbone.forward(x).flatten(1)\n",
                        *head_prefix_));
      } else {
        copy.register_module(*head_prefix_, head);
        copy.type()->unsafeRemoveMethod("forward");
        copy._ivalue()->compilation_unit()->unsafeRemoveMethod(c10::QualifiedName(*copy.type()->name(), "forward"));
        copy.define(
            fmt::format("def forward(self, x):\n  return self.{}.forward(self.{}(x).flatten(1))\n", *head_prefix_, feature_method_));
      }
    }
    std::ostringstream bytes;
    out.save(bytes);
    io::write_file_atomic(path, bytes.str());
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw DataError(path.string(), fmt::format("could not save {} as TorchScript: {}", describe(), short_error(e)));
  }
}

std::unique_ptr<Model> TorchScriptModel::clone() const {
  torch::NoGradGuard no_grad;
  std::unique_ptr<TorchScriptModel> copy(new TorchScriptModel(name(), file(), module_.deepcopy(), feature_method_));
  // The copy's own slots, then every leaf tensor copied (W0, factors and head included).
  std::vector<Param> params;
  for (const auto& p : params_) {
    Param q = p;
    q.value = p.value.detach().clone();
    if (p.owner) {
      const auto it = std::find_if(copy->params_.begin(), copy->params_.end(), [&](const Param& c) { return c.name == p.name; });
      q.owner = it->owner;
    }
    q.value.requires_grad_(p.trainable);
    params.push_back(std::move(q));
  }
  copy->params_ = std::move(params);
  for (const auto& p : copy->params_)
    if (p.owner && !lora_of(p.name)) copy->set_slot(p, p.value);
  copy->loras_ = loras_;
  copy->head_prefix_ = head_prefix_;
  copy->kind_ = kind_;
  copy->feature_dim_.store(feature_dim_.load());
  copy->output_dim_.store(output_dim_.load());
  copy->refresh_slots();
  return copy;
}

}  // namespace caulk::models::torchscript
