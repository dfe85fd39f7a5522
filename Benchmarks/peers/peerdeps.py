"""Which Python packages the benchmark harness needs, and installing them on request.

Standard library only, so it can run before numpy is importable. The peers are installed by the
harness only when asked (`--install`), with pip, from requirements.txt beside this file; tests and
CI never install or need them.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "requirements.txt")

# import name -> pip name
CORE = {"numpy": "numpy", "scipy": "scipy", "torch": "torch", "safetensors": "safetensors",
        "threadpoolctl": "threadpoolctl"}
PEERS = {"torchattacks": "torchattacks", "art": "adversarial-robustness-toolbox", "foolbox": "foolbox",
         "sklearn": "scikit-learn", "torchmetrics": "torchmetrics", "netcal": "netcal",
         "pytorch_ood": "pytorch-ood"}


def missing(modules) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def install() -> int:
    cmd = [sys.executable, "-m", "pip", "install", "-r", REQUIREMENTS]
    print("installing the Python peers: " + " ".join(cmd), file=sys.stderr, flush=True)
    rc = subprocess.call(cmd)
    importlib.invalidate_caches()
    return rc


def require(modules, install_requested: bool, optional=()) -> None:
    """Exit with 2 and an install hint when a needed module is missing (after installing, if asked).

    Missing `optional` modules only print a note: their rows show as FAILED in the table.
    """
    if install_requested and missing(list(modules) + list(optional)):
        rc = install()
        if rc != 0:
            print(f"pip failed (exit {rc})", file=sys.stderr)
            sys.exit(rc)
    gone = missing(modules)
    if gone:
        names = " ".join(CORE.get(m, PEERS.get(m, m)) for m in gone)
        rel = os.path.relpath(REQUIREMENTS)
        print(f"missing Python packages: {names}\n"
              f"install the peers with `python3 -m pip install -r {rel}` or rerun with --install "
              f"(torch is large: a few GB with its CUDA libraries)", file=sys.stderr)
        sys.exit(2)
    absent = missing(optional)
    if absent:
        print("note: not installed, their rows will show as FAILED: "
              + " ".join(PEERS.get(m, m) for m in absent) + " (--install adds them)", file=sys.stderr)
