#!/usr/bin/env bash
# Lesson 1: compile a model to C and restore an image with the program hybridc builds.
#
# `hybridc compile` lowers the model to primitive ops, folds what depends on weights alone (A = -exp(A_log)),
# prints one C function per kernel, plans one workspace arena for every intermediate, packs the weights into
# a blob that is linked into the program, and builds it with the target's C compiler.
#
# Run from anywhere: bash Examples/01-compile-and-run/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
hybridc="${HYBRIDC:-$root/.build/release/hybridc}"
[ -x "$hybridc" ] || hybridc="$root/.build/debug/hybridc"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. Compile the default Restormer (motion deblurring / deraining) for images up to 3x256x256, with seeded
#    weights (a real checkpoint would be --weights model.safetensors). The generated sources stay beside the
#    program in restormer.src/: model.c (the kernels), model.h (the library API), model.weights, a Makefile.
"$hybridc" compile "$root/Graphs/models/restormer.yml" --random-weights 0 --input 3x256x256 -o "$work/restormer"
ls "$work/restormer.src"

# 2. Every kernel opens with a comment of its shapes (h and w are the image height and width in units of 8
#    pixels, chosen at run time) and of the schedule it was generated from.
grep -m1 -A4 "^/\* k[0-9]*_matmul" "$work/restormer.src/model.c" || true

# 3. Restore the bundled 256x256 image. Any size up to the compiled one runs in one piece (padded to a multiple
#    of 8 and cropped back); --profile prints where the time went, kernel by kernel, slowest first.
"$work/restormer" "$root/Graphs/images/rainy-256.png" "$work/restored.png" --threads 2 --profile > "$work/profile.txt"
head -8 "$work/profile.txt"
ls -l "$work/restored.png"

# 4. Images larger than the compiled size are cut into overlapping tiles and the seams blended. Attention and
#    the 2D scan see the whole tile only, so tiled results differ slightly from whole-image ones.
"$hybridc" compile "$root/Graphs/tests/tiny-hybrid.yml" --random-weights 0 --input 3x64x64 -o "$work/tiny"
"$work/tiny" "$root/Graphs/images/rainy-256.png" "$work/tiled.png" --overlap 16

# 5. The same sources build for the phone: `hybridc compile --target aarch64` cross-compiles (statically) and
#    the result runs here under qemu: QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 ./restormer in.png out.png
