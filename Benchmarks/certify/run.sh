#!/usr/bin/env bash
# Certification at scale, side by side (docs/PERFORMANCE.md, issue 21):
#   Benchmarks/certify/run.sh [DIR]
# Makes the synthetic 784-dimensional task (make_mlp_task.py, numpy), trains the 784-512-512-10 ReLU
# MLP on it with `faultline train`, then times `faultline certify --method crown` on 1,000 test rows at
# ε 0.01, 0.02, 0.05, 0.1, `faultline report` on the same rows, and auto_LiRPA's CROWN on the same
# model, rows and ε when it is installed (Benchmarks/peers/crown_peer.py). Prints the machine first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${1:-${TMPDIR:-/tmp}/faultline-certify-bench}"
faultline="$root/.build/release/faultline"
[ -x "$faultline" ] || (cd "$root" && swift build -c release --product faultline)
mkdir -p "$dir"
"$faultline" info | grep -E "CPU|core|backend|threads"
python3 "$here/make_mlp_task.py" "$dir"
cd "$dir"
"$faultline" train --spec linear:784-512,relu,linear:512-512,relu,linear:512-10 --x train_x.npy --y train_y.npy \
    --epochs 3 --out mlp.safetensors --quiet
echo "== faultline certify --method crown, 1,000 rows × 4 ε"
/usr/bin/time -f "%e s wall, %M KiB peak" "$faultline" certify --model mlp.safetensors --x test_x.npy --y test_y.npy \
    --method crown --eps 0.01,0.02,0.05,0.1 --steps 0 --quiet
echo "== faultline report, 1,000 test rows"
/usr/bin/time -f "%e s wall, %M KiB peak" "$faultline" report --model mlp.safetensors --train-x train_x.npy --train-y train_y.npy \
    --test-x test_x.npy --test-y test_y.npy --out report --quiet > /dev/null
if python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('auto_LiRPA') is None)"; then
    echo "== auto_LiRPA CROWN, 1,000 rows, batch 100"
    python3 "$root/Benchmarks/peers/crown_peer.py" --weights mlp.safetensors --x test_x.npy --rows 1000 --batch 100 2>/dev/null
else
    echo "(auto_LiRPA not installed: pip install auto_LiRPA torch safetensors appdirs sortedcontainers tqdm)"
fi
