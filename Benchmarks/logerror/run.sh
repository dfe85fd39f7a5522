#!/usr/bin/env bash
# Exhaustive accuracy check of the AVX2 table log against float64 (see log_error.c). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang -O2 -I ../../Sources/CFaultline/include -I ../../Sources/CFaultline log_error.c -o "$out/log_error" -lm
"$out/log_error"
