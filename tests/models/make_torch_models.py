"""Writes the TorchScript models the C++ tests of caulk's TorchScript family load, with PyTorch's
own outputs, gradients and Fisher information for fixed inputs (tests/models/test_torchscript_*.cpp).

Usage: make_torch_models.py OUT_DIR
Writes OUT_DIR/SKIP (and exits 0) when this interpreter has no torch, so the tests skip with
that reason. Seeded; nothing is downloaded.
"""
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name in os.listdir(out):
    if name == "SKIP":
        os.remove(os.path.join(out, name))
try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    with open(os.path.join(out, "SKIP"), "w") as f:
        f.write(f"/usr/bin/python3 cannot import torch ({e}): install python3-torch (scripts/install-deps.sh torch)\n")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import (DigitsCnn, ResNet18, TokenBag, fisher_loop, linear_init,  # noqa: E402
                             randomise_batchnorm, save, write_safetensors)

torch.set_num_threads(1)
g = torch.Generator().manual_seed(20)
path = lambda *parts: os.path.join(out, *parts)  # noqa: E731
for folder in ("ref", "grad_cnn", "lora", "grad_lora", "grad_resnet", "fisher_cnn", "fisher_sampled", "fisher_values"):
    os.makedirs(path(folder), exist_ok=True)

# --- models and inputs
torch.manual_seed(0)
cnn = DigitsCnn().eval()
randomise_batchnorm(cnn, g)
x_cnn = torch.randn(5, 1, 8, 8, generator=g)
torch.jit.script(cnn).save(path("cnn.pt"))
torch.jit.trace_module(cnn, {"forward": x_cnn, "embed": x_cnn}).save(path("cnn_traced.pt"))

torch.manual_seed(1)
resnet = ResNet18().eval()
randomise_batchnorm(resnet, g)
x_res = torch.randn(2, 3, 32, 32, generator=g)
torch.jit.trace_module(resnet, {"forward": x_res, "embed": x_res}).save(path("resnet18.pt"))

torch.manual_seed(2)
tokens = TokenBag().eval()
x_tok = torch.randint(0, 50, (4, 6), generator=g)
torch.jit.script(tokens).save(path("tokens.pt"))

with open(path("not_torchscript.pt"), "wb") as f:
    f.write(b"PK\x03\x04 this is not a TorchScript archive" * 4)
save(path("x_cnn.npy"), x_cnn)
save(path("x_res.npy"), x_res)
save(path("x_tok.npy"), x_tok)

# --- PyTorch's outputs of the same files
with torch.no_grad():
    for name, x in (("cnn", x_cnn), ("cnn_traced", x_cnn), ("resnet18", x_res), ("tokens", x_tok)):
        m = torch.jit.load(path(f"{name}.pt"))
        save(path("ref", f"{name}_features.npy"), m.embed(x))
        save(path("ref", f"{name}_logits.npy"), m(x))

# --- gradients of a loss sum(features * gf) + sum(head(features) * go), head 5 x 32
m = torch.jit.load(path("cnn.pt"))
hw = torch.tensor(linear_init(5, 32, seed=11)[0])
hb = torch.tensor(linear_init(5, 32, seed=11)[1])
save(path("ref", "head_init_weight.npy"), hw)  # what caulk's replace_head(5, seed 11) must draw
save(path("ref", "head_init_bias.npy"), hb)
hw = (0.3 * torch.randn(5, 32, generator=g)).requires_grad_()
hb = (0.1 * torch.randn(5, generator=g)).requires_grad_()
gf = torch.randn(5, 32, generator=g)
go = torch.randn(5, 5, generator=g)
for n, t in (("head_weight", hw), ("head_bias", hb), ("gf", gf), ("go", go)):
    save(path("ref", f"{n}.npy"), t)
names = [n for n, _ in m.named_parameters()]
params = [p for _, p in m.named_parameters()]
features = m.embed(x_cnn)
loss = (features * gf).sum() + (F.linear(features, hw, hb) * go).sum()
grads = torch.autograd.grad(loss, params + [hw, hb], allow_unused=True)
for n, p, gr in zip(names + ["head.weight", "head.bias"], params + [hw, hb], grads):
    save(path("grad_cnn", f"{n}.npy"), torch.zeros_like(p) if gr is None else gr)  # fc: unused by the new head

