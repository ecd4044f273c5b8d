"""PyTorch's and numpy's side of ModelsPipeline.TheRealModelsDemoRanksTunesMergesAndAverages: checks
what pipelines/real_models/real_models.toml computed on the digits zoo against independent
computations from the files it wrote (docs/models.md, "The one-graph demo").

Usage: check_real_demo.py ZOO OUT
  ZOO  the zoo of scripts/make_digits_zoo.py (the modules and the target task's .npy files)
  OUT  the run's output folder (run.json and every node's folder)

Checks, on the test split:
  - every linear probe and every LoRA tune, loaded in PyTorch as caulk saved it (NAME.pt), and the
    LoRA tunes also as the top model's module with their safetensors (LoRA folded) and a linear
    head: the accuracy and log loss eval.classification reported (accuracy exactly, log loss 1e-5);
  - the uniform soup: the module with the mean of the three tunes' tensors (float64 in PyTorch)
    predicts the accuracy and log loss reported for 'soup';
  - the averagers: numpy's sum_k w_k(x) p_k(x) from the saved per-model predictions and the local
    averager's saved weights (the global average's from run.json) equals the averages' saved
    predictions (1e-12), and its accuracy and log loss are those reported.
Exits 1 with the differences on stderr. Nothing is downloaded.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import read_safetensors  # noqa: E402

torch.set_num_threads(1)
zoo, out = sys.argv[1], sys.argv[2]
run = json.load(open(os.path.join(out, "run.json")))
reported = run["nodes"]["accuracy"]["summary"]
x = torch.from_numpy(np.load(os.path.join(zoo, "test_inputs.npy")))
y = np.load(os.path.join(zoo, "test_labels.npy"))
failures = []


def check(what, got, want, tolerance):
    error = abs(got - want) / max(abs(want), 1e-30)
    print(f"{what}: {got:.6f} (caulk {want:.6f}, relative error {error:.1e})")
    if not error <= tolerance:
        failures.append(f"{what}: {got!r} but caulk reported {want!r} (relative error {error:.2e} > {tolerance})")


def check_probabilities(name, probabilities, how):
    p = np.asarray(probabilities, dtype=np.float64)
    check(f"{name} ({how}): accuracy", float((p.argmax(1) == y).mean()), reported[name]["accuracy"], 0)
    log_loss = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1)).mean())
    check(f"{name} ({how}): log loss", log_loss, reported[name]["log_loss"], 1e-5)


def softmax(logits):
    return torch.softmax(logits.double(), 1).numpy()


def module_with(weights):
    """The top model's module with `weights` (PyTorch's names) and their new head."""
    m = torch.jit.load(os.path.join(zoo, "digits.pt")).eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(weights[n])
        return softmax(F.linear(m.embed(x), weights["head.weight"].float(), weights["head.bias"].float()))


# The tuned models as saved: the TorchScript file whose forward is the new head.
probes = [name for name in run["nodes"]["probe"]["summary"] if isinstance(run["nodes"]["probe"]["summary"][name], dict)]
if sorted(probes) != sorted(["digits", "parity", "loops", "small", "untrained", "untrained_as_parity"]):
    failures.append(f"probe summary lists {probes}")
for node, name in [("probe", p) for p in probes] + [(t, t) for t in ("lora_a", "lora_b", "lora_c")]:
    with torch.no_grad():
        check_probabilities(name, softmax(torch.jit.load(os.path.join(out, node, f"{name}.pt")).eval()(x)), f"{name}.pt")

# The LoRA tunes and their soup through the module a user has: digits.pt plus the safetensors,
# which say what they were tuned from (the model LogME ranks first, digits).
tunes = {}
for t in ("lora_a", "lora_b", "lora_c"):
    meta, tunes[t] = read_safetensors(os.path.join(out, t, f"{t}.safetensors"))
    module = meta.get("caulk.tuned_from_module", "")
    if meta.get("caulk.tuned_from") != "digits" or os.path.basename(module) != "digits.pt":
        failures.append(f"{t}.safetensors: metadata caulk.tuned_from = {meta.get('caulk.tuned_from')!r}, "
                        f"caulk.tuned_from_module = {module!r}; expected digits and .../digits.pt")
for t, state in tunes.items():
    check_probabilities(t, module_with(state), f"digits.pt + {t}.safetensors")
check_probabilities("soup", module_with({n: sum(s[n].double() for s in tunes.values()) / 3 for n in tunes["lora_a"]}),
                    "digits.pt + the mean of the three")

# The averages, recomputed from the saved predictions and weights.
saved = os.path.join(out, "saved")
models = json.load(open(os.path.join(out, "local", "weight_function.json")))["models"]
P = np.stack([np.load(os.path.join(saved, f"{m}.test.npy")) for m in models])  # K x N x C
local_w = np.load(os.path.join(out, "local", "weights.test.npy"))  # N x K
global_w = run["nodes"]["global"]["summary"]["weights"]
for name, w in (("local", local_w), ("global", np.tile([global_w[m] for m in models], (len(y), 1)))):
    if w.shape != (len(y), len(models)) or not np.allclose(w.sum(1), 1, atol=1e-12, rtol=0) or (w < 0).any():
        failures.append(f"{name}: weights of shape {w.shape} are not on the simplex")
        continue
    mine = np.einsum("nk,knc->nc", w, P)
    theirs = np.load(os.path.join(saved, f"{name}.test.npy"))
    error = np.abs(mine - theirs).max()
    print(f"{name}: sum_k w_k p_k against the saved average: max difference {error:.1e}")
    if not error <= 1e-12:
        failures.append(f"{name}: the saved average differs from sum_k w_k p_k by {error:.2e}")
    check_probabilities(name, mine, "numpy")

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print("check_real_demo: ok")
