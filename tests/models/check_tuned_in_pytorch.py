"""Loads a model tuned and saved by caulk in PyTorch, the two ways a user would, and checks that it
predicts what caulk computed (tests/models/test_torchscript_tuning.cpp runs it).

Usage: check_tuned_in_pytorch.py MODELS_DIR WORK_DIR
WORK_DIR holds caulk's tuned.pt, tuned.safetensors (LoRA folded), and caulk_features.npy and
caulk_outputs.npy (caulk's numbers on MODELS_DIR/x_cnn.npy).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import DigitsCnn, read_safetensors  # noqa: E402

models, work = sys.argv[1], sys.argv[2]
x = torch.from_numpy(np.load(os.path.join(models, "x_cnn.npy")))
want_features = np.load(os.path.join(work, "caulk_features.npy"))
want_outputs = np.load(os.path.join(work, "caulk_outputs.npy"))
failures = []


def check(what, got, want, tolerance=1e-5):
    got = got.detach().numpy() if torch.is_tensor(got) else got
    error = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
    print(f"{what}: relative error {error:.2e}")
    if not error <= tolerance:
        failures.append(f"{what}: relative error {error:.2e} > {tolerance}")


# 1. The TorchScript file: forward is the new head on the features; embed is still there.
tuned = torch.jit.load(os.path.join(work, "tuned.pt")).eval()
with torch.no_grad():
    check("tuned.pt forward", tuned(x), want_outputs)
    check("tuned.pt embed", tuned.embed(x), want_features)

# 2. The safetensors: PyTorch's parameter names, the same values as the .pt's parameters.
meta, state = read_safetensors(os.path.join(work, "tuned.safetensors"))
names = [n for n, _ in tuned.named_parameters()]
if names != list(state):
    failures.append(f"names differ: tuned.pt has {names}, tuned.safetensors has {list(state)}")
for n, p in tuned.named_parameters():
    if n in state and not torch.equal(p.detach(), state[n]):
        failures.append(f"{n}: tuned.pt and tuned.safetensors differ")
if meta.get("caulk.head") != "logits":
    failures.append(f"metadata caulk.head is {meta.get('caulk.head')!r}, expected 'logits'")

# 3. Into the user's own module: load_state_dict by name, then a new nn.Linear head.
eager = DigitsCnn().eval()
eager.load_state_dict(torch.jit.load(os.path.join(models, "cnn.pt")).state_dict())  # buffers
missing, unexpected = eager.load_state_dict({n: t for n, t in state.items() if not n.startswith("head.")}, strict=False)
if unexpected or any(not m.startswith("bn1.running") and not m.endswith("num_batches_tracked") for m in missing):
    failures.append(f"load_state_dict: missing {missing}, unexpected {unexpected}")
head = nn.Linear(32, 5)
head.load_state_dict({"weight": state["head.weight"], "bias": state["head.bias"]})
with torch.no_grad():
    check("eager module + head", head(eager.embed(x)), want_outputs)

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print("check_tuned_in_pytorch: ok")
