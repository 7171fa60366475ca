#!/usr/bin/env bash
# Sets up a fresh Debian machine for hybridc and builds it (release). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Debian packages: the C toolchains the generated code is built with (host gcc, the aarch64 cross compiler and
# qemu to run its output here), libpng/zlib for the generated programs (also the arm64 builds, which link
# statically), OpenBLAS (reference GEMM), python3 for the numpy cross-check, GNU time for the peak-RSS benchmark,
# and llvm-19 for llvm-mca-19 (`hybridc profile --target aarch64 --mca`: the Oryon throughput estimate).
apt_packages=(python3 python3-pip gcc make time gcc-aarch64-linux-gnu qemu-user libopenblas-dev libpng-dev zlib1g-dev
              libpng-dev:arm64 zlib1g-dev:arm64 llvm-19)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
fi
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Python packages of the numpy cross-check (no PyTorch: that is only for Benchmarks/).
if ! python3 -c "import numpy, yaml" >/dev/null 2>&1; then
    python3 -m pip install --quiet numpy pyyaml || python3 -m pip install --quiet --break-system-packages numpy pyyaml
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "error: swift is not on PATH; hybridc needs Swift 5.9 or later (checked with 6.3.1)" >&2
    exit 1
fi
swift build -c release --product hybridc
echo "hybridc is at $(swift build -c release --show-bin-path)/hybridc"
