#!/usr/bin/env python3
"""Train/test duplicates at MNIST scale: `faultline data leakage` against scikit-learn's brute-force
nearest neighbour (measured with scikit-learn 1.9.1, NumPy 2.4.6).

    flock -x /work/notes/quiet.lock python3 Benchmarks/peers/leakage_peer.py [OUTDIR] [--train M] [--test N] [--d D]

M = 60,000 training and N = 10,000 test rows of D = 784 uniform [0, 1) float32 features (seed 0); test
rows 0-99 are copies of training rows, rows 100-199 copies moved by 1e-3 in every feature. Times (one
run each, wall clock): `faultline data leakage --threshold 0.05` (absolute: one test × train search) and
the default relative threshold (plus the median over 2,000 training rows); scikit-learn's
NearestNeighbors(n_neighbors=1, algorithm="brute").kneighbors(test) in-process. Checks that both find
the same nearest distance (within 1e-4) for the 200 planted rows and the same duplicate counts.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import sklearn
from sklearn.neighbors import NearestNeighbors

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
F = os.path.join(ROOT, ".build", "release", "faultline")
args = sys.argv[1:]
out = args[0] if args and not args[0].startswith("--") else "/tmp/faultline-leakage-peer"
m = int(args[args.index("--train") + 1]) if "--train" in args else 60_000
n = int(args[args.index("--test") + 1]) if "--test" in args else 10_000
d = int(args[args.index("--d") + 1]) if "--d" in args else 784
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
train = rng.random((m, d), dtype=np.float32)
test = rng.random((n, d), dtype=np.float32)
test[:100] = train[rng.choice(m, 100, replace=False)]
test[100:200] = train[rng.choice(m, 100, replace=False)] + np.float32(1e-3)
np.save(f"{out}/train.npy", train)
np.save(f"{out}/test.npy", test)


def timed(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t, json.loads(r.stdout)


base = [F, "data", "leakage", "--train", f"{out}/train.npy", "--test", f"{out}/test.npy", "--json"]
ta, absolute = timed(base + ["--threshold", "0.05"])
tr, relative = timed(base)
t = time.perf_counter()
dist, _ = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(train).kneighbors(test)
ts = time.perf_counter() - t
ours = {}
for p in absolute["pairs"]:  # by test row, nearest first
    ours.setdefault(p["test"], p["distance"])
agree = all(abs(ours.get(i, np.inf) - dist[i, 0]) <= 1e-4 for i in range(200))
print(f"train {m} x test {n} x d {d}; scikit-learn {sklearn.__version__}, NumPy {np.__version__}")
print(f"faultline data leakage --threshold 0.05 : {ta:6.2f} s  exact {absolute['exactDuplicateTestRows']}, near {absolute['nearDuplicateTestRows']}")
print(f"faultline data leakage (relative 0.05)  : {tr:6.2f} s  threshold {relative['threshold']:.4g}, exact {relative['exactDuplicateTestRows']}, near {relative['nearDuplicateTestRows']}")
print(f"sklearn NearestNeighbors brute, k = 1    : {ts:6.2f} s  exact {int((dist[:, 0] == 0).sum())}, within 0.05 {int((dist[:, 0] <= 0.05).sum())}")
print(f"nearest distances of the 200 planted rows agree within 1e-4: {agree}")
