#!/usr/bin/env bash
# Benchmark: every bundled model (or the given specs), its block layout against its time, with the two scaling
# checks of the performance issue: pixels (3x256x256 against 3x128x128, linear would be 4x) and threads (2 against
# 1 at the large size). Effective GFLOP/s = the model's GFLOP at the large size (`hybridc check`) / median time.
# Prints a Markdown table that BENCHMARKS.md keeps. Not part of CI: S-block models take minutes.
#
# usage: bash Benchmarks/models.sh [--small 3x128x128] [--large 3x256x256] [--threads 2] [--repeat 3] [model.yml ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
small=3x128x128 large=3x256x256 threads=2 repeat=3
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --small) small="$2"; shift 2 ;;
        --large) large="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --repeat) repeat="$2"; shift 2 ;;
        -*) echo "error: unknown option $1 (see the usage line at the top of $0)" >&2; exit 2 ;;
        *) models+=("$1"); shift ;;
    esac
done
[ ${#models[@]} -gt 0 ] || models=("$root"/Graphs/models/*.yml)
source "$root/Benchmarks/common.sh"
random_image "$work/small.npy" "$small"
random_image "$work/large.npy" "$large"
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

echo "machine: $(machine_line); median of $repeat runs after one warm-up; GFLOP/s = GFLOP at $large / median time with $threads threads"
echo
echo "| model | layout | GFLOP | ms $small | ms $large | large / small (linear 4.00) | ms $large, 1 thread | $threads threads / 1 | GFLOP/s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for spec in "${models[@]}"; do
    name="$(basename "$spec" .yml)"
    check="$("$hybridc" check "$spec" --input "$large")"
    # The blocks column of the per-stage table, joined: e.g. TTTT/TTTTTT/.../TTTT.
    layout="$(echo "$check" | awk '$4 ~ /^[TS]+$/ {printf "%s%s", sep, $4; sep = "/"}')"
    gflop="$(echo "$check" | sed -nE 's/^GFLOP: ([0-9.]+).*/\1/p')"
    "$hybridc" compile "$spec" --random-weights 0 --input "$large" -o "$work/$name" >/dev/null
    t_small="$(median_ms "$work/$name" "$work/small.npy" "$threads" "$repeat")"
    t_large="$(median_ms "$work/$name" "$work/large.npy" "$threads" "$repeat")"
    t_one="$(median_ms "$work/$name" "$work/large.npy" 1 "$repeat")"
    echo "| $name | $layout | $gflop | $t_small | $t_large | $(ratio "$t_large" "$t_small") | $t_one | $(ratio "$t_one" "$t_large") | $(python3 -c "print(f'{$gflop / ($t_large / 1000):.1f}')") |"
done
