#!/usr/bin/env python3
"""Tests the torch-free parts of scripts/convert_pth.py with numpy arrays. Run: python3 Tests/CrossCheck/test_convert.py"""
import json
import os
import struct
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts"))
sys.path.insert(0, HERE)
import convert_pth as cp  # noqa: E402
import reference  # noqa: E402


def raises(fn, *args, match=""):
    try:
        fn(*args)
    except cp.ConvertError as e:
        assert match in str(e), f"message {e!r} lacks {match!r}"
        return
    raise AssertionError(f"{fn.__name__} did not raise")


def test_pick():
    a = {"w": np.ones(2, np.float32)}
    b = {"w": np.zeros(2, np.float32)}
    assert cp.pick_state_dict({"params_ema": a, "params": b}) is a
    assert cp.pick_state_dict({"params": b, "optimizer": 3}) is b
    assert cp.pick_state_dict(a) is a
    assert cp.pick_state_dict({"params_ema": a, "params": b}, key="params") is b
    assert cp.pick_state_dict({"state_dict": a, "epoch": 1}, key="state_dict") is a
    raises(cp.pick_state_dict, {"params": b}, "params_ema", match="no key 'params_ema'")
    raises(cp.pick_state_dict, [1, 2], match="not a checkpoint dict")
    raises(cp.pick_state_dict, {"epoch": 3, "net": a}, match="--key")
    raises(cp.pick_state_dict, {}, match="not a state_dict")
    raises(cp.pick_state_dict, {"params": {"w": 1.0}}, match="not a state_dict")


def test_strip():
    sd = {"module.patch_embed.proj.weight": 1, "module.module.output.weight": 2, "latent.0.attn.temperature": 3,
          "encoder_level1.0.module.x": 4}
    out = cp.strip_module_prefix(sd)
    assert out == {"patch_embed.proj.weight": 1, "output.weight": 2, "latent.0.attn.temperature": 3,
                   "encoder_level1.0.module.x": 4}, out
    raises(cp.strip_module_prefix, {"module.a": 1, "a": 2}, match="'a'")


def test_float32():
    sd = {"h": np.arange(6, dtype=np.float16).reshape(2, 3), "d": np.array([1.5], np.float64),
          "n": np.array(7, np.int64)}
    arrays, skipped = cp.to_float32_arrays(sd)
    assert skipped == ["n"]
    assert set(arrays) == {"h", "d"}
    assert all(a.dtype == np.float32 for a in arrays.values())
    assert np.array_equal(arrays["h"], np.arange(6, dtype=np.float32).reshape(2, 3))


def test_write_and_convert():
    rng = np.random.default_rng(0)
    sd = {"module.b.weight": rng.standard_normal((3, 4, 1, 1)).astype(np.float32),
          "module.a.temperature": rng.standard_normal((2, 1, 1)),
          "module.c.scalar": np.array(2.5, np.float16),
          "module.bn.num_batches_tracked": np.array(10, np.int64)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "w.safetensors")
        count, skipped = cp.convert({"params_ema": sd, "params": {}}, path)
        assert count == 3 and skipped == ["bn.num_batches_tracked"], (count, skipped)
        with open(path, "rb") as f:
            data = f.read()
        (n,) = struct.unpack("<Q", data[:8])
        assert n % 8 == 0
        header = json.loads(data[8:8 + n])
        names = [k for k in header if k != "__metadata__"]
        assert names == sorted(names) == ["a.temperature", "b.weight", "c.scalar"], names
        assert all(header[k]["dtype"] == "F32" for k in names)
        assert header["c.scalar"]["shape"] == []
        assert max(header[k]["data_offsets"][1] for k in names) == len(data) - 8 - n
        back = reference.read_safetensors(path)
        assert set(back) == set(names)
        assert np.array_equal(back["b.weight"], sd["module.b.weight"].astype(np.float64))
        assert np.array_equal(back["a.temperature"], sd["module.a.temperature"].astype(np.float32).astype(np.float64))
        assert back["c.scalar"].shape == () and float(back["c.scalar"]) == 2.5
        raises(cp.convert, {"params": {"n": np.array(1)}}, path, match="no floating-point")


def test_reader_dtypes():
    """The reference reader's F16 / BF16 paths, on a file written by hand."""
    vals = np.array([1.0, -2.5, 3.140625, 0.0], np.float32)
    bf16 = (vals.view(np.uint32) >> 16).astype("<u2").tobytes()
    f16 = vals.astype("<f2").tobytes()
    header = {"__metadata__": {"x": "y"},
              "b": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
              "h": {"dtype": "F16", "shape": [4], "data_offsets": [8, 16]}}
    head = json.dumps(header).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(head)) + head + bf16 + f16)
        back = reference.read_safetensors(path)
    assert set(back) == {"b", "h"}
    assert np.array_equal(back["b"].ravel(), vals) and back["b"].shape == (2, 2)
    assert np.array_equal(back["h"], vals)


def test_no_torch_needed():
    """Importing convert_pth and converting numpy dicts must not import torch."""
    assert "torch" not in sys.modules


if __name__ == "__main__":
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    for test in tests:
        test()
        print(f"ok  {test.__name__}")
    print(f"{len(tests)} tests passed")
