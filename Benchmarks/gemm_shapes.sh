#!/usr/bin/env bash
# gemm_shapes.sh — the GEMM micro-kernel against OpenBLAS on every distinct 1x1-convolution GEMM shape of
# restormer.yml (default input 3x256x256). Not a test: a measurement for BENCHMARKS.md.
#
# For each shape Y[M][N] = W[M][K]·X[K][N] + b (N = H·W pixels, planar layout), it compiles a one-conv2d graph with
# hybridc (weights prepacked at compile time, bias fused), links its libmodel.a into Benchmarks/gemm/gemm_driver.c
# and times, in one process: the generated kernel, and cblas_sgemm plus the separate bias pass OpenBLAS needs
# (an activation or a residual would be one more pass each). Prints GFLOP/s of both and the speed ratio.
#
# Usage: Benchmarks/gemm_shapes.sh            (THREADS=2 REPEAT=5 SIZE=3x256x256 MODEL=Graphs/models/restormer.yml
#                                               TARGET=host, or x86-64-avx2 / x86-64-avx512 / generic)
# Needs: a release build of hybridc (swift build -c release), cc, make, python3, libopenblas-dev.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HYBRIDC=${HYBRIDC:-$ROOT/.build/release/hybridc}
MODEL=${MODEL:-$ROOT/Graphs/models/restormer.yml}
THREADS=${THREADS:-2}
REPEAT=${REPEAT:-5}
SIZE=${SIZE:-3x256x256}
TARGET=${TARGET:-host}
WORK=${WORK:-$(mktemp -d /tmp/hybridc-gemm-shapes.XXXXXX)}
mkdir -p "$WORK"
[ -x "$HYBRIDC" ] || { echo "gemm_shapes.sh: build hybridc first (swift build -c release)" >&2; exit 1; }
if ! echo '#include <cblas.h>' | cc -E - >/dev/null 2>&1; then
    echo "gemm_shapes.sh: cblas.h not found (apt-get install libopenblas-dev)" >&2; exit 1
fi

# The lowered graph (blocks expanded, shapes inferred): every conv2d with groups 1, padding 0 and a [M,K,1,1] weight.
"$HYBRIDC" opt "$MODEL" --random-weights 0 --size "$SIZE" --passes infer-shapes,expand-blocks,infer-shapes --emit ir \
    > "$WORK/lowered.hir"
python3 - "$WORK/lowered.hir" > "$WORK/shapes.txt" <<'PY'
import re, sys, collections
shapes = {}
for line in open(sys.argv[1]):
    m = re.match(r'\s*%(\d+) = .*: f32\[([0-9,]+)\]', line)
    if m: shapes[m.group(1)] = [int(v) for v in m.group(2).split(',')]
count = collections.Counter()
for line in open(sys.argv[1]):
    m = re.match(r'\s*%(\d+) = conv2d\(%(\d+), %(\d+)(?:, %\d+)?\) \{groups = 1, padding = 0\}', line)
    if not m: continue
    w, y = shapes[m.group(3)], shapes[m.group(1)]
    if w[2] == 1 and w[3] == 1:
        count[(w[0], w[1], y[2], y[3])] += 1
for (mm, k, h, w), n in sorted(count.items(), key=lambda kv: (-kv[0][2] * kv[0][3], kv[0])):
    print(mm, k, h, w, n)
PY

echo "GEMM shapes of $(basename "$MODEL") at $SIZE, $THREADS thread(s), median of $REPEAT, target $TARGET (work dir $WORK)"
echo "    M     K      N th  native (generated micro-kernel, bias fused)  openblas (cblas_sgemm + bias pass)   ratio        uses"
while read -r M K H W USES; do
    d="$WORK/gemm_${M}x${K}_${H}x${W}"
    mkdir -p "$d"
    cat > "$d/graph.hir" <<HIR
graph @gemm(%0: f32[1,$K,$H,$W]) {
  %1 = weight {name = "w"} : f32[$M,$K,1,1]
  %2 = weight {name = "b"} : f32[$M]
  %3 = conv2d(%0, %1, %2) {groups = 1, padding = 0}
  return %3
}
HIR
    "$HYBRIDC" compile "$d/graph.hir" --random-weights 0 --target "$TARGET" -o "$d/prog" > "$d/compile.log" 2>&1
    make -s -C "$d/prog.src" lib > "$d/make.log" 2>&1
    cc -O2 -std=c11 -I"$d/prog.src" "$ROOT/Benchmarks/gemm/gemm_driver.c" "$d/prog.src/libmodel.a" \
        -lopenblas -lm -lpthread -o "$d/driver"
    echo "$("$d/driver" "$M" "$K" "$H" "$W" "$THREADS" "$REPEAT")   x$USES"
done < "$WORK/shapes.txt"
