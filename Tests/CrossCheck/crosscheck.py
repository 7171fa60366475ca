#!/usr/bin/env python3
"""Cross-checks `hybridc interpret` against the numpy reference on the tiny test specs.

    python3 crosscheck.py --hybridc PATH_TO_HYBRIDC_BINARY [--workdir DIR] [--only SUBSTRING] [--tolerance 1e-4]

For each case: writes seeded weights and an input image (make_weights.py), runs
`HYBRIDC interpret SPEC --weights W.safetensors IN.npy OUT.npy`, runs reference.forward in-process, and compares
rel = max|hybridc - reference| / max|reference|. A case passes when rel <= tolerance. Prints one line per case and
exits non-zero if any case fails (including hybridc errors, missing or misshapen outputs).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import make_weights  # noqa: E402
import reference  # noqa: E402

SPECS = ["tiny-t.yml", "tiny-t-biasfree.yml", "tiny-s.yml", "tiny-hybrid.yml", "tiny-dual-pixel.yml"]
SIZES = [(16, 16), (13, 19)]

# (name, spec relative to the repo root, (H, W), stress, seed)
CASES = [(f"{spec[:-4]}-{h}x{w}", f"Graphs/tests/{spec}", (h, w), False, 1 + i)
         for i, spec in enumerate(SPECS) for (h, w) in SIZES]
CASES.append(("tiny-hybrid-stress-16x16", "Graphs/tests/tiny-hybrid.yml", (16, 16), True, 99))

HYBRIDC_TIMEOUT = 1800  # seconds per case (the interpreter is a debug build)


def run_case(hybridc, name, spec_rel, size, stress, seed, workdir, tolerance):
    """Returns (passed, line)."""
    spec = os.path.join(REPO, spec_rel)
    cfg = reference.load_spec(spec)
    shape = (1, cfg["inp_channels"], *size)
    weights_path = os.path.join(workdir, f"{name}.safetensors")
    in_path = os.path.join(workdir, f"{name}.in.npy")
    out_path = os.path.join(workdir, f"{name}.out.npy")
    weights = make_weights.make_weights(cfg, seed, stress)
    reference.write_safetensors(weights_path, weights)
    image = make_weights.make_input(shape, seed, stress)
    np.save(in_path, image)
    if os.path.exists(out_path):
        os.remove(out_path)

    label = f"{name:28s} {'x'.join(map(str, shape)):12s}"
    cmd = [hybridc, "interpret", spec, "--weights", weights_path, in_path, out_path]
    start = time.time()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=HYBRIDC_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, f"{label} FAIL (hybridc timed out after {HYBRIDC_TIMEOUT}s)"
    except OSError as e:
        return False, f"{label} FAIL (cannot run hybridc: {e})"
    seconds = time.time() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:] or ["(no output)"]
        return False, f"{label} FAIL (hybridc exit {proc.returncode})\n    " + "\n    ".join(tail)
    if not os.path.exists(out_path):
        return False, f"{label} FAIL (hybridc wrote no {out_path})"

    got = np.load(out_path).astype(np.float64)
    ref = reference.forward(cfg, {k: v.astype(np.float64) for k, v in weights.items()}, image)
    if got.shape != ref.shape:
        if got.size == ref.size and tuple(s for s in got.shape if s != 1) == tuple(s for s in ref.shape if s != 1):
            got = got.reshape(ref.shape)  # only a batch axis of 1 differs
        else:
            return False, f"{label} FAIL (output shape {got.shape}, reference {ref.shape})"
    if not np.all(np.isfinite(got)):
        return False, f"{label} FAIL (hybridc output has {np.sum(~np.isfinite(got))} non-finite values)"
    rel = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))
    verdict = "PASS" if rel <= tolerance else "FAIL"
    return rel <= tolerance, f"{label} rel {rel:.2e}  {verdict}  ({seconds:.1f}s)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hybridc", required=True, help="path of the hybridc binary")
    ap.add_argument("--workdir", help="where to keep weights, inputs and outputs (default: a temporary folder)")
    ap.add_argument("--only", help="run only the cases whose name contains this")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args(argv)
    hybridc = os.path.abspath(args.hybridc)
    if not os.access(hybridc, os.X_OK):
        print(f"crosscheck: {hybridc} is not an executable", file=sys.stderr)
        return 2
    cases = [c for c in CASES if not args.only or args.only in c[0]]
    if not cases:
        print(f"crosscheck: no case matches {args.only!r}", file=sys.stderr)
        return 2

    tmp = None
    if args.workdir:
        workdir = os.path.abspath(args.workdir)
        os.makedirs(workdir, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="hybridc-crosscheck-")
        workdir = tmp.name
    failures = 0
    try:
        for case in cases:
            passed, line = run_case(hybridc, *case, workdir=workdir, tolerance=args.tolerance)
            print(line, flush=True)
            failures += not passed
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(f"{len(cases) - failures}/{len(cases)} cases passed (tolerance {args.tolerance:g})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
