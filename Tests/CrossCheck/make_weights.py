#!/usr/bin/env python3
"""Seeded random weights (and input images) for a model spec, for the numpy/hybridc cross-check.

    python3 make_weights.py --spec SPEC.yml --seed S [--stress] -o W.safetensors
    python3 make_weights.py --spec SPEC.yml --seed S [--stress] --input-out IN.npy --input-shape C,H,W
    (both outputs may be written by one call; --input-shape also accepts H,W, taking C from the spec)

Normal mode draws values at sensible scales (PyTorch-like conv/linear inits, LayerNorm weights near 1, the
SS2D inits of ARCHITECTURES.md 2.1). --stress makes the numerics harder while staying finite: attention
temperature 10, SS2D step sizes softplus(dt) around 1-5, LayerNorm biases and the biases that feed the residual
stream (CAB output conv, project_out when the model has biases) with a large common offset, channel attention
saturated near 1, residual-branch output weights scaled by 0.1, skip scales of 1.2-2.0 (one value per tensor),
and an input offset. After an S block the residual stream carries a per-pixel mean ~30x its spread across
channels (on tiny-hybrid); the step sizes make chunked scans overflow unless exponents are kept <= 0. Outputs
reach ~1e4, so with the max-relative error measure this case mostly catches overflow and gross errors.
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

STRESS_INPUT_OFFSET = 5.0
# The last layer of each residual branch (T: attention, GDFN; S: SS2D, CAB).
BRANCH_OUTPUTS = ("attn.project_out.weight", "ffn.project_out.weight", "self_attention.out_proj.weight",
                  "conv_blk.cab.2.weight")


def softplus_inverse(y):
    """x with softplus(x) = y: y + log(-expm1(-y))."""
    return y + np.log(-np.expm1(-y))


def _is_layer_norm(key):
    return (".norm1.body." in key or ".norm2.body." in key or ".ln_1." in key or ".ln_2." in key
            or ".out_norm." in key)


def init_param(key, shape, rng, stress=False):
    """One parameter's values, chosen by its key."""
    name = key.rsplit(".", 1)[-1]
    if name == "temperature":
        return np.full(shape, 10.0) if stress else rng.uniform(0.5, 1.5, shape)
    if _is_layer_norm(key):
        if name == "weight":
            return 1.0 + 0.1 * rng.standard_normal(shape)
        offset = rng.uniform(5.0, 20.0) if stress else 0.0
        return offset + 0.1 * rng.standard_normal(shape)
    if name == "A_logs":
        n = shape[1]
        return np.log(np.arange(1, n + 1, dtype=np.float64))[None, :] + 0.05 * rng.standard_normal(shape)
    if name == "Ds":
        return 1.0 + 0.1 * rng.standard_normal(shape)
    if name == "dt_projs_bias":
        if stress:
            dt = rng.uniform(1.0, 5.0, shape)
        else:
            dt = np.exp(rng.uniform(math.log(1e-3), math.log(0.1), shape))
        return softplus_inverse(np.maximum(dt, 1e-4))
    if name == "dt_projs_weight":
        bound = shape[2] ** -0.5
        return rng.uniform(-bound, bound, shape)
    if name == "x_proj_weight":
        bound = shape[2] ** -0.5
        return rng.uniform(-bound, bound, shape)
    if name in ("skip_scale", "skip_scale2"):
        if stress:  # one common scale per tensor, so a common offset of the residual stays common
            return rng.uniform(1.2, 2.0) + 0.01 * rng.standard_normal(shape)
        return 1.0 + 0.1 * rng.standard_normal(shape)
    if name == "weight":
        fan_in = int(np.prod(shape[1:]))
        bound = 1.0 / math.sqrt(fan_in)
        if stress and key.endswith(BRANCH_OUTPUTS):
            bound *= 0.1  # keep the blocks' residual branches small next to the stream's common offset
        if stress and key.endswith("cab.3.attention.3.weight"):
            bound *= 0.01  # with the +8 bias below: channel attention stays near 1 despite the offset
        return rng.uniform(-bound, bound, shape)
    if name == "bias":
        values = 0.05 * rng.standard_normal(shape)
        if stress and key.endswith(tuple(k.replace(".weight", ".bias") for k in BRANCH_OUTPUTS)):
            values += rng.uniform(100.0, 300.0)  # a common offset added to the residual stream
        if stress and key.endswith("cab.3.attention.3.bias"):
            values += 8.0  # saturate the channel attention near 1, so CAB passes that offset on unchanged
        return values
    raise ValueError(f"no init rule for {key}")


def make_weights(cfg, seed, stress=False):
    """{key: float32 array} for every parameter of the resolved spec."""
    rng = np.random.default_rng([seed, 0])
    return {key: init_param(key, shape, rng, stress).astype(np.float32)
            for key, shape in reference.param_shapes(cfg).items()}


def make_input(shape, seed, stress=False):
    """A float32 image in [0, 1] of the given shape (plus an offset in stress mode)."""
    rng = np.random.default_rng([seed, 1])
    img = rng.uniform(0.0, 1.0, shape)
    if stress:
        img = img + STRESS_INPUT_OFFSET
    return img.astype(np.float32)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stress", action="store_true")
    ap.add_argument("-o", "--output", help="weights .safetensors to write")
    ap.add_argument("--input-out", help="also write a seeded input image (.npy, float32, shape 1xCxHxW)")
    ap.add_argument("--input-shape", help="C,H,W (or H,W: C from the spec's inp_channels)")
    ap.add_argument("--input-rank", type=int, choices=(3, 4), default=4,
                    help="write the image as CxHxW (3) or 1xCxHxW (4, default)")
    args = ap.parse_args(argv)
    if not args.output and not args.input_out:
        ap.error("nothing to do: give -o and/or --input-out")
    cfg = reference.load_spec(args.spec)
    if args.output:
        weights = make_weights(cfg, args.seed, args.stress)
        reference.write_safetensors(args.output, weights)
        count = sum(w.size for w in weights.values())
        print(f"wrote {len(weights)} tensors, {count} parameters to {args.output}")
    if args.input_out:
        if not args.input_shape:
            ap.error("--input-out needs --input-shape")
        dims = [int(v) for v in args.input_shape.split(",")]
        if len(dims) == 2:
            dims = [cfg["inp_channels"]] + dims
        if len(dims) != 3:
            ap.error("--input-shape is C,H,W or H,W")
        shape = tuple(dims) if args.input_rank == 3 else (1, *dims)
        np.save(args.input_out, make_input(shape, args.seed, args.stress))
        print(f"wrote input {shape} to {args.input_out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (reference.SpecError, OSError) as e:
        print(f"make_weights.py: error: {e}", file=sys.stderr)
        sys.exit(1)
