#!/usr/bin/env python3
"""PGD adversarial training (Madry et al.) in PyTorch, timed: the peer of `faultline train --adversarial pgd`.

    python3 Benchmarks/peers/pgd_at_peer.py --x train_x.npy --y train_y.npy --spec cnn28 \
        --epochs 3 --batch 50 --eps 0.3 --steps 10 [--step-size S] [--threads 2] [--seed 0]

The model is the same as Faultline's spec (cnn28 = input:1x28x28,conv2d:1-16-4-2-1,relu,
conv2d:16-32-4-2-1,relu,flatten,linear:1568-100,relu,linear:100-10, the "small CNN" of Wong et al.;
mlp784 = linear:784-512,relu,linear:512-512,relu,linear:512-10). Each step: shuffle, then per
minibatch L∞ PGD with a uniform random start in the ε-ball, `--steps` sign steps of `--step-size`
(default 2.5·ε/steps, Faultline's default) on the mean cross-entropy with the current weights,
clamped to the ε-ball and [0, 1], the input gradient by torch.autograd.grad (no weight gradients
during the attack); then Adam (lr 1e-3) on the mean cross-entropy of the adversarial batch. Prints the
seconds per epoch and the final training loss. Same work as Faultline's loop (no validation pass).
"""
import argparse
import time

import numpy as np
import torch


def model(spec):
    nn = torch.nn
    if spec == "cnn28":
        return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 16, 4, 2, 1), nn.ReLU(),
                             nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(1568, 100), nn.ReLU(), nn.Linear(100, 10))
    if spec == "mlp784":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    raise SystemExit(f"--spec {spec}: expected cnn28 or mlp784")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--x", required=True)
    p.add_argument("--y", required=True)
    p.add_argument("--spec", default="cnn28")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--step-size", type=float)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x = torch.from_numpy(np.load(a.x).astype(np.float32)).reshape(-1, 784)
    y = torch.from_numpy(np.load(a.y).astype(np.int64))
    net = model(a.spec)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    eps, alpha = a.eps, a.step_size if a.step_size else 2.5 * a.eps / a.steps
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for epoch in range(a.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x))
        total = 0.0
        for b in range(0, len(x), a.batch):
            idx = order[b:b + a.batch]
            xb, yb = x[idx], y[idx]
            adv = (xb + torch.empty_like(xb).uniform_(-eps, eps)).clamp(0, 1)
            for _ in range(a.steps):
                adv.requires_grad_(True)
                g, = torch.autograd.grad(loss_fn(net(adv), yb), adv)
                adv = torch.min(torch.max(adv.detach() + alpha * g.sign(), xb - eps), xb + eps).clamp(0, 1)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(adv.detach()), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        times.append(time.perf_counter() - start)
        print(f"epoch {epoch + 1}: {times[-1]:.2f} s, adversarial loss {total / len(x):.4f}", flush=True)
    print(f"torch {torch.__version__}, {a.threads} threads, {a.spec}, batch {a.batch}, {a.steps} steps: "
          f"median {sorted(times)[len(times) // 2]:.2f} s per epoch over {len(x)} rows")


if __name__ == "__main__":
    main()
