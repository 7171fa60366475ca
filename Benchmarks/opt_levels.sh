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
source "$root/Benchmarks/common.sh"
random_image "$work/in.npy" "$input"

echo "machine: $(machine_line); input $input, $threads threads, median of $repeat runs after one warm-up"
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
        median="$(median_ms "$work/$name-$level" "$work/in.npy" "$threads" "$repeat")"
        [ -z "$base" ] && base="$median"
        ratio="$(python3 -c "print(f'{$base / $median:.2f}x')")"
        echo "| $name | $level | $kernels | $bytes | $median | $ratio |"
    done
done
