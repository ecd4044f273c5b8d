"""Writes the ONNX models the C++ tests of caulk's ONNX family load (tests/models/test_onnx_model.cpp),
with PyTorch's own outputs for fixed inputs, a small task and hubs for `caulk run`.

Usage: make_onnx_models.py OUT_DIR
Writes OUT_DIR/SKIP (and exits 0) when this interpreter has no torch, so the tests skip with
that reason. Seeded; nothing is downloaded. The references are PyTorch's outputs of the eager
modules that were exported, never caulk's.
"""
import os
import sys
import warnings

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name in os.listdir(out):
    if name == "SKIP":
        os.remove(os.path.join(out, name))
try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    with open(os.path.join(out, "SKIP"), "w") as f:
        f.write(f"/usr/bin/python3 cannot import torch ({e}): install python3-torch (scripts/install-deps.sh torch)\n")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import DigitsCnn, ResNet18, TokenBag, randomise_batchnorm, save  # noqa: E402

warnings.filterwarnings("ignore")  # the exporter's notes on constant folding and tracing
torch.set_num_threads(1)
g = torch.Generator().manual_seed(21)
path = lambda *parts: os.path.join(out, *parts)  # noqa: E731
os.makedirs(path("ref"), exist_ok=True)
OPSET = 13


class LogitsAndFeatures(nn.Module):
    """forward returns (logits, features): the two graph outputs caulk reads."""

    def __init__(self, inner, view=False):
        super().__init__()
        self.inner, self.view = inner, view

    def forward(self, x):
        if self.view:  # x.view(x.size(0), -1) bakes the batch size into a Reshape in the export
            m = self.inner
            h = F.max_pool2d(F.relu(m.bn1(m.conv1(x))), 2)
            h = F.adaptive_avg_pool2d(F.relu(m.conv2(h)), 2)
            f = torch.tanh(m.proj(h.view(h.size(0), -1)))
        else:
            f = self.inner.embed(x)
        return self.inner.fc(f), f


def export(model, x, name, dynamic, outputs=("logits", "features")):
    axes = {n: {0: "n"} for n in ("x", *outputs)} if dynamic else None
    torch.onnx.export(model, x, path(name), input_names=["x"], output_names=list(outputs), dynamic_axes=axes,
                      opset_version=OPSET)


def reference(model, x, name):
    with torch.no_grad():
        logits, features = model(x)
    save(path("ref", f"{name}_features.npy"), features)
    save(path("ref", f"{name}_logits.npy"), logits)
    save(path("ref", f"{name}_probs.npy"), torch.softmax(logits, 1))


# --- the digits CNN, exported on 5 samples with and without a dynamic batch axis; run on 7
torch.manual_seed(0)
cnn = DigitsCnn().eval()
randomise_batchnorm(cnn, g)
x5 = torch.randn(5, 1, 8, 8, generator=g)
x7 = torch.randn(7, 1, 8, 8, generator=g)
save(path("x7.npy"), x7)
both = LogitsAndFeatures(cnn).eval()
export(both, x5, "cnn.onnx", dynamic=False)
export(both, x5, "cnn_dynamic.onnx", dynamic=True)
reference(both, x7, "cnn")
# Only the logits as a graph output: the features are the node output "/inner/Tanh_output_0".
torch.onnx.export(cnn, x5, path("cnn_logits_only.onnx"), input_names=["x"], output_names=["logits"],
                  dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, opset_version=OPSET)
# The batch size baked in: exported on 4 (caulk runs 7 as 4 + 3 padded) and dynamic (one by one).
viewed = LogitsAndFeatures(cnn, view=True).eval()
export(viewed, x5[:4], "cnn_view.onnx", dynamic=False)
export(viewed, x5, "cnn_view_dynamic.onnx", dynamic=True)
# The same CNN as TorchScript, for a mixed hub.
torch.jit.trace_module(cnn, {"forward": x5, "embed": x5}).save(path("cnn.pt"))

# --- ResNet-18 (torchvision's layout, random weights) on 2 x 3 x 32 x 32, dynamic batch
torch.manual_seed(1)
resnet = ResNet18(classes=10).eval()
randomise_batchnorm(resnet, g)
x_res = torch.randn(2, 3, 32, 32, generator=g)
save(path("x_res.npy"), x_res)
export(LogitsAndFeatures(resnet).eval(), x_res[:1], "resnet18.onnx", dynamic=True)
reference(LogitsAndFeatures(resnet).eval(), x_res, "resnet18")

# --- int64 inputs: a model that casts its ids to float (OpenCV 4.6 runs Cast, not Embedding's Gather)
class IdsAsFloats(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj, self.fc = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, ids):
        f = torch.relu(self.proj(ids.float() / 50.0))
        return self.fc(f), f


torch.manual_seed(2)
ids = IdsAsFloats().eval()
x_ids = torch.randint(0, 50, (4, 6), generator=g)
save(path("x_ids.npy"), x_ids)
export(ids, x_ids, "ids.onnx", dynamic=True)
reference(ids, x_ids, "ids")
# Embedding: its Gather of a weight table by the input ids is beyond OpenCV 4.6's importer.
tokens = TokenBag().eval()
torch.onnx.export(tokens, x_ids, path("embedding.onnx"), input_names=["x"], output_names=["logits"], opset_version=OPSET)

# Operators OpenCV 4.6 imports but computes wrongly (caulk refuses them by name).
class Wrong(nn.Module):
    def __init__(self, op):
        super().__init__()
        self.op = op

    def forward(self, x):
        y = torch.cumsum(x, 1) if self.op == "cumsum" else F.avg_pool2d(x, 3, 2, 1, count_include_pad=False).flatten(1)
        return y, y


for op in ("cumsum", "avg_pool_excluding_padding"):
    export(Wrong(op).eval(), x5, f"{op}.onnx", dynamic=True)

with open(path("not_onnx.onnx"), "wb") as f:
    f.write(b"\x08\x07\x12\x03abc this is not an ONNX model" * 4)

# --- a small task for `caulk run`: 24 train and 17 test images of the CNN's shape, 3 classes
train = torch.randn(24, 1, 8, 8, generator=g)
test = torch.randn(17, 1, 8, 8, generator=g)
for split, x in (("train", train), ("test", test)):
    save(path(f"task_{split}_inputs.npy"), x)
    np.save(path(f"task_{split}_labels.npy"), (torch.arange(x.shape[0]) % 3).numpy().astype(np.int64))
    reference(both, x, f"task_{split}")
hubs = {
    "hub.toml": [("cnn", 'onnx = "cnn.onnx"\nfeature_output = "features"'),
                 ("cnn_view", 'onnx = "cnn_view.onnx"\nfeature_output = "features"'),
                 ("cnn_inner", 'onnx = "cnn_logits_only.onnx"\nfeature_output = "/Tanh_output_0"')],
    "mixed_hub.toml": [("cnn_onnx", 'onnx = "cnn_dynamic.onnx"\nfeature_output = "features"'),
                       ("cnn_torchscript", 'torchscript = "cnn.pt"\nfeature_method = "embed"')],
}
for hub, models in hubs.items():
    with open(path(hub), "w") as f:
        f.write('[hub]\nname = "onnx-test"\n')
        for name, entry in models:
            f.write(f'\n[[model]]\nname = "{name}"\n{entry}\n')
