#!/usr/bin/env python3
"""The peers' curves for `faultline bench scaling` (issue 21, item 5).

    python3 Benchmarks/peers/scaling_peers.py OUT.json [--only forward,mahalanobis,mahalanobis-d,mmd,graph]
                                              [--threads 1,2] [--reps 3] [--append]

Times, at the sizes of `faultline bench scaling` and 1 and 2 threads, the peer each workload is compared
against in scripts/compare (Benchmarks/WORKLOADS.md), on seeded inputs of the same shapes:

- forward: torch, forward + input gradient of the summed cross-entropy of the 784-512-512-10 ReLU MLP
  (torch.autograd.grad), batch 64…4096 (W2's peer).
- mahalanobis: numpy f32, the algorithm of scripts/compare's W3 numpy peer (class means by one GEMM, centred
  pooled covariance, float64 Cholesky, whitening GEMM, min over classes), fit + scores of N rows x 128
  features, 10 classes, N 2,000…32,000; and sklearn EmpiricalCovariance on the class-centred rows, scored
  with EmpiricalCovariance.mahalanobis once per class (scipy cdist, no BLAS), at 1 thread only.
- mahalanobis-d: the numpy f32 peer at fixed N = 8,000 rows, d 32…512 features.
- mmd: numpy f32, scripts/compare's W6 numpy peer (pooled squared distances by one GEMM, median heuristic,
  K once, all permutations as one GEMM K@A), n + n rows x 64 features, 100 permutations, n 500…8,000.
- graph: torch, forward (no grad) of the CNN 3x16x16 -> conv 3-16 k3 s1 p1, ReLU, conv 16-16 k3 s2 p1,
  ReLU, flatten, linear 1024-10, batch 32…2,048.

Each point is the median of --reps runs after one warm-up, as in `faultline bench scaling`. Every
(workload, thread count) runs in its own child process with OMP/OPENBLAS/MKL_NUM_THREADS set before numpy and
torch are imported (as run_peers.py does), plus torch.set_num_threads and threadpoolctl: in one process,
torch's OpenMP workers and numpy's OpenBLAS workers spin after their calls and, on 2 cores, slow each other's
2-thread runs by up to 100x (measured here on the first try). The JSON (read by
`faultline bench scaling --peers OUT.json`) names the versions of python, torch, numpy, sklearn and the
BLAS (threadpoolctl), the CPU, and holds one series per workload, peer and thread count:

    {"generator": ..., "date": ..., "cpu": ..., "versions": {...},
     "series": [{"workload": "forward", "peer": "torch 2.15.0", "threads": 1,
                 "points": [{"size": 64, "median_s": 0.0031, "times_s": [...]}, ...]}, ...]}

Sizes must stay equal to ScalingBenchmark.catalogue in Sources/FaultlineBench/ScalingBenchmark.swift.
Not part of CI; tests never need Python.
"""
import os
import sys


def _threads_from_argv() -> str:
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1,2"


# A child runs one thread count: fix the pools' sizes before numpy/torch load their runtimes.
if "," not in _threads_from_argv():
    for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[_v] = _threads_from_argv()

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import tempfile
import time

import numpy as np
import scipy.linalg as sla
import threadpoolctl
import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {
    "forward": [64, 256, 1024, 4096],
    "mahalanobis": [2000, 8000, 32000],
    "mahalanobis-d": [32, 64, 128, 256, 512],
    "mmd": [500, 1000, 2000, 4000, 8000],
    "graph": [32, 128, 512, 2048],
}
MAHA_D_ROWS = 8000  # rows of the mahalanobis-d sweep (ScalingBenchmark.mahalanobisDRows)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn, reps):
    fn()  # warm-up
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


# ------------------------------------------------------------------ workloads: size -> timed body
def forward_body(n):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    x = torch.rand(n, 784)
    y = torch.arange(n) % 10

    def run():
        xx = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xx), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, xx)
        return g

    return run


def maha_fit_numpy(X, y, C):
    n, d = X.shape
    counts = np.bincount(y, minlength=C).astype(np.float32)
    onehot = np.zeros((n, C), np.float32)
    onehot[np.arange(n), y] = 1
    means = (onehot.T @ X) / counts[:, None]
    Xc = X - means[y]
    cov = (Xc.T @ Xc) / n
    L = np.linalg.cholesky(cov.astype(np.float64))
    W = sla.solve_triangular(L, np.eye(d), lower=True)
    Mw = means.astype(np.float64) @ W.T
    return W.astype(np.float32), Mw.astype(np.float32), (Mw * Mw).sum(1).astype(np.float32)


def maha_numpy_body(n, d):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = np.arange(n) % 10

    def run():
        W, Mw, mw2 = maha_fit_numpy(X, y, 10)
        Z = X @ W.T
        z2 = np.einsum("ij,ij->i", Z, Z)
        D = z2[:, None] - 2.0 * (Z @ Mw.T) + mw2[None, :]
        return np.maximum(D.min(axis=1), 0.0)

    return run


def maha_sklearn_body(n, d=128):
    from sklearn.covariance import EmpiricalCovariance

    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = np.arange(n) % 10

    def run():
        means = np.stack([X[y == k].mean(axis=0) for k in range(10)])
        emp = EmpiricalCovariance(assume_centered=True).fit(X - means[y])
        return np.min(np.stack([emp.mahalanobis(X - means[k]) for k in range(10)], axis=1), axis=1)

    return run


