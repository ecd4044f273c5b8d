"""A small zoo of real PyTorch models for caulk's pipelines and tests: CNNs pre-trained on
different source tasks made from scikit-learn's digits images (8 x 8, shipped by Debian's
python3-sklearn), exported as TorchScript, with a hub manifest, a target task's .npy files and
PyTorch's own outputs of every model on it (docs/models.md).

Usage: /usr/bin/python3 scripts/make_digits_zoo.py OUT_DIR

Writes into OUT_DIR:
  hub.toml             the CNN hub: [[model]] torchscript + feature_method = "embed" (one entry
                       overrides its module's parameters with another model's `weights`)
  tokens_hub.toml      a model on int64 token ids (each pixel's intensity at its position)
  *.pt, *.safetensors  the models; parameters by PyTorch's names
  finetunes.toml       the digits CNN (base = true) and three fine-tunes of it on halves of the
                       target's training split: digits.pt with weights = ft_*.safetensors
  {train,val,test}_inputs.npy           target task images, N x 1 x 8 x 8 float32 (val: 100
                                        images no model saw, where the demo's averagers fit)
  {train,val,test}_tokens.npy           the same images as N x 64 int64 token ids
  {train,val,test}_labels.npy           target classes (the digit, 0-9), int64
  {train,val,test}_covariates.npy       N x 2: each image's coordinates on the first two principal
                                        axes of the train split's pixels (where a localized
                                        averager's weights may vary)
  ref/MODEL.SPLIT.features.npy          PyTorch's embed() of the file, float32
  ref/MODEL.SPLIT.probs.npy             softmax of forward()'s logits, float64
  ground_truth.csv     each CNN's linear-probe test accuracy (scikit-learn), to judge rankers by
  bad/                 inputs caulk must refuse clearly: not_torchscript.pt, a manifest naming a
                       feature method the module lacks, images flattened to N x 64
  SKIP                 (only) why nothing was written: this interpreter has no torch or sklearn
Everything is seeded and single-threaded; nothing is downloaded. Takes a few seconds.
"""
import json
import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
if os.path.exists(os.path.join(out, "SKIP")):
    os.remove(os.path.join(out, "SKIP"))
try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
except ImportError as e:
    with open(os.path.join(out, "SKIP"), "w") as f:
        f.write(f"{sys.executable} cannot import torch and sklearn ({e}): install Debian's python3-torch and "
                "python3-sklearn (scripts/install-deps.sh torch)\n")
    sys.exit(0)

torch.set_num_threads(1)
path = lambda *parts: os.path.join(out, *parts)  # noqa: E731
os.makedirs(path("ref"), exist_ok=True)
os.makedirs(path("bad"), exist_ok=True)


class DigitsCnn(nn.Module):
    """A small CNN on 1 x 8 x 8 images: embed() gives 32 features, forward() the source logits."""

    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.proj = nn.Linear(16 * 4, 32)
        self.fc = nn.Linear(32, classes)

    def embed(self, x):  # compiled by torch.jit.script as forward calls it
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.max_pool2d(h, 2)
        h = F.relu(self.conv2(h))
        h = F.adaptive_avg_pool2d(h, 2).flatten(1)
        return torch.tanh(self.proj(h))

    def forward(self, x):
        return self.fc(self.embed(x))


class PixelTokens(nn.Module):
    """A bag of (position, intensity) tokens, 64 per image: embed() gives 16 features."""

    def __init__(self, classes):
        super().__init__()
        self.tokens = nn.EmbeddingBag(64 * 17, 16, mode="mean")
        self.proj = nn.Linear(16, 16)
        self.fc = nn.Linear(16, classes)

    def embed(self, ids):
        return torch.tanh(self.proj(self.tokens(ids)))

    def forward(self, ids):
        return self.fc(self.embed(ids))


def save_npy(name, array):
    np.save(path(name), np.ascontiguousarray(array))


