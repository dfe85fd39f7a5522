#!/usr/bin/env bash
# Crash test of the report directory's atomic replacement (issue 22): `faultline report` is killed with
# SIGKILL at random points (FAULTLINE_TEST_STAGE_PAUSE widens every stage of the publish so the kills
# land inside each window), and two writers are interleaved, some of them killed too. After every
# trial --out must be absent (only before the first success) or a complete report (report.json
# parses, report.html and report.txt present); after the next successful run no temporary is left.
#
#   Benchmarks/robustness/kill-test.sh [TRIALS (default 40)] [WORKDIR (default a new temporary folder)]
#
# Needs a release build (.build/release/faultline) and python3 (for the JSON check and random delays).
set -euo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-40}
work=${2:-$(mktemp -d)}
bin=$PWD/.build/release/faultline
[[ -x $bin ]] || swift build -c release --product faultline >/dev/null
mkdir -p "$work"
cd "$work"
if [[ ! -f m.safetensors ]]; then
    "$bin" train --data digits --epochs 3 --out m.safetensors --export-split split >/dev/null
fi
report() {  # report OUT [PAUSE]
    FAULTLINE_TEST_STAGE_PAUSE=${2:-0} "$bin" report --weights m.safetensors --train-x split/train_x.npy --train-y split/train_y.npy \
        --test-x split/test_x.npy --test-y split/test_y.npy --eps 0.05 --out "$1" --quiet >/dev/null 2>&1
}
complete() {  # complete OUT: 0 when OUT is a whole report
    [[ -f $1/report.html && -f $1/report.txt ]] && python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$1/report.json" 2>/dev/null
}
leftovers() { find . -maxdepth 1 -name ".$1.*" | wc -l; }
start=$(date +%s.%N); report timing; runtime=$(python3 -c "import time,sys; print(time.time() - float(sys.argv[1]))" "$start"); rm -rf timing .timing.*
failures=0; killed=0; published=0; seen_complete=0
rm -rf out .out.*
for ((t = 1; t <= trials; t++)); do
    delay=$(python3 -c "import random; print(round(random.uniform(0, $runtime + 1.5), 3))")
    report out 0.25 & pid=$!
    if [[ $((t % 4)) == 0 ]]; then report out 0.1 & second=$!; else second=; fi
    sleep "$delay"
    if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
    wait "$pid" 2>/dev/null || true
    [[ -n $second ]] && { wait "$second" 2>/dev/null || true; }
    if [[ -e out || -L out ]]; then
        if complete out; then seen_complete=1; published=$((published + 1)); else echo "trial $t: out is not a complete report"; failures=$((failures + 1)); fi
    elif ((seen_complete)); then
        echo "trial $t: out vanished after a complete report existed"; failures=$((failures + 1))
    fi
done
report out 0  # one clean run: it must remove whatever the killed runs left
complete out || { echo "final run: incomplete report"; failures=$((failures + 1)); }
left=$(leftovers out)
[[ $left == 1 ]] || { echo "after the next run: $left hidden entries (expected the one version directory)"; ls -la; failures=$((failures + 1)); }
echo "$trials trials ($killed killed mid-run, every 4th with a second writer; a complete report after $published), leftovers after the next run: $((left - 1)), failures: $failures"
((failures == 0))
