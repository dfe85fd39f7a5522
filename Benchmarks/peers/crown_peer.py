#!/usr/bin/env python3
"""auto_LiRPA's CROWN on a ReLU MLP state_dict, timed: the peer of `faultline certify --method crown`.

    pip install torch safetensors auto_LiRPA appdirs sortedcontainers   # auto_LiRPA 0.3, the PyPI release
    python3 Benchmarks/peers/crown_peer.py --weights mlp.safetensors --x test_x.npy --eps 0.01,0.02,0.05,0.1 \
        [--rows 1000] [--batch 100] [--threads 2] [--out margins.npz]

The model is rebuilt as torch.nn.Sequential from the state_dict (Linear layers with ReLU between, as
`faultline train --spec linear:…,relu,…` writes them). Labels are the model's own predictions, the
region is the L∞ ball of radius ε intersected with the box [0, 1] (x_L, x_U clamped, as Faultline's
default `--box 0,1`), and the specification is C = e_y − e_j for j ≠ y (margin lower bounds,
`compute_bounds(method="CROWN", C=C)`, intermediate layers by CROWN). Prints one line per ε: seconds,
rows per second, certified fraction; `--out` saves the margins for comparison with
`BoundPropagation.marginLowerBounds`. The shim of scripts/fixtures/make_bounds_fixtures.py (imported from
there) lets auto_LiRPA 0.3 import under NumPy 2 and torch 2 without changing any bound computation.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch


def shim():
    """The NumPy 2 / torch 2 shim of scripts/fixtures/make_bounds_fixtures.py (one copy, imported)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "fixtures"))
    from make_bounds_fixtures import shim as fixture_shim
    fixture_shim()


def mlp(path):
    from safetensors.torch import load_file
    state = load_file(path)
    keys = sorted({k.rsplit(".", 1)[0] for k in state}, key=lambda k: int(k.split(".")[-1]) if k.split(".")[-1].isdigit() else k)
    layers = []
    for i, k in enumerate(keys):
        w, b = state[k + ".weight"], state[k + ".bias"]
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data, lin.bias.data = w.float(), b.float()
        layers += [lin] + ([torch.nn.ReLU()] if i < len(keys) - 1 else [])
    return torch.nn.Sequential(*layers).eval()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True)
    p.add_argument("--x", required=True)
    p.add_argument("--eps", default="0.01,0.02,0.05,0.1")
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    shim()
    import auto_LiRPA
    from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm
    net = mlp(a.weights)
    x = torch.from_numpy(np.load(a.x).reshape(-1, net[0].in_features)[: a.rows].astype(np.float32))
    with torch.no_grad():
        y = net(x).argmax(1)
    classes = net[-1].out_features
    bounded = BoundedModule(net, torch.zeros(1, x.shape[1]))
    print(f"auto_LiRPA {getattr(auto_LiRPA, '__version__', '?')}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{len(x)} rows, batch {a.batch}, model {[m.out_features for m in net if isinstance(m, torch.nn.Linear)]}")
    out = {}
    for eps in [float(e) for e in a.eps.split(",")]:
        margins = []
        start = time.perf_counter()
        for s in range(0, len(x), a.batch):
            xb, yb = x[s:s + a.batch], y[s:s + a.batch]
            C = torch.zeros(len(xb), classes - 1, classes)
            for i in range(len(xb)):
                for r, j in enumerate([j for j in range(classes) if j != yb[i]]):
                    C[i, r, yb[i]], C[i, r, j] = 1, -1
            ptb = PerturbationLpNorm(norm=float("inf"), eps=eps, x_L=(xb - eps).clamp(0, 1), x_U=(xb + eps).clamp(0, 1))
            lower, _ = bounded.compute_bounds(x=(BoundedTensor(xb, ptb),), method="CROWN", C=C, bound_upper=False)
            margins.append(lower.detach().numpy())
        seconds = time.perf_counter() - start
        m = np.concatenate(margins)
        out[f"eps_{eps}"] = m
        print(f"eps {eps}: {seconds:.2f} s, {len(x) / seconds:.1f} rows/s, certified {(m > 0).all(1).mean():.4f}", flush=True)
    if a.out:
        np.savez(a.out, labels=y.numpy(), **out)


if __name__ == "__main__":
    main()
