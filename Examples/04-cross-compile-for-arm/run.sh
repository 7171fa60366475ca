#!/usr/bin/env bash
# Lesson 4: build for an ARM phone (aarch64 + NEON), check it under qemu, and estimate its speed on the
# Snapdragon 8 Elite's Oryon core without the hardware.
#
# Needs (scripts/setup.sh installs them): gcc-aarch64-linux-gnu, qemu-user, libpng-dev:arm64 and zlib1g-dev:arm64
# for the static arm64 program, and llvm-19 for llvm-mca-19.
#
# Run from anywhere: bash Examples/04-cross-compile-for-arm/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
hybridc="${HYBRIDC:-$root/.build/release/hybridc}"
[ -x "$hybridc" ] || hybridc="$root/.build/debug/hybridc"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. Cross-compile: the same passes, but the kernels are scheduled for 128-bit NEON with 32 registers and the
#    target's caches, hc_simd.h maps the vector code to NEON, and the program is linked statically.
"$hybridc" compile "$root/Graphs/tests/tiny-t.yml" --random-weights 0 --input 3x32x32 --target aarch64 -o "$work/model"
file "$work/model" 2>/dev/null | cut -d, -f1-2 || true

# 2. Correctness evidence: run it here under qemu (user-mode emulation: right results, meaningless timings) and
#    compare with the native build of the same model, which must agree to float rounding.
"$hybridc" compile "$root/Graphs/tests/tiny-t.yml" --random-weights 0 --input 3x32x32 -o "$work/native"
python3 -c "import numpy as np; np.save('$work/in.npy', np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32))"
QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 "$work/model" "$work/in.npy" "$work/arm.npy" --threads 2
"$work/native" "$work/in.npy" "$work/x86.npy" --threads 2
python3 -c "import numpy as np; d = np.abs(np.load('$work/arm.npy') - np.load('$work/x86.npy')).max(); print('max |arm - x86| =', d); assert d < 1e-3"

# 3. Speed evidence without a phone: llvm-mca (Debian's llvm-19) models the Oryon core (-mcpu=oryon-1). For each
#    generated function, hybridc compiles model.c to assembly, takes its hottest inner loop (the innermost loop
#    with the most vector FMAs, or regions marked LLVM-MCA-BEGIN/END) and reports cycles per iteration and the
#    fraction of the core's FMA peak (4 fmla .4s per cycle in llvm's Oryon model, read from llvm by a probe).
"$hybridc" profile "$root/Graphs/tests/tiny-t.yml" --random-weights 0 --input 3x32x32 --target aarch64 --mca > "$work/mca.txt"
sed -n '/^llvm-mca/,$p' "$work/mca.txt" | head -8

# 4. On the device itself, the program profiles like the host one: copy model to the phone (adb push) and run
#    ./model in.png out.png --profile --json profile.json --threads 8
