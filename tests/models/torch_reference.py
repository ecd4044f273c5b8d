"""Small PyTorch models and reference computations for caulk's TorchScript family (tests/models).

Imported by make_torch_models.py (which writes the models and PyTorch's own numbers before the
C++ tests run) and check_tuned_in_pytorch.py (which loads what caulk saved). Everything is seeded;
nothing is downloaded. The reference numbers come from PyTorch's autograd, never from caulk.
"""
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------
# Models


class DigitsCnn(nn.Module):
    """A small CNN on 1 x 8 x 8 images (sklearn digits' size): embed() gives 32 features."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.proj = nn.Linear(16 * 4, 32)
        self.fc = nn.Linear(32, classes)

    def embed(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.max_pool2d(h, 2)
        h = F.relu(self.conv2(h))
        h = F.adaptive_avg_pool2d(h, 2).flatten(1)
        return torch.tanh(self.proj(h))

    def forward(self, x):
        return self.fc(self.embed(x))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's resnet18 architecture and parameter names (python3-torchvision is not in
    Debian 12), random weights: conv1, bn1, layer1..layer4 of two BasicBlocks each, fc."""

    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths, cin = [64, 128, 256, 512], 64
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.fc = nn.Linear(512, classes)

    def embed(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x):
        return self.fc(self.embed(x))


class TokenBag(nn.Module):
    """int64 token ids (N x L): mean of embeddings, then a linear head."""

    def __init__(self, vocabulary=50, width=12, classes=4):
        super().__init__()
        self.emb = nn.Embedding(vocabulary, width)
        self.fc = nn.Linear(width, classes)

    def embed(self, tokens):
        return self.emb(tokens).mean(1)

    def forward(self, tokens):
        return self.fc(self.embed(tokens))


def randomise_batchnorm(model, generator):
    """Non-trivial running statistics and affine parameters, so eval mode is checked."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=generator))
                m.weight.copy_(1 + 0.1 * torch.randn(m.num_features, generator=generator))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=generator))


# ------------------------------------------------------------------------------------------
# Files


def write_safetensors(path, tensors, metadata=None):
    """The safetensors format by its definition (the Python package is not in Debian 12)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n :]
    kinds = {"F32": np.float32, "F64": np.float64}
    state = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        state[name] = torch.from_numpy(np.frombuffer(data[begin:end], dtype=kinds[t["dtype"]]).reshape(t["shape"]).copy())
    return meta, state


def save(path, tensor):
    np.save(path, tensor.detach().cpu().numpy())


# ------------------------------------------------------------------------------------------
# caulk's documented generator (docs/models.md), reimplemented to predict its sampled classes.

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self, bound):
        u = float(self.next() >> 11) * 2.0**-53
        return (2 * u - 1) * bound


def name_tag(name):
    """caulk's tag for a name: the 64-bit FNV-1a hash of its UTF-8 bytes."""
    h = 0xCBF29CE484222325
    for c in name.encode():
        h = ((h ^ c) * 0x100000001B3) & MASK
    return h


def derive_seed(base, *tags):
    """caulk's seed of the stream named by `tags` under `base` (docs/architecture.md, "Determinism")."""
    h = SplitMix64(base).next()
    for tag in tags:
        h = SplitMix64(h ^ ((tag * 0xD1B54A32D192ED03 + 0x8CB92BA72F3D8DD7) & MASK)).next()
    return h


def draw_class(p, draw):
    u = float(draw >> 11) * 2.0**-53
    cumulative = 0.0
    for k, pk in enumerate(p):
        cumulative += pk
        if u < cumulative:
            return k
    return max(k for k, pk in enumerate(p) if pk > 0)


def linear_init(outputs, inputs, seed):
    """caulk's head initialisation: nn.Linear's bound 1/sqrt(in), weight drawn column by column."""
    rng, bound = SplitMix64(seed), 1.0 / inputs**0.5
    w = np.zeros((outputs, inputs), dtype=np.float32)
    for j in range(inputs):
        for i in range(outputs):
            w[i, j] = rng.uniform(bound)
    b = np.array([rng.uniform(bound) for _ in range(outputs)], dtype=np.float32)
    return w, b


# ------------------------------------------------------------------------------------------
# Fisher information by a per-sample, per-class autograd loop


def fisher_loop(logits_of, params, x, sampled=False, seed=0, values=False):
    """sum over samples of sum_y p(y|x) (d log p(y|x)/d theta)^2 (or one drawn y; or, for values,
    sum_t (d f_t/d theta)^2), accumulated in float64 in sample order."""
    total = [torch.zeros(p.shape, dtype=torch.float64) for p in params]
    rng = SplitMix64(seed)
    for i in range(x.shape[0]):
        z = logits_of(x[i : i + 1])[0]
        if values:
            terms = [(z[t], 1.0) for t in range(z.shape[0])]
        else:
            logp = torch.log_softmax(z, 0)
            p = torch.softmax(z.detach().double(), 0).tolist()
            ys = [draw_class(p, rng.next())] if sampled else range(z.shape[0])
            terms = [(logp[y], 1.0 if sampled else p[y]) for y in ys]
        for j, (target, weight) in enumerate(terms):
            grads = torch.autograd.grad(target, params, retain_graph=j + 1 < len(terms), allow_unused=True)
            for t, g in zip(total, grads):
                if g is not None:
                    t += weight * g.double() ** 2
    return total
