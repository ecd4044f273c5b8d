"""PyTorch's side of bench/bench_torch.cpp (docs/performance.md, "TorchScript models").

  torch_models.py make DIR            writes resnet18_224.pt (traced, random weights, with embed),
                                      digits_cnn.pt (scripted) and the inputs, seeded
  torch_models.py time DIR THREADS [--fisher]
                                      times PyTorch on them with THREADS intra-op threads (the
                                      Fisher only with --fisher) and prints one JSON object of
                                      seconds
  torch_models.py images DIR N        writes images_N.npy (N x 3 x 224 x 224 float32, seeded) and
                                      labels_N.npy for the whole-process comparison
  torch_models.py process DIR N THREADS OUT
                                      the whole-process side of PyTorch eager (bench_torch
                                      --process times this process from outside): import torch,
                                      build the nn.Module, load the .pt's weights into it, load
                                      images_N.npy, embed it in batches of 64 with THREADS
                                      intra-op threads, save the features to OUT (.npy)

Run by bench_torch with Debian's /usr/bin/python3; nothing is downloaded (the digits images come
with python3-sklearn).
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "models"))
from torch_reference import DigitsCnn, ResNet18, randomise_batchnorm  # noqa: E402

BATCH, BATCHES, FISHER_SAMPLES = 64, 3, 64


def make(folder):
    os.makedirs(folder, exist_ok=True)
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(0)
    resnet = ResNet18().eval()
    randomise_batchnorm(resnet, g)
    x = torch.randn(BATCH, 3, 224, 224, generator=g)
    torch.jit.trace_module(resnet, {"forward": x[:1], "embed": x[:1]}).save(os.path.join(folder, "resnet18_224.pt"))
    np.save(os.path.join(folder, "images_224.npy"), x.numpy())
    torch.manual_seed(1)
    cnn = DigitsCnn().eval()
    randomise_batchnorm(cnn, g)
    torch.jit.script(cnn).save(os.path.join(folder, "digits_cnn.pt"))
    try:
        from sklearn.datasets import load_digits

        images = load_digits().images[:FISHER_SAMPLES].astype(np.float32) / 16.0
    except ImportError:
        images = torch.rand(FISHER_SAMPLES, 8, 8, generator=g).numpy()
    np.save(os.path.join(folder, "digits.npy"), images.reshape(-1, 1, 8, 8))


def best_of(repeats, fn):
    """[wall seconds, CPU seconds of the process], each the best of the repeats."""
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return [min(walls), min(cpus)]


def fisher_loop(model, params, x):
    """The careful loop: one forward per sample, one autograd.grad per class with the graph kept,
    squares weighted by p(y|x) accumulated in place."""
    total = [torch.zeros_like(p) for p in params]
    for i in range(x.shape[0]):
        logp = torch.log_softmax(model(x[i : i + 1])[0], 0)
        p = logp.detach().exp()
        for y in range(logp.shape[0]):
            grads = torch.autograd.grad(logp[y], params, retain_graph=y + 1 < logp.shape[0], allow_unused=True)
            for t, gr in zip(total, grads):
                if gr is not None:
                    t.addcmul_(gr, gr, value=float(p[y]))
    return total


def fisher_batched_grads(model, params, x):
    """The same with all classes of a sample in one vmapped backward (autograd.grad's
    is_grads_batched)."""
    total = [torch.zeros_like(p) for p in params]
    for i in range(x.shape[0]):
        logp = torch.log_softmax(model(x[i : i + 1])[0], 0)
        p = logp.detach().exp()
        eye = torch.eye(logp.shape[0])
        grads = torch.autograd.grad(logp, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True)
        for t, gr in zip(total, grads):
            if gr is not None:
                t += (gr * gr * p.view(-1, *([1] * (gr.dim() - 1)))).sum(0)
    return total


def time_all(folder, threads, fisher_only):
    torch.set_num_threads(threads)
    out = {"threads": threads, "torch": torch.__version__}
    if not fisher_only:
        time_resnet(folder, out)
    time_fisher(folder, out)
    print(json.dumps(out))


def time_resnet(folder, out):
    x = torch.from_numpy(np.load(os.path.join(folder, "images_224.npy")))
    scripted = torch.jit.load(os.path.join(folder, "resnet18_224.pt")).eval()
    eager = ResNet18().eval()
    eager.load_state_dict(scripted.state_dict())
    with torch.no_grad():
        for name, fn in (("resnet_jit", scripted.embed), ("resnet_eager", eager.embed)):
            fn(x[:2])  # warm-up
            out[name] = [t / BATCHES for t in best_of(2, lambda: [fn(x) for _ in range(BATCHES)])]


def time_fisher(folder, out):
    digits = torch.from_numpy(np.load(os.path.join(folder, "digits.npy")))
    cnn_jit = torch.jit.load(os.path.join(folder, "digits_cnn.pt")).eval()
    cnn_eager = DigitsCnn().eval()
    cnn_eager.load_state_dict(cnn_jit.state_dict())
    for name, model in (("fisher_eager", cnn_eager), ("fisher_jit", cnn_jit)):
        params = list(model.parameters())
        fisher_loop(model, params, digits[:4])
        out[name] = best_of(3, lambda: fisher_loop(model, params, digits))
    try:
        params = list(cnn_eager.parameters())
        fisher_batched_grads(cnn_eager, params, digits[:4])
        out["fisher_eager_batched_grads"] = best_of(3, lambda: fisher_batched_grads(cnn_eager, params, digits))
    except Exception as e:  # noqa: BLE001 (reported, not fatal)
        out["fisher_eager_batched_grads_error"] = str(e).splitlines()[0]


def images(folder, n):
    g = np.random.default_rng(4)
    np.save(os.path.join(folder, f"images_{n}.npy"), g.standard_normal((n, 3, 224, 224), dtype=np.float32))
    np.save(os.path.join(folder, f"labels_{n}.npy"), g.integers(0, 10, n).astype(np.int64))


def process(folder, n, threads, out):
    """What a PyTorch user runs for the features of a folder of images: the whole process is
    timed (imports, weights, data, forward passes, the result written)."""
    torch.set_num_threads(threads)
    model = ResNet18().eval()
    model.load_state_dict(torch.jit.load(os.path.join(folder, "resnet18_224.pt")).state_dict())
    x = torch.from_numpy(np.load(os.path.join(folder, f"images_{n}.npy")))
    with torch.no_grad():
        features = torch.cat([model.embed(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])
    np.save(out, features.numpy())


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "images":
        images(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "process":
        process(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        time_all(sys.argv[2], int(sys.argv[3]), sys.argv[4:] == ["--fisher"])