def write_safetensors(file, tensors):
    """The safetensors format by hand (Debian 12 has no python3-safetensors): a JSON header of
    dtype, shape and byte offsets, then the raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(file, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def train(model, x, y, epochs, seed):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            batch = order[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
    return model.eval()


# --- data: the first 1097 images pre-train the zoo, the next 100 are the target task's held-out
# validation split, the last 600 its train and test splits
digits = load_digits()
images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)  # N x 1 x 8 x 8
classes = torch.tensor(digits.target, dtype=torch.int64)
tokens = torch.tensor(digits.images.reshape(-1, 64), dtype=torch.int64) + 17 * torch.arange(64)
source = slice(0, 1097)
splits = {"train": slice(1197, 1497), "val": slice(1097, 1197), "test": slice(1497, 1797)}
pixels = images.flatten(1).double().numpy()
pixel_mean = pixels[splits["train"]].mean(axis=0)
principal_axes = np.linalg.svd(pixels[splits["train"]] - pixel_mean, full_matrices=False)[2][:2]
for split, rows in splits.items():
    save_npy(f"{split}_inputs.npy", images[rows].numpy())
    save_npy(f"{split}_tokens.npy", tokens[rows].numpy())
    save_npy(f"{split}_labels.npy", classes[rows].numpy())
    save_npy(f"{split}_covariates.npy", (pixels[rows] - pixel_mean) @ principal_axes.T)

# --- source tasks: other labelings of the same kind of images, so the zoo's models transfer
# to the target (the digit) to different degrees
source_tasks = {
    "digits": (classes, 10),
    "parity": (classes % 2, 2),
    "loops": (torch.isin(classes, torch.tensor([0, 6, 8, 9])).long(), 2),
    "small": ((classes < 5).long(), 2),
}
models = {}
for seed, (name, (labels, k)) in enumerate(source_tasks.items()):
    torch.manual_seed(100 + seed)
    models[name] = train(DigitsCnn(k), images[source], labels[source], epochs=6, seed=seed)
torch.manual_seed(200)
models["untrained"] = DigitsCnn(2).eval()

x_example = images[:4]
for name, m in models.items():
    if name == "loops":  # one traced module (both methods), the others scripted
        torch.jit.trace_module(m, {"forward": x_example, "embed": x_example}).save(path(f"{name}.pt"))
    else:
        torch.jit.script(m).save(path(f"{name}.pt"))
    write_safetensors(path(f"{name}.safetensors"), dict(m.named_parameters()))

torch.manual_seed(300)
token_model = train(PixelTokens(2), tokens[source], source_tasks["parity"][0][source], epochs=4, seed=7)
torch.jit.script(token_model).save(path("tokens.pt"))

manifest = ['[hub]\nname = "digits-cnns"\ndescription = "CNNs pre-trained on labelings of scikit-learn digits"\n']
for name in models:
    manifest.append(f'[[model]]\nname = "{name}"\ntorchscript = "{name}.pt"\nfeature_method = "embed"\n')
# The untrained module with the parity model's parameters (its BatchNorm statistics stay its own).
manifest.append('[[model]]\nname = "untrained_as_parity"\ntorchscript = "untrained.pt"\nfeature_method = "embed"\n'
                'weights = "parity.safetensors"\n')
with open(path("hub.toml"), "w") as f:
    f.write("\n".join(manifest))
with open(path("tokens_hub.toml"), "w") as f:
    f.write('[hub]\nname = "digits-tokens"\n\n[[model]]\nname = "tokens"\ntorchscript = "tokens.pt"\n'
            'feature_method = "embed"\n')


# --- fine-tunes of one pre-trained model, for merging: the "digits" CNN fine-tuned fully on three
# seeded halves of the target's training split (from the same start, in eval mode, as caulk tunes:
# BatchNorm keeps its running statistics, so the module's buffers stay valid for every fine-tune).
# Each is the base module with its own weights (PyTorch's names); finetunes.toml lists them with
# the base (base = true) for task-vector merges.
def fine_tune(start, x, y, epochs, seed):
    m = DigitsCnn(10)
    m.load_state_dict(start.state_dict())
    m.eval()
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 32):
            batch = order[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(m(x[batch]), y[batch]).backward()
            opt.step()
    return m


finetunes = {}
train_rows = torch.arange(splits["train"].start, splits["train"].stop)
for k, name in enumerate(("ft_a", "ft_b", "ft_c")):
    half = train_rows[torch.randperm(len(train_rows), generator=torch.Generator().manual_seed(10 + k))[:150]]
    finetunes[name] = fine_tune(models["digits"], images[half], classes[half], epochs=8, seed=20 + k)
    write_safetensors(path(f"{name}.safetensors"), dict(finetunes[name].named_parameters()))
with open(path("finetunes.toml"), "w") as f:
    f.write('[hub]\nname = "digits-finetunes"\ndescription = "the digits CNN fine-tuned on three halves of the target\'s '
            'training split"\n\n[[model]]\nname = "base"\ntorchscript = "digits.pt"\nfeature_method = "embed"\nbase = true\n')
    for name in finetunes:
        f.write(f'\n[[model]]\nname = "{name}"\ntorchscript = "digits.pt"\nfeature_method = "embed"\n'
                f'weights = "{name}.safetensors"\n')


# --- PyTorch's own outputs of the saved files (loaded back, as caulk loads them)
def reference(name, file, x, weights=None):
    m = torch.jit.load(path(file)).eval()
    if weights is not None:
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.copy_(weights[n])
    with torch.no_grad():
        for split, rows in splits.items():
            save_npy(f"ref/{name}.{split}.features.npy", m.embed(x[rows]).numpy())
            save_npy(f"ref/{name}.{split}.probs.npy", torch.softmax(m(x[rows]).double(), 1).numpy())


for name in models:
    reference(name, f"{name}.pt", images)
reference("untrained_as_parity", "untrained.pt", images, dict(models["parity"].named_parameters()))
reference("tokens", "tokens.pt", tokens)

# --- ground truth for judging rankers: each CNN's linear-probe test accuracy on the target task,
# fitted by scikit-learn (L2 logistic regression) on PyTorch's features of the train split
from sklearn.linear_model import LogisticRegression  # noqa: E402

with open(path("ground_truth.csv"), "w") as f:
    f.write("model,accuracy\n")
    for name in list(models) + ["untrained_as_parity"]:
        train_x, test_x = (np.load(path("ref", f"{name}.{s}.features.npy")).astype(np.float64) for s in ("train", "test"))
        probe = LogisticRegression(C=1.0, max_iter=5000).fit(train_x, classes[splits["train"]].numpy())
        f.write(f"{name},{probe.score(test_x, classes[splits['test']].numpy()):.6f}\n")

# --- what caulk must refuse, clearly
with open(path("bad", "not_torchscript.pt"), "wb") as f:
    f.write(b"PK\x03\x04 this is not a TorchScript archive" * 4)
with open(path("bad", "not_torchscript.toml"), "w") as f:
    f.write('[hub]\nname = "bad"\n[[model]]\nname = "broken"\ntorchscript = "not_torchscript.pt"\n')
with open(path("bad", "no_such_method.toml"), "w") as f:
    f.write('[hub]\nname = "bad"\n[[model]]\nname = "parity"\ntorchscript = "../parity.pt"\n'
            'feature_method = "features"\n')
save_npy("bad/test_inputs_flat.npy", images[splits["test"]].reshape(-1, 64).numpy())
print(f"digits zoo: {len(models) + 2} models and {len(finetunes)} fine-tunes in {out}")
