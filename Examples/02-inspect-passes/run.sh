#!/usr/bin/env bash
# Lesson 2: watch one T block and one S block go through the pass pipeline.
#
# `hybridc opt` runs passes on a spec or on a text-IR file and shows what each did. Graphs/blocks/ holds one
# Restormer T block and one MambaIR S block as single block ops, small enough to read.
#
# Run from anywhere: bash Examples/02-inspect-passes/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
hybridc="${HYBRIDC:-$root/.build/release/hybridc}"
[ -x "$hybridc" ] || hybridc="$root/.build/debug/hybridc"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. The passes, their one-line summaries, and the named pipelines (`default` is what `compile` runs).
"$hybridc" opt --list-passes

# 2. The T block before any pass: one transformer_block op taking its input and its eleven weights.
grep -c "weight" "$root/Graphs/blocks/transformer-block.hir"

# 3. After expand-blocks the T block is LayerNorm, MDTA (qkv 1x1, depthwise 3x3, L2 norms, q·kᵀ, temperature,
#    softmax, attn·v, project_out) and GDFN (project_in, depthwise 3x3, GELU gate, project_out), with the
#    residual adds. Each op keeps the PyTorch module it came from in loc("...").
"$hybridc" opt "$root/Graphs/blocks/transformer-block.hir" --passes infer-shapes,expand-blocks | grep -E "conv2d|matmul|softmax" | head -6

# 4. The S block through the whole default pipeline, printing the IR only after passes that changed it.
#    fold-constants computes A = -exp(A_logs), the reshaped Linear weights and skip scales at compile time.
"$hybridc" opt "$root/Graphs/blocks/ssm-block.hir" --print-ir-after-change > "$work/ssm.txt"
grep -E "^// -----|unchanged" "$work/ssm.txt"
grep -m2 "A_logs" "$work/ssm.txt"

# 5. What each pass did and what it cost, and one numbered IR file per pass to diff.
"$hybridc" opt "$root/Graphs/blocks/ssm-block.hir" --stats --time-passes --dump-dir "$work/dumps" | grep "^// "
ls "$work/dumps"
#    fuse-scan-directions replaces SS2D's flips, transposes, batched matmuls, scan and merge by one x_proj GEMM
#    and one ss2d_scan that reads the four directions in place; choose-layouts then makes x_dbl token-major.
grep -E "= (flip|transpose)\(" "$work/dumps/04-canonicalize.hir" | wc -l
{ grep -E "= (flip|transpose)\(" "$work/dumps/05-fuse-scan-directions.hir" || true; } | wc -l
grep -E 'x_proj"\)|ss2d_scan' "$work/dumps/05-fuse-scan-directions.hir" | grep -oE "= [a-z0-9_]+\([^)]*\)"
grep -oE "matmul\([^)]*\) \{transpose_a = true\}" "$work/dumps/06-choose-layouts.hir"
diff "$work/dumps/06-choose-layouts.hir" "$work/dumps/07-fold-constants.hir" | head -8 || true
#    fold-layer-norm: ln_1 folds into in_proj (γ, β into its weights and bias); ln_2 cannot fold into CAB's 3x3
#    conv (β through the zero padding would be wrong at the border), so the conv takes ln_2's γ and β as operands
#    (norm_affine) and normalises each tap while packing its implicit GEMM; the one layer_norm left is out_norm
#    with its silu(z) gate.
grep -oE "conv2d\([^)]*\) \{[^}]*norm = [^}]*\}" "$work/dumps/08-fold-layer-norm.hir"
grep -c "layer_norm(" "$work/dumps/08-fold-layer-norm.hir" || true

# 6. The kernel graph as Graphviz DOT (one node per kernel; `dot -Tsvg` draws it), and the generated C.
"$hybridc" opt "$root/Graphs/blocks/ssm-block.hir" --emit dot > "$work/ssm.dot"
head -5 "$work/ssm.dot"
"$hybridc" opt "$root/Graphs/tests/tiny-s.yml" --size 3x16x16 --emit c > "$work/model.c"
grep -c "^static void k" "$work/model.c"
