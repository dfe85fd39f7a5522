#!/usr/bin/env python3
"""Confident learning, Faultline vs cleanlab, on one larger input (pip install cleanlab; measured with
cleanlab 2.9.0, NumPy 2.4.6).

    flock -x /work/notes/quiet.lock python3 Benchmarks/peers/cleanlab_peer.py [OUTDIR] [--n N] [--k K]

n rows (default 100,000) of K classes (default 10): softmax of N(0, 1.5²) logits with +2.5 on a true class,
labels moved to another class for 10 % of rows, stored as float32 (cleanlab gets the same values as
float64). Times, median of 3: `faultline data issues` as a process (wall clock: start, reading the
.npy files, the analysis, the text output) and cleanlab's `find_label_issues` in-process (compute only),
both filters, ranked by self-confidence; cleanlab with n_jobs=1 and with its default (physical cores).
Checks that the ranked lists are identical to cleanlab's with a stable argsort.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import cleanlab
from cleanlab.filter import find_label_issues

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
F = os.path.join(ROOT, ".build", "release", "faultline")
args = [a for a in sys.argv[1:]]
out = args[0] if args and not args[0].startswith("--") else "/tmp/faultline-cleanlab-peer"
n = int(args[args.index("--n") + 1]) if "--n" in args else 100_000
k = int(args[args.index("--k") + 1]) if "--k" in args else 10
os.makedirs(out, exist_ok=True)

rng = np.random.default_rng(0)
true = rng.integers(0, k, size=n)
z = rng.normal(scale=1.5, size=(n, k))
z[np.arange(n), true] += 2.5
p = np.exp(z - z.max(axis=1, keepdims=True))
p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
y = true.copy()
flip = rng.random(n) < 0.1
y[flip] = (y[flip] + rng.integers(1, k, size=flip.sum())) % k
np.save(f"{out}/p.npy", p)
np.save(f"{out}/y.npy", y.astype(np.int64))
p64 = p.astype(np.float64)

_argsort = np.argsort


def stable(a, axis=-1, kind=None, order=None):
    return _argsort(a, axis=axis, kind="stable", order=order)


def median_time(f, reps=3):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        r = f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), r


print(f"n = {n}, K = {k}; cleanlab {cleanlab.__version__}, NumPy {np.__version__}")
print("filter                 faultline CLI   cleanlab n_jobs=1   cleanlab default   identical (stable)")
for method in ["prune_by_noise_rate", "confident_learning"]:
    cmd = [F, "data", "issues", "--probs", f"{out}/p.npy", "--labels", f"{out}/y.npy", "--filter", method]
    tf, _ = median_time(lambda: subprocess.run(cmd, capture_output=True, check=True))
    ours = json.loads(subprocess.run(cmd + ["--json"], capture_output=True, check=True, text=True).stdout)["issues"]
    t1, _ = median_time(lambda: find_label_issues(y, p64, filter_by=method, return_indices_ranked_by="self_confidence", n_jobs=1))
    td, _ = median_time(lambda: find_label_issues(y, p64, filter_by=method, return_indices_ranked_by="self_confidence"))
    np.argsort = stable
    try:
        ref = list(find_label_issues(y, p64, filter_by=method, return_indices_ranked_by="self_confidence", n_jobs=1))
    finally:
        np.argsort = _argsort
    print(f"{method:22s} {tf:12.3f} s {t1:15.3f} s {td:16.3f} s   {ref == ours} ({len(ours)} issues)")
