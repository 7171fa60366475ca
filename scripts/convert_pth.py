#!/usr/bin/env python3
"""Converts an upstream PyTorch checkpoint (Restormer / MambaIR / BasicSR .pth) to float32 safetensors.

    python3 scripts/convert_pth.py IN.pth OUT.safetensors [--key params_ema]

Takes `params_ema` if present, else `params`, else the loaded dict itself when it looks like a state_dict
(or the mapping under --key), strips `module.` prefixes (DataParallel), converts every floating tensor to
float32 and writes safetensors by hand (no safetensors package needed). Needs torch only for reading the .pth;
everything after loading works on plain dicts of numpy arrays (see Tests/CrossCheck/test_convert.py).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

PREFERRED_KEYS = ("params_ema", "params")
MODULE_PREFIX = "module."


class ConvertError(Exception):
    pass


def is_tensor_like(value):
    """A torch tensor or numpy array (anything with shape and dtype)."""
    return hasattr(value, "shape") and hasattr(value, "dtype")


def looks_like_state_dict(obj):
    """A non-empty mapping of string keys to tensors."""
    return (isinstance(obj, dict) and len(obj) > 0
            and all(isinstance(k, str) for k in obj) and all(is_tensor_like(v) for v in obj.values()))


def pick_state_dict(checkpoint, key=None):
    """The state_dict inside a loaded checkpoint: checkpoint[key] if key is given, else params_ema, params, or
    the checkpoint itself. Raises ConvertError with a readable message otherwise."""
    if not isinstance(checkpoint, dict):
        raise ConvertError(f"the file holds a {type(checkpoint).__name__}, not a checkpoint dict "
                           "(a whole pickled model is not supported; save its state_dict())")
    if key is not None:
        if key not in checkpoint:
            raise ConvertError(f"no key {key!r} in the checkpoint; its top-level keys: {_key_list(checkpoint)}")
        chosen, where = checkpoint[key], repr(key)
    else:
        for candidate in PREFERRED_KEYS:
            if candidate in checkpoint:
                chosen, where = checkpoint[candidate], repr(candidate)
                break
        else:
            chosen, where = checkpoint, "the top level"
    if not looks_like_state_dict(chosen):
        raise ConvertError(f"{where} is not a state_dict (a mapping of names to tensors); "
                           f"top-level keys: {_key_list(checkpoint)} (choose one with --key)")
    return chosen


def _key_list(d, limit=10):
    keys = [str(k) for k in d]
    return ", ".join(keys[:limit]) + (f", ... ({len(keys)} keys)" if len(keys) > limit else "") or "(none)"


def strip_module_prefix(state_dict):
    """Removes leading `module.` prefixes (possibly repeated); raises if two keys collide."""
    result = {}
    for name, value in state_dict.items():
        new = name
        while new.startswith(MODULE_PREFIX):
            new = new[len(MODULE_PREFIX):]
        if new in result:
            raise ConvertError(f"two tensors become {new!r} after removing the {MODULE_PREFIX!r} prefix")
        result[new] = value
    return result


def to_float32_arrays(state_dict, to_numpy=np.asarray):
    """{name: float32 numpy array} for the floating tensors; returns (arrays, names of skipped tensors).

    to_numpy turns one tensor into a numpy array (torch: t.detach().cpu().float().numpy())."""
    arrays, skipped = {}, []
    for name, value in state_dict.items():
        arr = np.asarray(to_numpy(value))
        if arr.dtype.kind not in "f":
            skipped.append(name)  # e.g. BatchNorm's num_batches_tracked
            continue
        arrays[name] = np.asarray(arr, dtype=np.float32, order="C")
    return arrays, skipped


def write_safetensors(path, arrays, metadata=None):
    """Writes {name: array} as little-endian F32 safetensors, keys sorted, 8-byte aligned header."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(arrays):
        arr = np.asarray(arrays[name], dtype="<f4", order="C")
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for raw in blobs:
            f.write(raw)


def convert(checkpoint, out_path, key=None, to_numpy=np.asarray):
    """Picks, strips, converts and writes; returns (number of tensors written, skipped names)."""
    state_dict = strip_module_prefix(pick_state_dict(checkpoint, key))
    arrays, skipped = to_float32_arrays(state_dict, to_numpy)
    if not arrays:
        raise ConvertError("the state_dict has no floating-point tensors")
    write_safetensors(out_path, arrays, metadata={"format": "pt", "converted_by": "hybridc convert_pth.py"})
    return len(arrays), skipped


def load_checkpoint(path):
    """torch.load on the CPU, weights_only where this torch supports it."""
    try:
        import torch
    except ImportError:
        raise ConvertError("reading a .pth needs PyTorch (pip install torch); it is not installed here")
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch < 1.13 has no weights_only
            return torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any failure here means the file is not a readable checkpoint
        raise ConvertError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})")


def torch_to_numpy(tensor):
    if hasattr(tensor, "detach"):
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.float()
        return tensor.numpy()
    return np.asarray(tensor)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", help="checkpoint .pth")
    ap.add_argument("output", help="safetensors file to write")
    ap.add_argument("--key", help="take the state_dict under this top-level key (default: params_ema, params, "
                                  "or the whole file)")
    args = ap.parse_args(argv)
    try:
        checkpoint = load_checkpoint(args.input)
        count, skipped = convert(checkpoint, args.output, args.key, torch_to_numpy)
    except ConvertError as e:
        print(f"convert_pth: error: {e}", file=sys.stderr)
        return 1
    if skipped:
        print(f"skipped {len(skipped)} non-floating tensor(s): {', '.join(skipped[:5])}")
    print(f"wrote {count} tensors to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
