"""Runs caulk's MLP checkpoints in PyTorch, built as docs/models.md says, and compares the
features and class probabilities with the ones caulk computed (adapter.mlp) on the same inputs.

Usage: load_in_pytorch.py RUN_DIR   (the output folder of tests/pytorch/checkpoints.toml)

The `safetensors` Python package is not packaged for Debian 12, so the file is read here with the
format's own definition (u64 header length, JSON header, raw little-endian data); everything after
that is the mapping of docs/models.md.
"""
import glob
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n :]
    state = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
        state[name] = torch.from_numpy(array.astype(np.float32))
    return meta, state


class Adapter(nn.Module):
    """h + up(act(down(h))), inserted after a layer's activation (docs/models.md)."""

    def __init__(self, state, l, act):
        super().__init__()
        down, up = state[f"adapters.{l}.down.weight"], state[f"adapters.{l}.up.weight"]
        self.down, self.up, self.act = nn.Linear(down.shape[1], down.shape[0]), nn.Linear(up.shape[1], up.shape[0]), act()
        with torch.no_grad():
            for part in ("down", "up"):
                getattr(self, part).weight.copy_(state[f"adapters.{l}.{part}.weight"])
                getattr(self, part).bias.copy_(state[f"adapters.{l}.{part}.bias"])

    def forward(self, h):
        return h + self.up(self.act(self.down(h)))


def build(meta, state):
    """The nn.Sequential of docs/models.md; returns it and the index that ends the features."""
    L = int(meta["layers"])
    act = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}[meta["activation"]]
    feature_layer = int(meta["feature_layer"])
    if any(k.startswith("lora.") for k in state):
        raise SystemExit("a checkpoint saved with save = 'merged' must have LoRA folded in")
    mods, load, feature_end = [], {}, None
    for l in range(L):
        w = state[f"layers.{l}.weight"]
        load[f"{len(mods)}.weight"], load[f"{len(mods)}.bias"] = w, state[f"layers.{l}.bias"]
        mods.append(nn.Linear(w.shape[1], w.shape[0]))
        if l < L - 1:
            mods.append(act())
            if f"adapters.{l}.down.weight" in state:
                mods.append(Adapter(state, l, act))
        if l == feature_layer:
            feature_end = len(mods)
    net = nn.Sequential(*mods)
    missing, unexpected = net.load_state_dict(load, strict=False)
    if unexpected or any(not m.split(".")[0].isdigit() or not isinstance(net[int(m.split(".")[0])], Adapter) for m in missing):
        raise SystemExit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    return net, feature_end


def main(run_dir):
    inputs = np.load(glob.glob(os.path.join(run_dir, "zoo", "**", "test_inputs.npy"), recursive=True)[0])
    x = torch.from_numpy(inputs.astype(np.float32))
    checkpoints = sorted(glob.glob(os.path.join(run_dir, "*", "**", "*.safetensors"), recursive=True))
    checked, worst = 0, 0.0
    for path in checkpoints:
        meta, state = read_safetensors(path)
        if meta.get("format") != "caulk.mlp":
            continue
        name = os.path.basename(path)[: -len(".safetensors")]
        feature_file = glob.glob(os.path.join(run_dir, "embed_*", "**", f"{name}.test.features.npy"), recursive=True)
        if not feature_file:
            raise SystemExit(f"no features from caulk for checkpoint {path}")
        net, feature_end = build(meta, state)
        with torch.no_grad():
            features = net[:feature_end](x).numpy()
            probs = net(x).softmax(-1).numpy()
        want_features = np.load(feature_file[0])
        want_probs = np.load(feature_file[0].replace(".features.npy", ".source_probs.npy"))
        for what, got, want in (("features", features, want_features), ("probabilities", probs, want_probs)):
            if got.shape != want.shape:
                raise SystemExit(f"{name}: {what} have shape {got.shape} in PyTorch, {want.shape} in caulk")
            err = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
            worst = max(worst, err)
            if err > 1e-4:
                raise SystemExit(f"{name}: {what} differ by {err:.3g} (relative to the largest value)")
        print(f"{name}: {len(net)} modules, features {features.shape}, agree with caulk")
        checked += 1
    if checked < 9:
        raise SystemExit(f"only {checked} checkpoints were compared (expected 3 pre-trained, 3 LoRA, 3 adapter)")
    print(f"{checked} checkpoints run in PyTorch agree with caulk (largest relative difference {worst:.2e})")


if __name__ == "__main__":
    main(sys.argv[1])
