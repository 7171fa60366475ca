#!/usr/bin/env bash
# Lesson 0: look at a model before compiling it.
#
# hybridc reads a model spec (the `network_g` section of a BasicSR options file), builds its graph, and can
# count it and run it on the reference interpreter. Nothing here generates C yet; that is lesson 1.
#
# Run from anywhere: bash Examples/00-check-and-interpret/run.sh
# (HYBRIDC may point at a built hybridc; by default the debug build of this checkout is used.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
hybridc="${HYBRIDC:-$root/.build/debug/hybridc}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. Count the default Restormer: parameters, GMAC and GFLOP at 3x256x256, then one row per U-Net stage.
#    The numbers follow ARCHITECTURES.md section 4 (a MAC is one multiply-add of a conv or matmul).
"$hybridc" check "$root/Graphs/models/restormer.yml"

# 2. The same for a hybrid at a smaller input: S blocks (selective scan) at full resolution, T blocks deeper.
"$hybridc" check "$root/Graphs/models/ens-derain.yml" --input 3x128x128 | head -6

# 3. Export seeded weights with the PyTorch key names, then validate a spec against them. A real checkpoint
#    (.pth) is converted first with scripts/convert_pth.py.
"$hybridc" weights "$root/Graphs/tests/tiny-hybrid.yml" --random-weights 7 -o "$work/tiny.safetensors"
"$hybridc" check "$root/Graphs/tests/tiny-hybrid.yml" --weights "$work/tiny.safetensors" --input 3x32x32 | tail -1

# 4. Run the reference interpreter on an image stored as .npy (float32, (C,H,W) or (1,C,H,W)). Sizes that
#    are not multiples of 8 are reflect-padded and cropped back, so 3x20x28 comes back as 3x20x28.
python3 - "$work/in.npy" <<'PY'
import sys, numpy as np
np.save(sys.argv[1], np.random.default_rng(0).random((3, 20, 28), dtype=np.float32))
PY
"$hybridc" interpret "$root/Graphs/tests/tiny-hybrid.yml" --weights "$work/tiny.safetensors" "$work/in.npy" "$work/out.npy"
python3 -c "import numpy as np, sys; y = np.load(sys.argv[1]); print('restored', y.shape, y.dtype)" "$work/out.npy"
