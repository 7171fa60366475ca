#!/usr/bin/env bash
# Lesson 3: find where the time goes, kernel by kernel, and how close each kernel is to what the machine can do.
#
# `hybridc profile` compiles a model, runs the program with its profiler on a generated image and prints one row
# per kernel: the IR ops it fuses, calls, time, share, GFLOP/s (FLOPs from the compiler's cost model), GB/s moved
# (operands + result + shared scratch, each once), the fraction of the roofline it reaches and whether it is
# compute- or memory-bound (its FLOP/byte against the ridge point). The roofs are measured once per machine (a
# vector-FMA loop and a streaming copy, under a second) and cached in ~/.cache/hybridc.
#
# Run from anywhere: bash Examples/03-profile-kernels/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
hybridc="${HYBRIDC:-$root/.build/release/hybridc}"
[ -x "$hybridc" ] || hybridc="$root/.build/debug/hybridc"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. Profile a small hybrid U-Net (S and T blocks) on a 64x64 image with 2 threads. Besides the table it
#    writes the table as JSON, a Chrome trace (one slice per kernel per thread: open it at ui.perfetto.dev to
#    see the threads' load balance) and a roofline (each kernel a point under the measured roofs).
"$hybridc" profile "$root/Graphs/tests/tiny-hybrid.yml" --random-weights 0 --input 3x64x64 --threads 2 \
    --json "$work/profile.json" --trace "$work/trace.json" --roofline "$work/roofline.svg" > "$work/profile.txt"

# 2. The first lines: the run, the measured peaks (and where they are cached), the slowest kernels.
head -8 "$work/profile.txt"

# 3. The by-block summary: each T (transformer) and S (state-space) block's time, with its stage and U-Net level,
#    and the mean T and S block per stage. This is how to compare the cost of the two block kinds at one place.
sed -n '/^by block/,$p' "$work/profile.txt" | head -20

# 4. The JSON holds the same rows for scripts: here the three kernels that reach the least of their roof.
python3 - "$work/profile.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
print("peaks:", p["peaks"]["fma_gflops"], "GFLOP/s,", p["peaks"]["copy_gbps"], "GB/s")
rows = sorted((k for k in p["kernels"] if k["total_ms"] > 0.1), key=lambda k: k["roof_fraction"])
for k in rows[:3]:
    print(f'{k["name"]:28} {k["bound"]:8} {100 * k["roof_fraction"]:5.1f}% of its roof, {k["total_ms"]:.2f} ms')
PY
ls -l "$work/trace.json" "$work/roofline.svg" | awk '{print $5, $NF}'

# 5. The generated program itself has the same profiler: `./model in.png out.png --profile --json p.json
#    --trace t.json` (so numbers can be collected on any device the program runs on). `--recalibrate` (or
#    HC_RECALIBRATE=1) measures the peaks again, e.g. after a change of power settings.