def mmd_body(n, d=64, permutations=100):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, d), dtype=np.float32)
    Y = (rng.standard_normal((n, d), dtype=np.float32) + np.float32(0.05)).astype(np.float32)
    perms = np.stack([rng.permutation(2 * n) for _ in range(permutations)])

    def run():
        Z = np.concatenate([X, Y])
        nz = 2 * n
        sq = np.einsum("ij,ij->i", Z, Z)
        D = Z @ Z.T
        D *= -2.0
        D += sq[:, None]
        D += sq[None, :]
        np.maximum(D, 0, out=D)
        np.fill_diagonal(D, 0)
        s2 = float(np.median(np.concatenate([D[i, i + 1:] for i in range(nz - 1)])))
        K = D
        K *= np.float32(-0.5 / s2)
        np.exp(K, out=K)
        r = K.sum(axis=0, dtype=np.float64)
        tot = float(r.sum())
        diag = np.diag(K).astype(np.float64)
        trace = float(diag.sum())
        A = np.zeros((nz, permutations + 1), np.float32)
        A[:n, 0] = 1
        A[perms[:, :n].T, np.arange(1, permutations + 1)[None, :]] = 1
        KA = K @ A
        aKa = np.einsum("ij,ij->j", A.astype(np.float64), KA.astype(np.float64))
        aK1 = r @ A
        trX = diag @ A
        trY = trace - trX
        vals = (aKa - trX) / (n * (n - 1)) + (tot - 2.0 * aK1 + aKa - trY) / (n * (n - 1)) - 2.0 * (aK1 - aKa) / (n * n)
        return (1 + int((vals[1:] >= vals[0]).sum())) / (1 + permutations)

    return run


def graph_body(n):
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(1024, 10)).eval()
    x = torch.rand(n, 3, 16, 16)

    def run():
        with torch.no_grad():
            return model(x)

    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--only", default=",".join(SIZES))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--append", action="store_true",
                    help="keep OUT's series of the workloads not run now (one workload per run, e.g. under a lock)")
    a = ap.parse_args()
    chosen = [w for w in a.only.split(",") if w]
    for w in chosen:
        if w not in SIZES:
            sys.exit(f"--only: unknown workload '{w}' (choose from {', '.join(SIZES)})")
    counts = [int(t) for t in a.threads.split(",")]
    import sklearn

    blas = [f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture')})"
            for d in threadpoolctl.threadpool_info() if d.get("user_api") == "blas"]
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                "sklearn": sklearn.__version__, "numpy_blas": "; ".join(blas)}
    tv = torch.__version__.split("+")[0]
    # (workload, peer label, body factory, thread counts)
    plan = {
        "forward": [(f"torch {tv}", forward_body, counts)],
        "mahalanobis": [(f"numpy {np.__version__} f32", lambda n: maha_numpy_body(n, 128), counts),
                        (f"sklearn {sklearn.__version__}", maha_sklearn_body, [1])],
        "mahalanobis-d": [(f"numpy {np.__version__} f32", lambda d: maha_numpy_body(MAHA_D_ROWS, d), counts)],
        "mmd": [(f"numpy {np.__version__} f32", mmd_body, counts)],
        "graph": [(f"torch {tv}", graph_body, counts)],
    }
    series = []
    if len(chosen) > 1 or len(counts) > 1:
        # One child process per workload and thread count (see the module docstring).
        with tempfile.TemporaryDirectory() as tmp:
            for w in chosen:
                for t in counts:
                    part = os.path.join(tmp, f"{w}-{t}.json")
                    subprocess.run([sys.executable, os.path.abspath(__file__), part, "--only", w, "--threads", str(t),
                                    "--reps", str(a.reps)], check=True)
                    series += json.load(open(part))["series"]
        chosen_now = []
    else:
        chosen_now = chosen
    for w in chosen_now:
        for label, factory, thread_counts in plan[w]:
            for t in [t for t in counts if t in thread_counts]:
                torch.set_num_threads(t)
                with threadpoolctl.threadpool_limits(t, user_api="blas"):
                    points = []
                    for size in SIZES[w]:
                        body = factory(size)
                        times = timed(body, a.reps)
                        med = statistics.median(times)
                        points.append({"size": size, "median_s": med, "times_s": times})
                        print(f"{w:14s} {label:22s} {t} thr  size {size:6d}  {med:.4f} s", flush=True)
                        del body
                series.append({"workload": w, "peer": label, "threads": t, "points": points})
    if a.append and os.path.exists(a.out):
        kept = [x for x in json.load(open(a.out)).get("series", []) if x["workload"] not in chosen]
        series = kept + series
    doc = {"generator": "Benchmarks/peers/scaling_peers.py", "date": datetime.datetime.now(datetime.timezone.utc)
           .strftime("%Y-%m-%dT%H:%M:%SZ"), "cpu": cpu_name(), "versions": versions, "series": series}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    if len(chosen) > 1 or len(counts) > 1:
        print(f"versions: {json.dumps(versions)}")
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
