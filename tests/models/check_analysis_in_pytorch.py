"""Checks what caulk's analysis and merge nodes computed on TorchScript models against PyTorch
itself (tests/models/test_models_analysis.cpp runs it with Debian's /usr/bin/python3).

Usage:
  check_analysis_in_pytorch.py fisher MODULE WEIGHTS INPUTS N SAMPLED SEED FISHER
      FISHER (caulk's safetensors) must be the mean over the first N samples of INPUTS of the
      per-sample, per-class autograd loop (torch_reference.fisher_loop) on MODULE with WEIGHTS
      ("-": the module's own); SAMPLED 1 draws one class per sample from SEED.
  check_analysis_in_pytorch.py predict MODULE PREDICTIONS INPUTS WEIGHTS...
      PREDICTIONS (caulk's N x C probabilities, .npy) must be the softmax of MODULE's forward on
      INPUTS with its parameters set to the element-wise mean of the WEIGHTS files' tensors
      (one file: those weights; "-" alone: the module's own).
  check_analysis_in_pytorch.py ensemble MODULE PREDICTIONS INPUTS WEIGHTS...
      PREDICTIONS must be the mean over the WEIGHTS files of the softmax of MODULE's forward with
      each file's weights (an output ensemble).
  check_analysis_in_pytorch.py task_arithmetic MODULE PREDICTIONS INPUTS LAMBDA C1 WEIGHTS1 C2 WEIGHTS2...
      PREDICTIONS must be MODULE's probabilities with theta_0 + LAMBDA sum_i C_i (theta_i - theta_0),
      theta_0 the module's own parameters and theta_i those of WEIGHTS_i.
  check_analysis_in_pytorch.py greedy_soup MODULE PREDICTIONS INPUTS LABELS WEIGHTS...
      PREDICTIONS must be those of the greedy soup (Wortsman et al.: ingredients by their own log
      loss on INPUTS/LABELS, best first; each kept if the uniform average with it has a strictly
      lower log loss) of MODULE with each WEIGHTS ("-": the module's own); prints the kept ones.
  check_analysis_in_pytorch.py scale_stability MODULE WEIGHTS INPUTS LABELS POINTS
      POINTS (caulk's JSON list of {s, accuracy, agreement}) must be, for each s, the accuracy of
      MODULE with WEIGHTS ("-": its own) times s, and the share of its predicted classes equal to
      the unscaled model's.
  check_analysis_in_pytorch.py fisher_merge MERGED FISHER1 WEIGHTS1 FISHER2 WEIGHTS2...
      MERGED (caulk's safetensors) must be Matena and Raffel's Fisher merge with merge.fisher's
      defaults: sum_i c_i F'_i theta_i / sum_i c_i F'_i per element, F'_i = max(F_i, 1e-6) and
      c_i = 1 / ||F_i|| (the L2 norm of model i's whole Fisher).
Prints each relative error (max |caulk - PyTorch| / max |PyTorch|, per tensor) and exits 1 when
one exceeds 1e-5, or when names or shapes differ.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import fisher_loop, read_safetensors  # noqa: E402

torch.set_num_threads(1)
failures = []


def check(what, got, want, tolerance=1e-5):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        failures.append(f"{what}: shape {list(got.shape)} != PyTorch's {list(want.shape)}")
        return
    scale = max(np.abs(want).max(), 1e-30)
    error = np.abs(got - want).max() / scale
    print(f"{what}: relative error {error:.2e} (max {scale:.3e})")
    if not error <= tolerance:
        failures.append(f"{what}: relative error {error:.2e} > {tolerance}")


def load(module, weights):
    m = torch.jit.load(module).eval()
    if weights:
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.copy_(weights[n])
    return m


def mean_weights(files):
    states = [read_safetensors(f)[1] for f in files if f != "-"]
    if not states:
        return None
    return {n: sum(s[n].double() for s in states) / len(states) for n in states[0]}


mode = sys.argv[1]
if mode == "fisher":
    module, weights, inputs, n, sampled, seed, fisher = sys.argv[2:9]
    n, sampled, seed = int(n), sampled == "1", int(seed)
    m = load(module, None if weights == "-" else read_safetensors(weights)[1])
    x = torch.from_numpy(np.load(inputs))[:n]
    names = [name for name, _ in m.named_parameters()]
    want = fisher_loop(m, [p for _, p in m.named_parameters()], x, sampled=sampled, seed=seed)
    meta, got = read_safetensors(fisher)
    if list(got) != names:
        failures.append(f"Fisher tensors {list(got)} != PyTorch's named_parameters() {names}")
    for name, w in zip(names, want):
        if name in got:
            check(name, got[name], (w / n).numpy())
elif mode == "predict":
    module, predictions, inputs = sys.argv[2:5]
    m = load(module, mean_weights(sys.argv[5:]))
    with torch.no_grad():
        want = torch.softmax(m(torch.from_numpy(np.load(inputs))).double(), 1).numpy()
    check("probabilities", np.load(predictions), want)
elif mode == "ensemble":
    module, predictions, inputs = sys.argv[2:5]
    x = torch.from_numpy(np.load(inputs))
    members = []
    for f in sys.argv[5:]:
        with torch.no_grad():
            members.append(torch.softmax(load(module, read_safetensors(f)[1])(x).double(), 1).numpy())
    check("probabilities", np.load(predictions), sum(members) / len(members))
elif mode == "task_arithmetic":
    module, predictions, inputs, lam = sys.argv[2:6]
    m = torch.jit.load(module).eval()
    base = {n: p.detach().double().clone() for n, p in m.named_parameters()}
    merged = {n: t.clone() for n, t in base.items()}
    rest = sys.argv[6:]
    for c, f in zip(rest[0::2], rest[1::2]):
        theta = read_safetensors(f)[1]
        for n in merged:
            merged[n] += float(lam) * float(c) * (theta[n].double() - base[n])
    m = load(module, merged)
    with torch.no_grad():
        want = torch.softmax(m(torch.from_numpy(np.load(inputs))).double(), 1).numpy()
    check("probabilities", np.load(predictions), want)
elif mode == "greedy_soup":
    module, predictions, inputs, labels = sys.argv[2:6]
    x, y = torch.from_numpy(np.load(inputs)), np.load(labels)
    own = {n: p.detach().clone() for n, p in torch.jit.load(module).named_parameters()}
    states = [own if f == "-" else read_safetensors(f)[1] for f in sys.argv[6:]]

    def probabilities(members):
        avg = {n: sum(states[i][n].double() for i in members) / len(members) for n in own}
        with torch.no_grad():
            return torch.softmax(load(module, avg)(x).double(), 1).numpy()

    def log_loss(members):
        p = np.clip(probabilities(members)[np.arange(len(y)), y], 1e-15, 1)
        return -np.log(p).mean()

    scores = [log_loss([i]) for i in range(len(states))]
    order = sorted(range(len(states)), key=lambda i: scores[i])  # stable: ties keep the given order
    soup, best = [order[0]], scores[order[0]]
    for i in order[1:]:
        s = log_loss(soup + [i])
        if s < best:
            soup, best = soup + [i], s
    print("kept:", [sys.argv[6 + i] for i in soup])
    check("probabilities", np.load(predictions), probabilities(soup))
elif mode == "scale_stability":
    import json

    module, weights, inputs, labels, points = sys.argv[2:7]
    x, y = torch.from_numpy(np.load(inputs)), np.load(labels)
    m = load(module, None if weights == "-" else read_safetensors(weights)[1])
    original = {n: p.detach().clone() for n, p in m.named_parameters()}
    with torch.no_grad():
        unscaled = m(x).argmax(1).numpy()
    for point in json.loads(points):
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.copy_(original[n] * point["s"])
            classes = m(x).argmax(1).numpy()
        check(f"s = {point['s']}: accuracy", point["accuracy"], (classes == y).mean(), 1e-12)
        check(f"s = {point['s']}: agreement", point["agreement"], (classes == unscaled).mean(), 1e-12)
elif mode == "fisher_merge":
    merged = read_safetensors(sys.argv[2])[1]
    pairs = [(read_safetensors(f)[1], read_safetensors(w)[1]) for f, w in zip(sys.argv[3::2], sys.argv[4::2])]
    norms = [sum(float((t.double() ** 2).sum()) for t in fisher.values()) ** 0.5 for fisher, _ in pairs]
    for name in merged:
        num = sum(fisher[name].double().clamp(min=1e-6) * theta[name].double() / n for (fisher, theta), n in zip(pairs, norms))
        den = sum(fisher[name].double().clamp(min=1e-6) / n for (fisher, _), n in zip(pairs, norms))
        check(name, merged[name], (num / den).numpy())
else:
    sys.exit(f"unknown mode {mode}")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok")
