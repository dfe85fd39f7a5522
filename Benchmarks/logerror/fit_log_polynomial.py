#!/usr/bin/env python3
"""The coefficients of the AVX2 table log's series (vecmath.c, fl_log256_table).

ln(1 + r) ≈ r + r²·(c₂ + c₃·r + c₄·r²) on |r| ≤ 1/17 (8 table cells: r = m/c − 1 with c the cell's centre),
with c₂…c₄ minimax for the absolute error, found by Lawson's iteratively reweighted least squares on a dense
grid (float64, NumPy). The r term is kept exact so that ln x stays accurate next to 1. Prints the float32
coefficients as C hex literals and the approximation's error in exact arithmetic (about 1.9e-8; the
degree-5 Taylor series it replaced: 7.3e-9, the degree-4 Taylor series: 1.5e-7). `log_error.c` then checks
the whole log against float64 over every float in [FLT_MIN, 1].

Usage: python3 Benchmarks/logerror/fit_log_polynomial.py
"""
import numpy as np

half_width = 1 / 17
r = np.linspace(-half_width, half_width, 20001)
target = np.log1p(r) - r
basis = np.stack([r**2, r**3, r**4], axis=1)
weights = np.full_like(r, 1 / len(r))
for _ in range(2000):  # Lawson: weights grow where the error is largest, converging to the minimax fit
    root = np.sqrt(weights)
    coefficients, *_ = np.linalg.lstsq(basis * root[:, None], target * root, rcond=None)
    error = np.abs(basis @ coefficients - target)
    weights = weights * error
    weights /= weights.sum()
single = coefficients.astype(np.float32)
print("c2, c3, c4 =", ", ".join(float(c).hex().replace("0000000p", "p") + "f" for c in single))
print("max |error| in exact arithmetic: %.3g" % np.max(np.abs(basis @ single.astype(np.float64) - target)))
