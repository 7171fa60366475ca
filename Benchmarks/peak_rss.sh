#!/usr/bin/env bash
# Peak resident memory of the generated programs against what the memory plan predicts: for every bundled model
# (or the given specs), compile at one input size with seeded random weights, run the program once on an image
# of that size under /usr/bin/time -v, and print a Markdown table: weights blob, arena (and its lower bound),
# per-thread scratch times the threads, their sum, and the peak RSS. Not part of CI: S-block models take about a
# minute each.
#
# usage: bash Benchmarks/peak_rss.sh [--input 3x256x256] [--threads 2] [-O0] [model.yml ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
input=3x256x256 threads=2 level=()
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --input) input="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        -O0) level=(-O0); shift ;;
        *) models+=("$1"); shift ;;
    esac
done
[ ${#models[@]} -gt 0 ] || models=("$root"/Graphs/models/*.yml)
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time is missing (apt-get install time; see scripts/setup.sh)" >&2; exit 1; }
source "$root/Benchmarks/common.sh"
random_image "$work/in.npy" "$input"

mb() { python3 -c "print(f'{$1 / 1e6:.1f}')"; }
echo "machine: $(machine_line); input $input, $threads threads${level[*]:+, ${level[*]}}"
echo
echo "| model | weights MB | arena MB | lower bound MB | scratch MB ($threads threads) | weights + arena + scratch MB | peak RSS MB |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for spec in "${models[@]}"; do
    name="$(basename "$spec" .yml)"
    stats="$("$hybridc" compile "$spec" --random-weights 0 --input "$input" "${level[@]}" --stats -o "$work/$name")"
    weights="$(echo "$stats" | sed -nE 's/^weights: ([0-9.]+) MB.*/\1/p')"
    arena="$(echo "$stats" | sed -nE 's/^arena: .*\(([0-9]+) bytes\); lower bound.*/\1/p')"
    bound="$(echo "$stats" | sed -nE 's/^arena: .*lower bound .*\(([0-9]+) bytes\); ratio.*/\1/p')"
    slot="$(echo "$stats" | sed -nE 's/^scratch per thread bytes: ([0-9]+).*/\1/p')"
    scratch=$((slot * threads))
    /usr/bin/time -v "$work/$name" "$work/in.npy" "$work/out.npy" --threads "$threads" >/dev/null 2>"$work/time.txt"
    rss_kb="$(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+).*/\1/p' "$work/time.txt")"
    sum="$(python3 -c "print(f'{$weights + ($arena + $scratch) / 1e6:.1f}')")"
    echo "| $name | $weights | $(mb "$arena") | $(mb "$bound") | $(mb "$scratch") | $sum | $(python3 -c "print(f'{$rss_kb * 1024 / 1e6:.1f}')") |"
    rm -rf "$work/$name" "$work/$name.src"
done
