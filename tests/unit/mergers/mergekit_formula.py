"""mergekit's generalized task arithmetic, written out with numpy for test_mergekit_conventions.cpp.

The formula as mergekit's task_arithmetic, ties, dare_linear and dare_ties methods apply it to one
tensor (docs/mergers.md, "Against mergekit"): task vectors d_i = x_i - base; sparsified per model
(ties: the int(density * n) largest magnitudes; dare: a keep mask, the kept values divided by the
density); weighted by w_i; with a sign consensus (ties, dare_ties), only the entries whose sign is
that of the sum of the weighted entries (>= 0 is +) count; the sum of what counts is divided by its
weights (a zero divisor counts as 1) when `normalize`; the merge is base + that.

Usage: mergekit_formula.py FOLDER...
Each FOLDER holds case.txt ("METHOD DENSITY NORMALIZE", e.g. "dare_ties 0.6 false"), base.npy (n),
models.npy (k x n), weights.npy (k) and, for dare, keep.npy (k x n, 1 where an entry is kept); the
result is written to FOLDER/merged.npy. (One process for every case: numpy takes long to import.)
"""
import os
import sys

import numpy as np


def sparsify_magnitude(d, density):
    if density >= 1:
        return d
    k = int(density * d.size)
    order = np.argsort(-np.abs(d), kind="stable")
    mask = np.zeros_like(d)
    mask[order[:k]] = 1
    return d * mask


def merge(base, models, weights, method, density, normalize, keep=None):
    deltas = models - base[None, :]
    if method == "ties":
        deltas = np.stack([sparsify_magnitude(d, density) for d in deltas])
    elif method in ("dare_ties", "dare_linear"):
        deltas = deltas * keep / density
    weighted = deltas * weights[:, None]
    if method in ("ties", "dare_ties"):
        elected = np.where(weighted.sum(axis=0) >= 0, 1.0, -1.0)
        counts = np.sign(weighted) == elected[None, :]
        mixed = (weighted * counts).sum(axis=0)
        divisor = (weights[:, None] * counts).sum(axis=0)
        divisor[divisor == 0] = 1
    else:
        mixed = weighted.sum(axis=0)
        divisor = np.full_like(mixed, weights.sum())
        divisor[np.abs(divisor) < 1e-8] = 1
    if normalize:
        mixed = mixed / divisor
    return base + mixed


def main():
    for folder in sys.argv[1:]:
        with open(os.path.join(folder, "case.txt")) as f:
            method, density, normalize = f.read().split()
        load = lambda name: np.load(os.path.join(folder, name))
        keep = load("keep.npy") if method.startswith("dare") else None
        merged = merge(load("base.npy").ravel(), load("models.npy"), load("weights.npy").ravel(), method, float(density),
                       normalize == "true", keep)
        np.save(os.path.join(folder, "merged.npy"), merged.astype(np.float64))


if __name__ == "__main__":
    main()
