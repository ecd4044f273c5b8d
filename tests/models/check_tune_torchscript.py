"""PyTorch's side of tests/models/test_tune_torchscript_nodes.cpp: writes a small target task for
the TorchScript CNN of make_torch_models.py, and checks what caulk's tuning nodes wrote against
PyTorch's own computations (autograd gradients, torch.optim steps, the saved models' predictions).

Usage:
  check_tune_torchscript.py data MODELS_DIR OUT
  check_tune_torchscript.py predict MODELS_DIR DATA_DIR NODE_DIR NAME CLASSES EVAL_JSON
      EVAL_JSON: {"log_loss": ..., "accuracy": ...} of caulk's eval.classification on the test split
  check_tune_torchscript.py step MODELS_DIR DATA_DIR TUNED OPTIMIZER LR MOMENTUM WD SEED GLOBS
      one optimiser step of a new 3-class head (caulk's initialisation from SEED) and the
      parameters matching GLOBS (JSON list; "*" = all) on every training sample, as torch.optim
      does it; compared with the safetensors TUNED (a trailing "values": 2 regression targets, MSE)
Exits 1 with the differences on stderr when a check fails. Nothing is downloaded.
"""
import fnmatch
import json
import os
import sys

import numpy as np

failures = []


def check(what, got, want, tolerance=1e-5):
    got = got.detach().numpy() if torch.is_tensor(got) else np.asarray(got)
    want = want.detach().numpy() if torch.is_tensor(want) else np.asarray(want)
    if got.shape != want.shape:
        failures.append(f"{what}: shape {got.shape}, expected {want.shape}")
        return
    error = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
    print(f"{what}: relative error {error:.2e}")
    if not error <= tolerance:
        failures.append(f"{what}: relative error {error:.2e} > {tolerance}")


def finish():
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)
    print("ok")


def load_x(data, split):
    return torch.from_numpy(np.load(os.path.join(data, f"x_{split}.npy")))


def load_y(data, split):
    return torch.from_numpy(np.load(os.path.join(data, f"y_{split}.npy"))).long()


def data(models, out):
    os.makedirs(out, exist_ok=True)
    g = np.random.default_rng(5)  # numpy only: no torch import for the data (faster tests)
    patterns = g.standard_normal((3, 1, 8, 8))
    for split, n in (("train", 24), ("val", 12), ("test", 15)):
        y = np.arange(n) % 3
        x = (patterns[y] + 0.8 * g.standard_normal((n, 1, 8, 8))).astype(np.float32)
        np.save(os.path.join(out, f"x_{split}.npy"), x)
        np.save(os.path.join(out, f"y_{split}.npy"), y.astype(np.int64))
        np.save(os.path.join(out, f"v_{split}.npy"), x.mean(axis=(1, 2, 3))[:, None] * np.array([[1.0, -2.0]]))
    with open(os.path.join(out, "hub.toml"), "w") as f:
        f.write('[hub]\nname = "cnns"\n')
        f.write(f'[[model]]\nname = "cnn"\ntorchscript = "{os.path.join(models, "cnn.pt")}"\nfeature_method = "embed"\n')
        f.write(f'[[model]]\nname = "cnn_traced"\ntorchscript = "{os.path.join(models, "cnn_traced.pt")}"\nfeature_method = "embed"\n')


def predict(models, data_dir, node_dir, name, classes, eval_json):
    x, y = load_x(data_dir, "test"), load_y(data_dir, "test")
    want = json.loads(eval_json)
    delta = os.path.exists(os.path.join(node_dir, f"{name}.delta.safetensors"))
    meta, state = read_safetensors(os.path.join(node_dir, f"{name}.delta.safetensors" if delta else f"{name}.safetensors"))
    # 1. the tuned TorchScript file caulk saved (save = "merged" only)
    tuned = None if delta else torch.jit.load(os.path.join(node_dir, f"{name}.pt")).eval()
    # 2. the original module with the tuned safetensors (what the Checkpoint entry names; a delta
    #    holds only the tuned tensors, the module the rest)
    module = torch.jit.load(os.path.join(models, "cnn.pt")).eval()
    with torch.no_grad():
        for n, p in module.named_parameters():
            if n in state:
                p.copy_(state[n])
        head_w, head_b = state["head.weight"], state["head.bias"]
        runs = [("module + safetensors", F.linear(module.embed(x), head_w, head_b))]
        if tuned is not None:
            runs.append(("tuned.pt", tuned(x)))
        for what, logits in runs:
            if logits.shape != (x.shape[0], classes):
                failures.append(f"{what}: logits of shape {tuple(logits.shape)}")
                continue
            log_p = F.log_softmax(logits.double(), dim=1)
            check(f"{what}: log loss", -log_p[torch.arange(len(y)), y].mean().item(), want["log_loss"])
            check(f"{what}: accuracy", (logits.argmax(1) == y).double().mean().item(), want["accuracy"], 1e-12)
    finish()


