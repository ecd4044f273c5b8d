"""dataset.images against an independent computation in PyTorch, and through adapter.models.

Writes PNGs of known pixels (of several sizes and both orientations) and a small TorchScript CNN,
runs `caulk run` with dataset.images (resize, center crop, ImageNet mean/std) feeding
adapter.models, then checks (docs/datasets.md, "What is computed"):
  - the cached tensor equals torchvision's rules written out here: shorter side to `resize` with
    int(resize * long / short), PyTorch's bilinear F.interpolate(align_corners=False,
    antialias=False), crop offsets int(round((size - crop) / 2)), / 255, (x - mean) / std;
  - the features adapter.models wrote equal the module's own `embed` on that tensor.
Usage: torch_reference.py CAULK_BINARY. Exit 0 pass, 1 fail, 77 skip (no PyTorch or numpy).
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"skipped: {e} (Debian's python3-torch provides PyTorch)")
    sys.exit(77)


def pixels(k, h, w):
    return np.array([[[(k * 29 + y * 37 + x * 11 + c * 50 + 3) % 256 for c in range(3)] for x in range(w)] for y in range(h)],
                    dtype=np.uint8)


def write_png(path, rgb):
    """An 8-bit RGB PNG by hand (zlib and the PNG chunk layout): no imaging library needed."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4 * 3 * 3, 3)

    @torch.jit.export
    def embed(self, x):
        return torch.relu(self.conv(x)).flatten(1)

    def forward(self, x):
        return self.fc(self.embed(x))


def expected_tensor(images, resize, crop, mean, std):
    out = []
    for rgb in images:
        h, w, _ = rgb.shape
        x = torch.tensor(rgb, dtype=torch.float64).permute(2, 0, 1)[None]
        long_side = int(resize * max(h, w) / min(h, w))
        nh, nw = (resize, long_side) if h <= w else (long_side, resize)
        x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)[0]
        top, left = int(round((nh - crop) / 2.0)), int(round((nw - crop) / 2.0))
        x = x[:, top:top + crop, left:left + crop] / 255.0
        x = (x - torch.tensor(mean, dtype=torch.float64)[:, None, None]) / torch.tensor(std, dtype=torch.float64)[:, None, None]
        out.append(x)
    return torch.stack(out)


def main():
    caulk = sys.argv[1]
    work = tempfile.mkdtemp(prefix="caulk-images-torch-")
    try:
        # Classes a and b; rows in class order, then path order: 0.png, 2.png (a), 1.png, 3.png (b).
        sizes = [(9, 13), (13, 9), (10, 10), (11, 17)]
        for k, (h, w) in enumerate(sizes):
            write_png(os.path.join(work, "imgs", "ab"[k % 2], f"{k}.png"), pixels(k, h, w))
        order = [0, 2, 1, 3]
        resize, crop = 8, 5  # odd margins (3): Python rounds 1.5 to 2
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
        module = torch.jit.script(Net())
        module.save(os.path.join(work, "net.pt"))
        with open(os.path.join(work, "hub.toml"), "w") as f:
            f.write('[hub]\nname = "h"\n[[model]]\nname = "net"\ntorchscript = "net.pt"\nfeature_method = "embed"\n')
        with open(os.path.join(work, "p.toml"), "w") as f:
            f.write(f"""[pipeline]
name = "images-reference"
[[node]]
id = "images"
type = "dataset.images"
params = {{ splits = "imgs", resize = {resize}, crop = {crop}, mean = {mean}, std = {std} }}
[[node]]
id = "hub"
type = "checkpoint.load"
params = {{ manifest = "hub.toml" }}
[[node]]
id = "embed"
type = "adapter.models"
inputs = {{ data = "images.data", models = "hub" }}
""")
        r = subprocess.run([caulk, "run", os.path.join(work, "p.toml"), "--out", os.path.join(work, "out")], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            return 1
        expected = expected_tensor([pixels(k, *sizes[k]) for k in order], resize, crop, mean, std)
        cache = os.path.join(work, "imgs", ".caulk-images")
        got = np.load(os.path.join(cache, os.listdir(cache)[0]))
        failed = False
        if got.shape != tuple(expected.shape) or got.dtype != np.float32:
            print(f"tensor: shape {got.shape} {got.dtype}, expected {tuple(expected.shape)} float32")
            return 1
        diff = float(np.abs(got - expected.numpy()).max())
        print(f"tensor: max |caulk - torch| = {diff:.3g} (values up to {float(expected.abs().max()):.3g})")
        failed |= not diff < 1e-5
        features = np.load(os.path.join(work, "out", "embed", "net.train.features.npy"))
        reference = module.embed(expected.float()).detach().numpy()
        rel = float(np.abs(features - reference).max() / np.abs(reference).max())
        print(f"features: max relative difference from the module's own embed = {rel:.3g}")
        failed |= not rel < 1e-5
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
