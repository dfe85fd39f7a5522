"""MAPIE peer of `faultline bench conformal-regression` (pip install mapie; measured with MAPIE 1.6.0,
numpy 2.4.6, scikit-learn 1.9.1): split conformal regression at α = 0.1 on n calibration rows
(ŷ ~ N(0, 1), y = ŷ + N(0, 1); CQR bands ŷ ± 1.2) and n test rows, median of --reps timed runs after a
warm-up. The models are prefit lookups (predict returns stored values), so the times are MAPIE's own:
conformalize (scores + bookkeeping), predict_interval (predictions + quantile + bounds), and numpy's
order statistic alone (np.quantile(..., method="lower")) as the floor of any numpy implementation.

    python3 Benchmarks/peers/mapie_regression_peer.py [--n 1000000] [--reps 7]
"""
import argparse
import time
import warnings

import numpy as np


def main():
    import mapie
    from sklearn.base import BaseEstimator, RegressorMixin
    from mapie.regression import ConformalizedQuantileRegressor, SplitConformalRegressor

    class Lookup(RegressorMixin, BaseEstimator):
        def __init__(self, values=None):
            self.values = values

        def fit(self, X, y):
            return self

        def predict(self, X):
            return self.values[X[:, 0].astype(np.int64)]

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()
    n = a.n
    rng = np.random.default_rng(18)
    pred = rng.standard_normal(n)
    y = pred + rng.standard_normal(n)
    test = rng.standard_normal(n)
    X = np.arange(n, dtype=float)[:, None]
    allp = np.concatenate([pred, test])
    Xt = np.arange(n, 2 * n, dtype=float)[:, None]
    rows = {"MAPIE conformalize (residual)": [], "MAPIE predict_interval, n rows": [], "numpy order statistic alone": [],
            "MAPIE CQR conformalize": []}
    for r in range(a.reps + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            m = SplitConformalRegressor(estimator=Lookup(allp), confidence_level=0.9, prefit=True).conformalize(X, y)
            t1 = time.perf_counter()
            _, iv = m.predict_interval(Xt)
            t2 = time.perf_counter()
            scores = np.abs(y - pred)
            q = np.quantile(scores, np.ceil((n + 1) * 0.9) / n, method="lower")
            t3 = time.perf_counter()
            c = ConformalizedQuantileRegressor(estimator=[Lookup(pred - 1.2), Lookup(pred + 1.2), Lookup(pred)], confidence_level=0.9,
                                               prefit=True).conformalize(X, y)
            t4 = time.perf_counter()
        if r > 0:
            for key, v in zip(rows, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                rows[key].append(v)
    print(f"MAPIE {mapie.__version__}, numpy {np.__version__}, n = {n}, median of {a.reps}; q = {q:.6f}, width {iv[0, 1, 0] - iv[0, 0, 0]:.6f}")
    for key, v in rows.items():
        print(f"{key:40s} {np.median(v) * 1e3:9.2f} ms   ({n / np.median(v):.3g} rows/s)")


if __name__ == "__main__":
    main()