def step(models, data_dir, tuned, optimizer, lr, momentum, wd, seed, globs, values=False):
    x, y = load_x(data_dir, "train"), load_y(data_dir, "train")
    if values:  # regression on the two target columns of v_train.npy: mean squared error
        y = torch.from_numpy(np.load(os.path.join(data_dir, "v_train.npy"))).float()
    module = torch.jit.load(os.path.join(models, "cnn.pt")).eval()
    names = [n for n, _ in module.named_parameters()]
    chosen = [n for n, _ in module.named_parameters() if any(fnmatch.fnmatchcase(n, g) for g in globs)]
    # A tuning run gives model M the stream derive_seed(seed, 2, name_tag(M)) (docs/architecture.md,
    # "Determinism").
    w0, b0 = linear_init(2 if values else 3, 32, derive_seed(seed, 2, name_tag("cnn")))
    hw, hb = torch.tensor(w0).requires_grad_(), torch.tensor(b0).requires_grad_()
    params = dict(module.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    z = F.linear(module.embed(x), hw, hb)
    loss = F.mse_loss(z, y) if values else F.cross_entropy(z, y)
    leaves = [params[n] for n in chosen] + [hw, hb]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    copies = []
    for leaf, gr in zip(leaves, grads):
        c = leaf.detach().clone().requires_grad_()
        c.grad = torch.zeros_like(c) if gr is None else gr.clone()
        copies.append(c)
    decay = [c for c in copies if c.dim() >= 2]
    plain = [c for c in copies if c.dim() < 2]
    groups = [{"params": decay, "weight_decay": wd}, {"params": plain, "weight_decay": 0.0}]
    opt = torch.optim.SGD(groups, lr=lr, momentum=momentum) if optimizer == "sgd" else torch.optim.AdamW(groups, lr=lr)
    opt.step()
    meta, state = read_safetensors(tuned)
    for n, c in zip(chosen + ["head.weight", "head.bias"], copies):
        if optimizer == "adam":
            # Adam's first step is lr g / (|g| + eps) (plus the decay): where |g| is near eps (a sum
            # of the batch's terms cancelling), the rounding of g in another summation order moves
            # it by up to lr. Elements with |g| > 1e-5 are compared tightly; the others within lr.
            big = c.grad.abs() > 1e-5
            if big.any():
                check(f"{n} after one adam step (|g| > 1e-5)", state[n][big], c[big])
            else:  # unused by the new head (the source head fc): only the decay moves it
                check(f"{n} after one adam step (no gradient)", state[n], c)
            if not (state[n] - c.detach()).abs().max().item() <= 1.01 * lr:
                failures.append(f"{n}: an element with a tiny gradient moved by more than the learning rate")
        else:
            check(f"{n} after one {optimizer} step", state[n], c)
        moves = bool(c.grad.abs().max() > 0) or (c.dim() >= 2 and wd > 0)
        if moves and n in before and torch.equal(state[n], before[n]):
            failures.append(f"{n}: trainable but unchanged")
    for n in names:
        if n not in chosen:
            check(f"{n} (frozen)", state[n], before[n], 0.0)
    finish()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd != "data":
        import torch
        import torch.nn.functional as F

        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_reference import derive_seed, linear_init, name_tag, read_safetensors

        torch.set_num_threads(1)
    if cmd == "data":
        data(sys.argv[2], sys.argv[3])
    elif cmd == "predict":
        predict(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7])
    elif cmd == "step":
        step(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8]),
             int(sys.argv[9]), json.loads(sys.argv[10]), len(sys.argv) > 11 and sys.argv[11] == "values")
    else:
        sys.exit(f"unknown command {cmd}")
