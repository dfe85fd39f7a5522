#!/usr/bin/env python3
"""A synthetic 10-class task of 784-dimensional inputs in [0, 1] for the certification benchmarks.

    python3 Benchmarks/certify/make_mlp_task.py DIR

Writes DIR/{train,test}_{x,y}.npy (2,000 training and 1,000 test rows, float32 inputs, int64 labels):
ten class templates drawn uniformly in [0.2, 0.8], each row its class template plus N(0, 0.15²)
noise, clipped to [0, 1]. numpy only (any version ≥ 1.17). `Benchmarks/certify/run.sh` trains the
784-512-512-10 ReLU MLP on it with `faultline train` and times `certify` and `report`.
"""
import os
import sys

import numpy as np


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "certify-task"
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    templates = rng.uniform(0.2, 0.8, size=(10, 784))
    for name, n in (("train", 2000), ("test", 1000)):
        y = np.arange(n) % 10
        rng.shuffle(y)
        x = np.clip(templates[y] + rng.normal(0, 0.15, size=(n, 784)), 0, 1).astype(np.float32)
        np.save(os.path.join(out, f"{name}_x.npy"), x)
        np.save(os.path.join(out, f"{name}_y.npy"), y.astype(np.int64))
    print(f"wrote {out}/{{train,test}}_{{x,y}}.npy")


if __name__ == "__main__":
    main()
