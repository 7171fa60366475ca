#!/usr/bin/env bash
# Head-to-head benchmark of hybridc against ONNX Runtime, OpenVINO and PyTorch eager (see README.md here).
# Creates Benchmarks/peers/.venv on first use and installs what it needs (torch CPU wheel when
# download.pytorch.org is reachable, else PyPI; onnx, onnxruntime, openvino, onnxscript, safetensors, numpy,
# pyyaml), then runs bench.py with the given options. Not part of CI.
#
# usage: bash Benchmarks/peers/run.sh [--models restormer,mambairunet] [--input 3x256x256] [--threads 2]
#                                     [--repeat 5] [--peers hybridc,ort,openvino,torch] [--hybridc PATH]
#                                     [--exporter legacy|dynamo|both] [--blocks]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
py="$venv/bin/python"
packages=(onnx onnxruntime openvino onnxscript safetensors numpy pyyaml)

if [ ! -x "$py" ] || ! "$py" -c 'import torch, onnx, onnxruntime, openvino, onnxscript, safetensors, numpy, yaml' 2>/dev/null; then
    echo "run.sh: setting up $venv (a few minutes the first time)" >&2
    python3 -m venv "$venv"
    "$py" -m pip install -q --upgrade pip >&2 || true
    # The CPU-only torch wheel is ~200 MB; PyPI's default wheel pulls ~3 GB of CUDA libraries.
    if "$py" -c 'import socket; socket.create_connection(("download.pytorch.org", 443), timeout=5)' 2>/dev/null; then
        "$py" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu >&2
    else
        echo "run.sh: download.pytorch.org is not reachable; installing torch from PyPI" >&2
        "$py" -m pip install -q torch >&2
    fi
    "$py" -m pip install -q "${packages[@]}" >&2
fi

exec "$py" "$here/bench.py" "$@"
