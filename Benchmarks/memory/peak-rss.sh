#!/usr/bin/env bash
# Peak resident memory of the commands that read large arrays, against the size of the array they
# read (issue 22: ≤ 1.1× the file). Writes the inputs into DIR (default /tmp/faultline-rss: about
# 6.5 GiB; make sure the disk has room), runs each command under /usr/bin/time and prints one line per
# command: peak RSS, the file's size and their ratio.
#
#   Benchmarks/memory/peak-rss.sh [DIR] [GiB]      GiB: size of each large array (default 2)
#
# Needs python3 with numpy to write the inputs, and a release build (.build/release/faultline).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-/tmp/faultline-rss}
gib=${2:-2}
bin=.build/release/faultline
[[ -x $bin ]] || swift build -c release --product faultline >/dev/null
mkdir -p "$dir"
python3 - "$dir" "$gib" <<'PY'
import os, sys
import numpy as np
out, gib = sys.argv[1], float(sys.argv[2])
floats = int(gib * 2**30) // 4
rng = np.random.default_rng(0)
def write(name, shape, fill):
    path = os.path.join(out, name)
    if os.path.exists(path) and os.path.getsize(path) > np.prod(shape) * 4: return
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    step = max(1, (1 << 24) // int(np.prod(shape[1:])))
    for i in range(0, shape[0], step): a[i:i + step] = fill(a[i:i + step].shape)
    a.flush(); del a
d = 256
write("features.npy", (floats // d, d), lambda s: rng.normal(size=s).astype(np.float32))
write("small_features.npy", (20000, d), lambda s: (rng.normal(size=s) + 0.1).astype(np.float32))
np.save(os.path.join(out, "small_labels.npy"), (np.arange(20000) % 10).astype(np.int64))
c = 100
write("logits.npy", (floats // c, c), lambda s: (3 * rng.normal(size=s)).astype(np.float32))
np.save(os.path.join(out, "logit_labels.npy"), rng.integers(0, c, floats // c).astype(np.uint8 if c <= 256 else np.int32))
m = 5
def probs(s):
    z = np.exp(rng.normal(size=s)).astype(np.float32)
    return z / z.sum(axis=-1, keepdims=True)
write("members.npy", (m, floats // (m * c), c), probs)
PY
"$bin" shift fit --features "$dir/small_features.npy" --labels "$dir/small_labels.npy" --out "$dir/detector.safetensors" >/dev/null
measure() {
    local file=$1; shift
    local kb
    kb=$( { /usr/bin/time -f 'RSS %M' "$@" >/dev/null; } 2>&1 | grep -o 'RSS [0-9]*' | grep -o '[0-9]*' )
    local bytes; bytes=$(stat -c %s "$file")
    awk -v kb="$kb" -v b="$bytes" -v cmd="$*" 'BEGIN { printf "%-40s peak %7.0f MiB  file %7.0f MiB  ratio %.3f\n", substr(cmd, index(cmd, " ") + 1, 40), kb / 1024, b / 2^20, kb * 1024 / b }'
}
measure "$dir/features.npy" "$bin" inspect "$dir/features.npy"
measure "$dir/features.npy" "$bin" shift score --detector "$dir/detector.safetensors" --features "$dir/features.npy"
measure "$dir/features.npy" "$bin" drift --reference "$dir/features.npy" --current "$dir/small_features.npy" --permutations 0
measure "$dir/logits.npy" "$bin" calibrate --logits "$dir/logits.npy" --labels "$dir/logit_labels.npy"
measure "$dir/members.npy" "$bin" uncertainty --stacked "$dir/members.npy"
