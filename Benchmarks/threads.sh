#!/usr/bin/env bash
# Benchmark: 2-thread speed-up of the generated programs, with a control that separates the kernels' split from the
# host. Each round runs, back to back on the same input:
#   one   - the program with 1 thread, alone;
#   two   - the program with 2 threads;
#   pair  - two copies of the 1-thread program at the same time (each on its own vCPU, sharing nothing but the host).
# `pair / one` is what running on both vCPUs at once costs a single-threaded run on this host (caches, memory, the
# hypervisor); no split of the work can beat `bound = 2 * one / pair`. `one / two` is the measured speed-up and
# `two vs bound` = (one / two) / bound how much of the host's bound the kernels' split reaches.
# Each run's time is the median of REPEAT inferences in one process (the program's --repeat): with --repeat 1 every
# run also pays the first-touch page faults of the arena, which cost a 2-thread process more than two 1-thread ones.
# Medians over the rounds; the rounds alternate so that drift in the host hits all three alike. Not part of CI.
#
# usage: bash Benchmarks/threads.sh [--input 3x256x256] [--rounds 5] [--repeat 3] [model.yml ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
input=3x256x256 rounds=5 repeat=3
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --input) input="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --repeat) repeat="$2"; shift 2 ;;
        -*) echo "error: unknown option $1 (see the usage line at the top of $0)" >&2; exit 2 ;;
        *) models+=("$1"); shift ;;
    esac
done
case "$rounds" in ''|*[!0-9]*|0) echo "error: --rounds needs a positive integer, got '$rounds'" >&2; exit 2 ;; esac
case "$repeat" in ''|*[!0-9]*|0) echo "error: --repeat needs a positive integer, got '$repeat'" >&2; exit 2 ;; esac
[ ${#models[@]} -gt 0 ] || models=("$root/Graphs/models/restormer.yml" "$root/Graphs/models/mambairunet.yml")
source "$root/Benchmarks/common.sh"
random_image "$work/in.npy" "$input"

# run_ms PROGRAM THREADS OUT: median wall time of REPEAT inferences in one run, in ms.
run_ms() {
    "$1" "$work/in.npy" "$3" --threads "$2" --repeat "$repeat" 2>&1 | grep '^run:' | sed -E 's/.*median ([0-9.]+) ms.*/\1/'
}

echo "machine: $(machine_line); input $input; medians of $rounds alternating rounds (one, two, pair), each run the median of $repeat inferences"
echo
echo "| model | 1 thread (one) | 2 threads (two) | two 1-thread runs at once (pair, slower of the two) | pair / one | bound 2·one/pair | one / two | two vs bound |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for spec in "${models[@]}"; do
    name="$(basename "$spec" .yml)"
    "$hybridc" compile "$spec" --random-weights 0 --input "$input" -o "$work/$name" >/dev/null
    prog="$work/$name"
    run_ms "$prog" 2 "$work/warm.npy" >/dev/null
    ones=() twos=() pairs=()
    for _ in $(seq "$rounds"); do
        ones+=("$(run_ms "$prog" 1 "$work/o1.npy")")
        twos+=("$(run_ms "$prog" 2 "$work/o2.npy")")
        run_ms "$prog" 1 "$work/p1.npy" >"$work/p1.ms" &
        run_ms "$prog" 1 "$work/p2.npy" >"$work/p2.ms"
        wait
        pairs+=("$(python3 -c "print(max(float('$(cat "$work/p1.ms")'), float('$(cat "$work/p2.ms")')))")")
    done
    python3 - "$name" "${ones[*]}" "${twos[*]}" "${pairs[*]}" <<'PY'
import statistics, sys
name = sys.argv[1]
one, two, pair = (statistics.median(float(x) for x in a.split()) for a in sys.argv[2:5])
bound = 2 * one / pair
print(f"| {name} | {one:.0f} ms | {two:.0f} ms | {pair:.0f} ms | {pair / one:.2f} | {bound:.2f}x | "
      f"{one / two:.2f}x | {one / two / bound:.2f} |")
PY
done