# --- LoRA on proj.weight (2-D) and conv2.weight (4-D, as 16 x 72), rank 2, alpha 3, random A and
# B (B = 0 would leave A's gradient zero), by reparameterising an eager copy of the module.
eager = DigitsCnn().eval()
eager.load_state_dict(cnn.state_dict())
scale = 3.0 / 2
factors = {}
for weight, (out_dim, in_dim) in (("proj.weight", (32, 64)), ("conv2.weight", (16, 72))):
    a = (torch.randn(2, in_dim, generator=g) / in_dim**0.5).requires_grad_()
    b = (0.2 * torch.randn(out_dim, 2, generator=g)).requires_grad_()
    factors[weight] = (a, b)
    save(path("lora", f"{weight}.lora_A.npy"), a)
    save(path("lora", f"{weight}.lora_B.npy"), b)
for weight, (a, b) in factors.items():
    module = eager.proj if weight == "proj.weight" else eager.conv2
    w0 = module.weight.detach().clone()
    del module.weight
    module.weight = w0 + scale * (b @ a).view(w0.shape)
features = eager.embed(x_cnn)
outputs = F.linear(features, hw, hb)
save(path("ref", "lora_features.npy"), features)
save(path("ref", "lora_outputs.npy"), outputs)
loss = (features * gf).sum() + (outputs * go).sum()
leaves = [factors["conv2.weight"][0], factors["conv2.weight"][1], factors["proj.weight"][0], factors["proj.weight"][1], hw, hb]
leaf_names = ["conv2.weight.lora_A", "conv2.weight.lora_B", "proj.weight.lora_A", "proj.weight.lora_B", "head.weight", "head.bias"]
for n, gr in zip(leaf_names, torch.autograd.grad(loss, leaves)):
    save(path("grad_lora", f"{n}.npy"), gr)

# --- ResNet-18, partial tuning of layer4 and a 3-class head
r = torch.jit.load(path("resnet18.pt"))
rw = (0.05 * torch.randn(3, 512, generator=g)).requires_grad_()
rb = (0.05 * torch.randn(3, generator=g)).requires_grad_()
rgf = torch.randn(2, 512, generator=g)
rgo = torch.randn(2, 3, generator=g)
for n, t in (("resnet_head_weight", rw), ("resnet_head_bias", rb), ("resnet_gf", rgf), ("resnet_go", rgo)):
    save(path("ref", f"{n}.npy"), t)
chosen = [(n, p) for n, p in r.named_parameters() if n.startswith("layer4.")]
features = r.embed(x_res)
loss = (features * rgf).sum() + (F.linear(features, rw, rb) * rgo).sum()
grads = torch.autograd.grad(loss, [p for _, p in chosen] + [rw, rb])
for n, gr in zip([n for n, _ in chosen] + ["head.weight", "head.bias"], grads):
    save(path("grad_resnet", f"{n}.npy"), gr)

# --- Fisher information: exact and sampled (seed 7) over the source head's 10 classes; exact for
# a values head of 3 outputs
params = [p for _, p in m.named_parameters()]
for n, f in zip(names, fisher_loop(m, params, x_cnn)):
    save(path("fisher_cnn", f"{n}.npy"), f)
for n, f in zip(names, fisher_loop(m, params, x_cnn, sampled=True, seed=7)):
    save(path("fisher_sampled", f"{n}.npy"), f)
vw = 0.3 * torch.randn(3, 32, generator=g)
vb = 0.1 * torch.randn(3, generator=g)
vw.requires_grad_()
vb.requires_grad_()
save(path("ref", "values_head_weight.npy"), vw)
save(path("ref", "values_head_bias.npy"), vb)
values_of = lambda x: F.linear(m.embed(x), vw, vb)  # noqa: E731
for n, f in zip(names + ["head.weight", "head.bias"], fisher_loop(values_of, params + [vw, vb], x_cnn, values=True)):
    save(path("fisher_values", f"{n}.npy"), f)

# --- weights overriding parameters by name, and files that do not fit
state = {n: p.detach().clone() for n, p in m.named_parameters()}
override = {"conv1.weight": 0.5 * state["conv1.weight"], "fc.bias": state["fc.bias"] + 1.0}
write_safetensors(path("weights_ok.safetensors"), override)
with torch.no_grad():
    for n, p in m.named_parameters():
        if n in override:
            p.copy_(override[n])
    save(path("ref", "weights_logits.npy"), m(x_cnn))
write_safetensors(path("weights_unknown.safetensors"), {"conv9.weight": state["conv1.weight"]})
write_safetensors(path("weights_shape.safetensors"), {"fc.bias": torch.zeros(11)})

print(f"make_torch_models: wrote {len(os.listdir(out))} entries to {out}")
