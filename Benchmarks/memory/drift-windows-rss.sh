#!/usr/bin/env bash
# Peak resident memory of `faultline drift check --window` streaming a long .npy (issue 18: ≤ 1.1× one
# window plus the reference). Writes DIR/stream.npy (GiB of float32 rows of 64 features; the mean of
# feature 3 moves by 0.5 half-way), fits a reference on 20,000 clean rows, then runs the windowed check
# under /usr/bin/time -v with windows of WINDOW rows (stride = window) and prints peak RSS against the
# window's and the reference's bytes, and the same for a one-window file (the process's fixed cost).
#
#   Benchmarks/memory/drift-windows-rss.sh [DIR] [GiB] [WINDOW]   (defaults /tmp/faultline-drift-rss 1.5 1000000)
#
# Needs python3 with numpy to write the inputs, and a release build (.build/release/faultline).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-/tmp/faultline-drift-rss}
gib=${2:-1.5}
window=${3:-1000000}
bin=.build/release/faultline
[[ -x $bin ]] || swift build -c release --product faultline >/dev/null
mkdir -p "$dir"
python3 - "$dir" "$gib" "$window" <<'PY'
import os, sys
import numpy as np
out, gib, window = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
d = 64
rows = int(gib * 2**30) // (4 * d)
rng = np.random.default_rng(0)
path = os.path.join(out, "stream.npy")
if not (os.path.exists(path) and np.load(path, mmap_mode="r").shape == (rows, d)):
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, d))
    step = 1 << 18
    for i in range(0, rows, step):
        block = rng.normal(size=a[i:i + step].shape).astype(np.float32)
        if i >= rows // 2: block[:, 3] += 0.5
        a[i:i + step] = block
    a.flush(); del a
np.save(os.path.join(out, "reference.npy"), rng.normal(size=(20000, d)).astype(np.float32))
small = np.lib.format.open_memmap(os.path.join(out, "one_window.npy"), mode="w+", dtype=np.float32, shape=(window, d))
small[:] = rng.normal(size=(window, d)).astype(np.float32); small.flush(); del small
PY
"$bin" drift fit --reference "$dir/reference.npy" --out "$dir/reference.safetensors" >/dev/null
measure() {
    local file=$1; shift
    local log; log=$(mktemp)
    /usr/bin/time -v "$@" >"$dir/out.txt" 2>"$log"
    local kb; kb=$(grep 'Maximum resident' "$log" | grep -o '[0-9]*$')
    local wall; wall=$(grep 'Elapsed (wall' "$log" | awk '{print $NF}')
    rm -f "$log"
    local windows; windows=$(grep -c '^window ' "$dir/out.txt" || true)
    awk -v kb="$kb" -v f="$(stat -c %s "$file")" -v w="$window" -v r="$(stat -c %s "$dir/reference.safetensors")" -v wall="$wall" -v n="$windows" \
        'BEGIN { budget = w * 64 * 4 + r; printf "%-16s file %6.0f MiB  %3d windows  peak RSS %6.1f MiB  window+reference %6.1f MiB  ratio %.3f  wall %s\n",
                 substr(ENVIRON["LABEL"], 1, 16), f / 2^20, n, kb / 1024, budget / 2^20, kb * 1024 / budget, wall }'
}
LABEL="one window" measure "$dir/one_window.npy" "$bin" drift check --reference "$dir/reference.safetensors" --current "$dir/one_window.npy" --window "$window"
LABEL="long stream" measure "$dir/stream.npy" "$bin" drift check --reference "$dir/reference.safetensors" --current "$dir/stream.npy" --window "$window"
tail -1 "$dir/out.txt"
