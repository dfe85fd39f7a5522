#!/usr/bin/env python3
"""The ResNet-style CNN of issue #14's speed target, for `faultline bench graph`.

    python3 Benchmarks/peers/graph_peer.py OUT_DIR [--threads 2] [--batch 256] [--reps 7]

Writes OUT_DIR/resnet32.onnx (3x32x32 input, stem conv 16 + BatchNorm + ReLU, 4 residual blocks of
16/16/32/32 channels with BatchNorm, strides 1/1/2/1, GlobalAveragePool, Linear 32->10; exported with the
TorchScript exporter, opset 17) and times PyTorch CPU at the same thread count on one random batch:
forward (no grad), forward + input gradient of the summed cross-entropy, forward + parameter gradients of
the mean cross-entropy (loss.backward() on a copy with each BatchNorm fused into its conv, the parameters
Faultline's graph has), and PGD-10 (torchattacks, eps 8/255, alpha 2/255, no random start), medians of
--reps runs after a warm-up.
"""
import argparse
import copy
import os
import time

import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# The residual block of the ONNX fixtures (BatchNorm, projection shortcut when the shape changes).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "fixtures"))
from make_onnx_fixtures import Block  # noqa: E402


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.blocks = nn.Sequential(Block(16, 16, 1), Block(16, 16, 1), Block(16, 32, 2), Block(32, 32, 1))
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def median_time(f, reps):
    f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--reps", type=int, default=7)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ResNet().eval()
    os.makedirs(a.out, exist_ok=True)
    torch.onnx.export(model, torch.rand(2, 3, 32, 32), os.path.join(a.out, "resnet32.onnx"), input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17, dynamo=False)
    x = torch.rand(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))

    def forward():
        with torch.no_grad():
            model(x)

    def gradient():
        xr = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xr), y, reduction="sum")
        torch.autograd.grad(loss, xr)

    fused = copy.deepcopy(model)
    pairs = [("stem", "bn")] + [(f"blocks.{b}.conv{i}", f"blocks.{b}.bn{i}") for b in range(4) for i in (1, 2)] \
        + [(f"blocks.{b}.shortcut.0", f"blocks.{b}.shortcut.1") for b in range(4) if len(model.blocks[b].shortcut) > 0]
    for conv, bn in pairs:
        parent, _, leaf = conv.rpartition(".")
        setattr(fused.get_submodule(parent) if parent else fused, leaf,
                torch.nn.utils.fusion.fuse_conv_bn_eval(fused.get_submodule(conv), fused.get_submodule(bn)))
        parent, _, leaf = bn.rpartition(".")
        setattr(fused.get_submodule(parent) if parent else fused, leaf, nn.Identity())
    for q in fused.parameters():
        q.requires_grad_(True)

    def parameter_gradients():
        fused.zero_grad(set_to_none=False)
        F.cross_entropy(fused(x), y).backward()

    rows = [("forward", median_time(forward, a.reps)), ("forward + input gradient", median_time(gradient, a.reps)),
            ("forward + parameter gradients (mean CE, BatchNorm fused)", median_time(parameter_gradients, a.reps))]
    try:
        import torchattacks
        attack = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10, random_start=False)
        rows.append(("PGD-10 (torchattacks)", median_time(lambda: attack(x, y), max(1, a.reps // 2))))
    except ImportError:
        pass
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {a.batch}")
    for name, t in rows:
        print(f"torch {name}: {t * 1e3:.1f} ms ({a.batch / t:.0f} ex/s)")


if __name__ == "__main__":
    main()
