#!/usr/bin/env bash
# Benchmark: -O0 (lowering only) against the default pipeline, per model, at one input size and thread count.
# Prints a Markdown table (kernels, bytes written per inference, median time of N runs after a warm-up) that
# BENCHMARKS.md keeps. Not part of CI: it takes minutes per model.
#
# usage: bash Benchmarks/opt_levels.sh [--input 3x256x256] [--threads 2] [--repeat 5] [model.yml ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
input=3x256x256 threads=2 repeat=5
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --input) input="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --repeat) repeat="$2"; shift 2 ;;
        *) models+=("$1"); shift ;;
    esac
done
[ ${#models[@]} -gt 0 ] || models=("$root/Graphs/models/restormer.yml" "$root/Graphs/models/mambairunet.yml" "$root/Graphs/models/ens-derain.yml")
hybridc="$root/.build/release/hybridc"
[ -x "$hybridc" ] || (cd "$root" && swift build -c release --product hybridc >&2)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$work/in.npy" "$input" <<'PY'
import sys, numpy as np
c, h, w = map(int, sys.argv[2].split("x"))
np.save(sys.argv[1], np.random.default_rng(0).random((c, h, w), dtype=np.float32))
PY

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; input $input, $threads threads, median of $repeat runs after one warm-up"
echo
echo "| model | pipeline | kernels | op-output bytes / inference (scratch not counted) | median ms | ratio to -O0 |"
echo "| --- | --- | --- | --- | --- | --- |"
for spec in "${models[@]}"; do
    name="$(basename "$spec" .yml)"
    base=""
    for level in O0 default; do
        flags=()
        [ "$level" = O0 ] && flags=(-O0)
        "$hybridc" compile "$spec" --random-weights 0 --input "$input" "${flags[@]}" -o "$work/$name-$level" >/dev/null
        pipeline=default
        [ "$level" = O0 ] && pipeline=O0
        stats="$("$hybridc" opt "$spec" --size "$input" --pipeline "$pipeline" --stats --emit dot | grep '^// kernels:')"
        kernels="$(echo "$stats" | sed -E 's/.*kernels: ([0-9]+).*/\1/')"
        bytes="$(echo "$stats" | sed -E 's/.*inference: ([0-9]+).*/\1/')"
        "$work/$name-$level" "$work/in.npy" "$work/out.npy" --threads "$threads" >/dev/null 2>&1
        line="$("$work/$name-$level" "$work/in.npy" "$work/out.npy" --threads "$threads" --repeat "$repeat" 2>&1 | grep '^run:')"
        median="$(echo "$line" | sed -E 's/.*median ([0-9.]+) ms.*/\1/')"
        [ -z "$base" ] && base="$median"
        ratio="$(python3 -c "print(f'{$base / $median:.2f}x')")"
        echo "| $name | $level | $kernels | $bytes | $median | $ratio |"
    done
done
