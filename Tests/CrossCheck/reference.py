#!/usr/bin/env python3
"""Independent numpy reference of the hybridc model family (Restormer / MambaIRUNet / HybridUNet).

Written from /work/shared/ARCHITECTURES.md (section numbers below refer to it). numpy + PyYAML only.
Everything is computed in float64; the selective scan is the plain sequential recurrence of section 3.

CLI:
    python3 reference.py --spec SPEC.yml --weights W.safetensors --input IN.npy --output OUT.npy

Tensors are NCHW with a batch axis throughout. Per-pixel ops of the channels-last MambaIR blocks (Linear,
LayerNorm) are applied over the channel axis of NCHW, which is the same computation in another layout.
"""
import argparse
import json
import math
import struct
import sys

import numpy as np

STAGES = ["encoder_level1", "encoder_level2", "encoder_level3", "latent",
          "decoder_level3", "decoder_level2", "decoder_level1", "refinement"]
STAGE_LEVEL = [0, 1, 2, 3, 2, 1, 0, 0]  # U-Net level (0 = full resolution) of each stage
STAGE_HEADS_INDEX = [0, 1, 2, 3, 2, 1, 0, 0]  # heads[i] used by T blocks of each stage
STAGE_BLOCKS_INDEX = [0, 1, 2, 3, 2, 1, 0, None]  # num_blocks[i]; refinement uses num_refinement_blocks

DEFAULTS = {
    "inp_channels": 3,
    "out_channels": 3,
    "dim": 48,
    "num_blocks": [4, 6, 6, 8],
    "num_refinement_blocks": 4,
    "heads": [1, 2, 4, 8],
    "ffn_expansion_factor": 2.66,
    "bias": False,
    "LayerNorm_type": "WithBias",
    "dual_pixel_task": False,
    "mlp_ratio": 2.0,
    "d_state": [4, 8, 16, 32, 16, 8, 8, 8],
}

LN_EPS = 1e-5
CAB_COMPRESS = 3
CA_SQUEEZE = 30
SCAN_DIRECTIONS = 4


# ----------------------------------------------------------------------------------------------------------------
# Model spec (section 5)

class SpecError(ValueError):
    pass


def load_spec(path):
    """Reads a YAML spec (network_g at top level or under `network_g:`) and resolves it (see resolve_spec)."""
    import yaml
    with open(path) as f:
        raw = yaml.safe_load(f)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: not a YAML mapping")
    if "network_g" in raw:
        raw = raw["network_g"]
        if not isinstance(raw, dict):
            raise SpecError(f"{path}: network_g is not a mapping")
    return resolve_spec(raw)


def resolve_spec(raw):
    """Returns a dict with every key of section 5 filled in, plus derived per-stage lists. Unknown keys ignored."""
    cfg = dict(DEFAULTS)
    for key in DEFAULTS:
        if key in raw and raw[key] is not None:
            cfg[key] = raw[key]
    if "type" not in raw:
        raise SpecError("spec has no `type`")
    cfg["type"] = str(raw["type"])
    for key in ("inp_channels", "out_channels", "dim", "num_refinement_blocks"):
        cfg[key] = int(cfg[key])
    cfg["num_blocks"] = [int(v) for v in cfg["num_blocks"]]
    cfg["heads"] = [int(v) for v in cfg["heads"]]
    if isinstance(cfg["d_state"], int):
        cfg["d_state"] = [cfg["d_state"]] * 8
    cfg["d_state"] = [int(v) for v in cfg["d_state"]]
    cfg["bias"] = bool(cfg["bias"])
    cfg["dual_pixel_task"] = bool(cfg["dual_pixel_task"])
    cfg["ffn_expansion_factor"] = float(cfg["ffn_expansion_factor"])
    cfg["mlp_ratio"] = float(cfg["mlp_ratio"])
    if len(cfg["num_blocks"]) != 4 or len(cfg["heads"]) != 4 or len(cfg["d_state"]) != 8:
        raise SpecError("num_blocks and heads need 4 entries, d_state 8")
    if cfg["LayerNorm_type"] not in ("WithBias", "BiasFree"):
        raise SpecError(f"LayerNorm_type must be WithBias or BiasFree, not {cfg['LayerNorm_type']!r}")

    dim = cfg["dim"]
    cfg["stage_channels"] = [dim * 2 ** lvl for lvl in STAGE_LEVEL[:6]] + [2 * dim, 2 * dim]
    cfg["stage_heads"] = [cfg["heads"][i] for i in STAGE_HEADS_INDEX]
    cfg["stage_blocks"] = [cfg["num_blocks"][i] if i is not None else cfg["num_refinement_blocks"]
                           for i in STAGE_BLOCKS_INDEX]
    cfg["layout"] = resolve_layout(cfg["type"], raw.get("layout"), cfg["stage_blocks"])

    for s, kinds in enumerate(cfg["layout"]):
        C = cfg["stage_channels"][s]
        if "S" in kinds and C // CA_SQUEEZE < 1:
            raise SpecError(f"{STAGES[s]}: an S block needs at least {CA_SQUEEZE} channels, the stage has {C}")
        if "T" in kinds and C % cfg["stage_heads"][s] != 0:
            raise SpecError(f"{STAGES[s]}: {C} channels do not split into {cfg['stage_heads'][s]} heads")
    if not cfg["dual_pixel_task"] and cfg["inp_channels"] != cfg["out_channels"]:
        raise SpecError("the global residual needs inp_channels == out_channels (unless dual_pixel_task)")
    return cfg


def resolve_layout(model_type, layout, counts):
    """Per stage, the list of block kinds ('T' or 'S')."""
    if model_type == "Restormer":
        return [["T"] * n for n in counts]
    if model_type == "MambaIRUNet":
        return [["S"] * n for n in counts]
    if model_type != "HybridUNet":
        raise SpecError(f"unknown type {model_type!r} (Restormer, MambaIRUNet or HybridUNet)")
    if layout is None:
        raise SpecError("HybridUNet needs a `layout`")
    groups = [g.strip() for g in str(layout).split("/")]
    if len(groups) != 8:
        raise SpecError(f"layout needs 8 groups separated by '/', got {len(groups)}")
    result = []
    for s, (group, n) in enumerate(zip(groups, counts)):
        if not group or any(ch not in "TS" for ch in group):
            raise SpecError(f"layout group {s} ({STAGES[s]}) {group!r}: only the letters T and S")
        if len(group) == 1:
            group = group * n
        if len(group) != n:
            raise SpecError(f"layout group {s} ({STAGES[s]}) has {len(group)} blocks, the stage has {n}")
        result.append(list(group))
    return result


# ----------------------------------------------------------------------------------------------------------------
# Parameter names and shapes

def t_block_shapes(prefix, C, heads, hidden, bias, ln_type):
    """Restormer TransformerBlock (section 1.4)."""
    shapes = {}
    for norm in ("norm1", "norm2"):
        shapes[f"{prefix}{norm}.body.weight"] = (C,)
        if ln_type == "WithBias":
            shapes[f"{prefix}{norm}.body.bias"] = (C,)
    convs = [("attn.qkv", (3 * C, C, 1, 1)), ("attn.qkv_dwconv", (3 * C, 1, 3, 3)),
             ("attn.project_out", (C, C, 1, 1)), ("ffn.project_in", (2 * hidden, C, 1, 1)),
             ("ffn.dwconv", (2 * hidden, 1, 3, 3)), ("ffn.project_out", (C, hidden, 1, 1))]
    shapes[f"{prefix}attn.temperature"] = (heads, 1, 1)
    for name, shape in convs:
        shapes[f"{prefix}{name}.weight"] = shape
        if bias:
            shapes[f"{prefix}{name}.bias"] = (shape[0],)
    return shapes


def s_block_shapes(prefix, C, E, N):
    """MambaIR VSSBlock (section 2.3) with SS2D (2.1) and CAB (2.2)."""
    R = math.ceil(C / 16)
    K = SCAN_DIRECTIONS
    sa = prefix + "self_attention."
    Cc = C // CAB_COMPRESS
    Cs = C // CA_SQUEEZE
    return {
        f"{prefix}ln_1.weight": (C,),
        f"{prefix}ln_1.bias": (C,),
        f"{sa}in_proj.weight": (2 * E, C),
        f"{sa}conv2d.weight": (E, 1, 3, 3),
        f"{sa}conv2d.bias": (E,),
        f"{sa}x_proj_weight": (K, R + 2 * N, E),
        f"{sa}dt_projs_weight": (K, E, R),
        f"{sa}dt_projs_bias": (K, E),
        f"{sa}A_logs": (K * E, N),
        f"{sa}Ds": (K * E,),
        f"{sa}out_norm.weight": (E,),
        f"{sa}out_norm.bias": (E,),
        f"{sa}out_proj.weight": (C, E),
        f"{prefix}skip_scale": (C,),
        f"{prefix}conv_blk.cab.0.weight": (Cc, C, 3, 3),
        f"{prefix}conv_blk.cab.0.bias": (Cc,),
        f"{prefix}conv_blk.cab.2.weight": (C, Cc, 3, 3),
        f"{prefix}conv_blk.cab.2.bias": (C,),
        f"{prefix}conv_blk.cab.3.attention.1.weight": (Cs, C, 1, 1),
        f"{prefix}conv_blk.cab.3.attention.1.bias": (Cs,),
        f"{prefix}conv_blk.cab.3.attention.3.weight": (C, Cs, 1, 1),
        f"{prefix}conv_blk.cab.3.attention.3.bias": (C,),
        f"{prefix}ln_2.weight": (C,),
        f"{prefix}ln_2.bias": (C,),
        f"{prefix}skip_scale2": (C,),
    }


def param_shapes(cfg):
    """Every parameter key of the model with its shape, in module order."""
    dim, bias = cfg["dim"], cfg["bias"]
    shapes = {"patch_embed.proj.weight": (dim, cfg["inp_channels"], 3, 3)}

    def stage(s):
        C = cfg["stage_channels"][s]
        for i, kind in enumerate(cfg["layout"][s]):
            prefix = f"{STAGES[s]}.{i}."
            if kind == "T":
                hidden = int(C * cfg["ffn_expansion_factor"])
                shapes.update(t_block_shapes(prefix, C, cfg["stage_heads"][s], hidden, bias,
                                             cfg["LayerNorm_type"]))
            else:
                E = int(cfg["mlp_ratio"] * C)
                shapes.update(s_block_shapes(prefix, C, E, cfg["d_state"][s]))

    def conv(name, cout, cin, k, with_bias):
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        if with_bias:
            shapes[f"{name}.bias"] = (cout,)

    stage(0)
    conv("down1_2.body.0", dim // 2, dim, 3, False)
    stage(1)
    conv("down2_3.body.0", dim, 2 * dim, 3, False)
    stage(2)
    conv("down3_4.body.0", 2 * dim, 4 * dim, 3, False)
    stage(3)
    conv("up4_3.body.0", 16 * dim, 8 * dim, 3, False)
    conv("reduce_chan_level3", 4 * dim, 8 * dim, 1, bias)
    stage(4)
    conv("up3_2.body.0", 8 * dim, 4 * dim, 3, False)
    conv("reduce_chan_level2", 2 * dim, 4 * dim, 1, bias)
    stage(5)
    conv("up2_1.body.0", 4 * dim, 2 * dim, 3, False)
    stage(6)
    stage(7)
    if cfg["dual_pixel_task"]:
        conv("skip_conv", 2 * dim, dim, 1, bias)
    conv("output", cfg["out_channels"], 2 * dim, 3, bias)
    return shapes


# ----------------------------------------------------------------------------------------------------------------
# safetensors (read and write by hand)

_ST_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "F64": np.dtype("<f8")}


def read_safetensors(path):
    """Returns {name: float64 array}. Supports F32, F16, BF16 (and F64)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for safetensors")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = info["dtype"], tuple(info["shape"])
        start, end = info["data_offsets"]
        raw = body[start:end]
        count = int(np.prod(shape)) if shape else 1
        if dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2", count=count).astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dtype in _ST_DTYPES:
            arr = np.frombuffer(raw, dtype=_ST_DTYPES[dtype], count=count)
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        tensors[name] = arr.astype(np.float64).reshape(shape)
    return tensors


def write_safetensors(path, tensors):
    """Writes {name: array} as float32 safetensors, keys sorted."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name], dtype="<f4", order="C")
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for raw in chunks:
            f.write(raw)


def check_weights(cfg, weights):
    """Raises if a key is missing or has the wrong shape; returns the list of unused keys."""
    shapes = param_shapes(cfg)
    problems = []
    for key, shape in shapes.items():
        if key not in weights:
            problems.append(f"missing {key} {shape}")
        elif tuple(weights[key].shape) != tuple(shape):
            problems.append(f"{key}: shape {tuple(weights[key].shape)}, expected {shape}")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"weights do not fit the spec:\n  {shown}{more}")
    return sorted(k for k in weights if k not in shapes)


# ----------------------------------------------------------------------------------------------------------------
# Elementwise functions

_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def erf(x):
    """Exact erf (math.erf per element)."""
    return _erf_scalar(np.asarray(x, dtype=np.float64)).astype(np.float64)


def gelu(x):
    """Exact GELU: x/2 (1 + erf(x/sqrt 2))."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def silu(x):
    return x * sigmoid(x)


def softplus(x):
    """PyTorch softplus (beta 1, threshold 20: identity above 20)."""
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------------------------------------------------
# Convolution, resampling, normalisation

def conv2d(x, w, b=None, groups=1):
    """Conv2d, stride 1, zero 'same' padding (odd square kernels). x (B,Cin,H,W), w (Cout,Cin/groups,k,k).

    Sum over the k*k kernel taps of a (grouped) matmul with the shifted padded input.
    """
    B, Cin, H, W = x.shape
    Cout, cin_g, k, k2 = w.shape
    assert k == k2 and k % 2 == 1, "odd square kernels only"
    assert Cin == cin_g * groups and Cout % groups == 0, (x.shape, w.shape, groups)
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
    cout_g = Cout // groups
    if cin_g == 1 and cout_g == 1:  # depthwise
        out = np.zeros((B, Cout, H, W))
        for ky in range(k):
            for kx in range(k):
                out += w[None, :, 0, ky, kx, None, None] * xp[:, :, ky:ky + H, kx:kx + W]
    else:
        wg = w.reshape(groups, cout_g, cin_g, k, k)
        out = np.zeros((B, groups, cout_g, H * W))
        for ky in range(k):
            for kx in range(k):
                tap = xp[:, :, ky:ky + H, kx:kx + W].reshape(B, groups, cin_g, H * W)
                out += np.matmul(wg[None, :, :, :, ky, kx], tap)
        out = out.reshape(B, Cout, H, W)
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def linear_channels(x, w, b=None):
    """A Linear / 1x1 conv over the channel axis of NCHW; w (Cout, Cin) or (Cout, Cin, 1, 1)."""
    B, C, H, W = x.shape
    w2 = w.reshape(w.shape[0], -1)
    out = np.matmul(w2[None], x.reshape(B, C, H * W)).reshape(B, w2.shape[0], H, W)
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def pixel_unshuffle(x, r=2):
    """Output channel c*r*r + i*r + j takes input pixel (c, r*y+i, r*x+j)."""
    B, C, H, W = x.shape
    t = x.reshape(B, C, H // r, r, W // r, r)  # b c y i x j
    return t.transpose(0, 1, 3, 5, 2, 4).reshape(B, C * r * r, H // r, W // r)


def pixel_shuffle(x, r=2):
    """Input channel c*r*r + i*r + j goes to output pixel (c, r*y+i, r*x+j)."""
    B, C, H, W = x.shape
    t = x.reshape(B, C // (r * r), r, r, H, W)  # b c i j y x
    return t.transpose(0, 1, 4, 2, 5, 3).reshape(B, C // (r * r), H * r, W * r)


def layer_norm_channels(x, weight, bias=None, eps=LN_EPS, bias_free=False):
    """Per-pixel LayerNorm over the channel axis. BiasFree: x / sqrt(var + eps) * weight (numerator uncentred)."""
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    num = x if bias_free else x - mean
    y = num / np.sqrt(var + eps) * weight[None, :, None, None]
    if bias is not None:
        y = y + bias[None, :, None, None]
    return y


# ----------------------------------------------------------------------------------------------------------------
# Parameter access

class Params:
    """Read-only view of the weights that records which keys were used."""

    def __init__(self, weights):
        self.weights = weights
        self.used = set()

    def __call__(self, key):
        self.used.add(key)
        return self.weights[key]

    def bias(self, key, present):
        """The bias tensor when the model has it (its `bias` flag), else None."""
        return self(key) if present else None


# ----------------------------------------------------------------------------------------------------------------
# Restormer T block (section 1)

def restormer_norm(x, p, prefix, cfg):
    bias_free = cfg["LayerNorm_type"] == "BiasFree"
    bias = None if bias_free else p(prefix + "body.bias")
    return layer_norm_channels(x, p(prefix + "body.weight"), bias, bias_free=bias_free)


def mdta(x, p, prefix, heads, bias):
    """Multi-Dconv-head Transposed Attention (1.2)."""
    B, C, H, W = x.shape
    t = linear_channels(x, p(prefix + "qkv.weight"), p.bias(prefix + "qkv.bias", bias))
    t = conv2d(t, p(prefix + "qkv_dwconv.weight"), p.bias(prefix + "qkv_dwconv.bias", bias), groups=3 * C)
    q, k, v = (t[:, i * C:(i + 1) * C].reshape(B, heads, C // heads, H * W) for i in range(3))
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    k = k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-12)
    temperature = p(prefix + "temperature").reshape(1, heads, 1, 1)
    attn = softmax(np.matmul(q, k.transpose(0, 1, 3, 2)) * temperature, axis=-1)
    o = np.matmul(attn, v).reshape(B, C, H, W)
    return linear_channels(o, p(prefix + "project_out.weight"), p.bias(prefix + "project_out.bias", bias))


def gdfn(x, p, prefix, bias):
    """Gated-Dconv Feed-forward Network (1.3)."""
    u = linear_channels(x, p(prefix + "project_in.weight"), p.bias(prefix + "project_in.bias", bias))
    u = conv2d(u, p(prefix + "dwconv.weight"), p.bias(prefix + "dwconv.bias", bias), groups=u.shape[1])
    hidden = u.shape[1] // 2
    g = gelu(u[:, :hidden]) * u[:, hidden:]
    return linear_channels(g, p(prefix + "project_out.weight"), p.bias(prefix + "project_out.bias", bias))


def transformer_block(x, p, prefix, heads, cfg):
    """1.4: x + attn(norm1 x), then + ffn(norm2 x)."""
    x = x + mdta(restormer_norm(x, p, prefix + "norm1.", cfg), p, prefix + "attn.", heads, cfg["bias"])
    x = x + gdfn(restormer_norm(x, p, prefix + "norm2.", cfg), p, prefix + "ffn.", cfg["bias"])
    return x


# ----------------------------------------------------------------------------------------------------------------
# Selective scan (section 3)

def _bc_at(M, l, Dch):
    """B or C at position l, broadcastable to (batch, D, N). M is (D,N), (b,N,L) or (b,G,N,L)."""
    if M.ndim == 2:
        return M[None]
    if M.ndim == 3:
        return M[:, None, :, l]
    G = M.shape[1]
    return np.repeat(M[:, :, :, l], Dch // G, axis=1)


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False):
    """Mamba-1 selective scan, real A, sequential over L (vectorised over batch, channel and state).

    u, delta (b, D, L); A (D, N); B, C (D, N) | (b, N, L) | (b, G, N, L); D (D,); z (b, D, L); delta_bias (D,).
    """
    b, Dch, L = u.shape
    N = A.shape[1]
    dt = delta if delta_bias is None else delta + delta_bias[None, :, None]
    if delta_softplus:
        dt = softplus(dt)
    h = np.zeros((b, Dch, N))
    y = np.empty((b, Dch, L))
    for l in range(L):
        dA = np.exp(dt[:, :, l, None] * A[None])  # (b, D, N)
        dBu = (dt[:, :, l] * u[:, :, l])[:, :, None] * _bc_at(B, l, Dch)
        h = dA * h + dBu
        y[:, :, l] = (h * _bc_at(C, l, Dch)).sum(axis=-1)
    out = y if D is None else y + u * D[None, :, None]
    if z is not None:
        out = out * silu(z)
    return (out, h) if return_last_state else out


# ----------------------------------------------------------------------------------------------------------------
# MambaIR S block (section 2)

def ss2d(x, p, prefix):
    """2D selective scan module (2.1). x (b, C, H, W) is ln_1's output; returns (b, C, H, W)."""
    b, C, H, W = x.shape
    L = H * W
    K = SCAN_DIRECTIONS
    xz = linear_channels(x, p(prefix + "in_proj.weight"))
    E = xz.shape[1] // 2
    xi, z = xz[:, :E], xz[:, E:]
    xi = silu(conv2d(xi, p(prefix + "conv2d.weight"), p(prefix + "conv2d.bias"), groups=E))

    row = xi.reshape(b, E, L)                            # index h*W + w
    col = xi.transpose(0, 1, 3, 2).reshape(b, E, L)      # index w*H + h
    xs = np.stack([row, col, row[:, :, ::-1], col[:, :, ::-1]], axis=1)  # (b, K, E, L)

    x_proj = p(prefix + "x_proj_weight")                 # (K, R+2N, E)
    dt_proj = p(prefix + "dt_projs_weight")              # (K, E, R)
    A_logs = p(prefix + "A_logs")                        # (K*E, N)
    R, N = dt_proj.shape[2], A_logs.shape[1]
    x_dbl = np.matmul(x_proj[None], xs)                  # (b, K, R+2N, L)
    dt_raw, Bs, Cs = x_dbl[:, :, :R], x_dbl[:, :, R:R + N], x_dbl[:, :, R + N:R + 2 * N]
    dts = np.matmul(dt_proj[None], dt_raw)               # (b, K, E, L)

    ys = selective_scan(xs.reshape(b, K * E, L), dts.reshape(b, K * E, L), -np.exp(A_logs), Bs, Cs,
                        D=p(prefix + "Ds"), delta_bias=p(prefix + "dt_projs_bias").reshape(-1),
                        delta_softplus=True).reshape(b, K, E, L)

    def col_to_row(v):  # (b, E, L) in column-major order -> row-major
        return v.reshape(b, E, W, H).transpose(0, 1, 3, 2).reshape(b, E, L)

    y = ys[:, 0] + ys[:, 2, :, ::-1] + col_to_row(ys[:, 1]) + col_to_row(ys[:, 3, :, ::-1])
    y = y.reshape(b, E, H, W)
    y = layer_norm_channels(y, p(prefix + "out_norm.weight"), p(prefix + "out_norm.bias")) * silu(z)
    return linear_channels(y, p(prefix + "out_proj.weight"))


def channel_attention(x, p, prefix):
    """2.2: x * sigmoid(conv(relu(conv(avgpool x))))."""
    s = x.mean(axis=(2, 3), keepdims=True)
    s = np.maximum(linear_channels(s, p(prefix + "1.weight"), p(prefix + "1.bias")), 0.0)
    s = sigmoid(linear_channels(s, p(prefix + "3.weight"), p(prefix + "3.bias")))
    return x * s


def cab(x, p, prefix):
    """Channel attention block (2.2): conv3x3, GELU, conv3x3, channel attention."""
    t = gelu(conv2d(x, p(prefix + "cab.0.weight"), p(prefix + "cab.0.bias")))
    t = conv2d(t, p(prefix + "cab.2.weight"), p(prefix + "cab.2.bias"))
    return channel_attention(t, p, prefix + "cab.3.attention.")


def vss_block(x, p, prefix):
    """2.3: t = x*skip_scale + SS2D(ln_1 x); t = t*skip_scale2 + CAB(ln_2 t)."""
    def scale(v, key):
        return v * p(prefix + key)[None, :, None, None]

    ln1 = layer_norm_channels(x, p(prefix + "ln_1.weight"), p(prefix + "ln_1.bias"))
    t = scale(x, "skip_scale") + ss2d(ln1, p, prefix + "self_attention.")
    ln2 = layer_norm_channels(t, p(prefix + "ln_2.weight"), p(prefix + "ln_2.bias"))
    return scale(t, "skip_scale2") + cab(ln2, p, prefix + "conv_blk.")


# ----------------------------------------------------------------------------------------------------------------
# U-Net (section 1.6)

def run_stage(x, p, cfg, s):
    for i, kind in enumerate(cfg["layout"][s]):
        prefix = f"{STAGES[s]}.{i}."
        if kind == "T":
            x = transformer_block(x, p, prefix, cfg["stage_heads"][s], cfg)
        else:
            x = vss_block(x, p, prefix)
    return x


def downsample(x, p, name):
    return pixel_unshuffle(conv2d(x, p(name + ".body.0.weight")))


def upsample(x, p, name):
    return pixel_shuffle(conv2d(x, p(name + ".body.0.weight")))


def unet(img, p, cfg):
    """img (b, inp_channels, H, W), H and W multiples of 8."""
    def opt_bias(name):
        return p.bias(name + ".bias", cfg["bias"])

    inp1 = conv2d(img, p("patch_embed.proj.weight"))
    enc1 = run_stage(inp1, p, cfg, 0)
    enc2 = run_stage(downsample(enc1, p, "down1_2"), p, cfg, 1)
    enc3 = run_stage(downsample(enc2, p, "down2_3"), p, cfg, 2)
    lat = run_stage(downsample(enc3, p, "down3_4"), p, cfg, 3)

    d3 = np.concatenate([upsample(lat, p, "up4_3"), enc3], axis=1)
    d3 = linear_channels(d3, p("reduce_chan_level3.weight"), opt_bias("reduce_chan_level3"))
    d3 = run_stage(d3, p, cfg, 4)
    d2 = np.concatenate([upsample(d3, p, "up3_2"), enc2], axis=1)
    d2 = linear_channels(d2, p("reduce_chan_level2.weight"), opt_bias("reduce_chan_level2"))
    d2 = run_stage(d2, p, cfg, 5)
    d1 = np.concatenate([upsample(d2, p, "up2_1"), enc1], axis=1)
    d1 = run_stage(d1, p, cfg, 6)
    d1 = run_stage(d1, p, cfg, 7)

    if cfg["dual_pixel_task"]:
        d1 = d1 + linear_channels(inp1, p("skip_conv.weight"), opt_bias("skip_conv"))
        return conv2d(d1, p("output.weight"), opt_bias("output"))
    return conv2d(d1, p("output.weight"), opt_bias("output")) + img


def forward(cfg, weights, image, check=True):
    """Runs the model on image (C,H,W) or (b,C,H,W); returns float64 with the input's rank.

    H, W that are not multiples of 8 are reflect-padded on the bottom/right and the output is cropped back.
    """
    unused = check_weights(cfg, weights) if check else []
    if unused:
        print(f"reference: {len(unused)} unused weight(s), e.g. {unused[0]}", file=sys.stderr)
    x = np.asarray(image, dtype=np.float64)
    rank3 = x.ndim == 3
    if rank3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != cfg["inp_channels"]:
        raise ValueError(f"input shape {np.shape(image)}: expected (1,{cfg['inp_channels']},H,W) or "
                         f"({cfg['inp_channels']},H,W)")
    H, W = x.shape[2:]
    ph, pw = (-H) % 8, (-W) % 8
    if ph >= H or pw >= W:
        raise ValueError(f"image {H}x{W} too small to reflect-pad to a multiple of 8")
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    p = Params(weights)
    out = unet(x, p, cfg)[:, :, :H, :W]
    if check:
        missed = set(param_shapes(cfg)) - p.used
        assert not missed, f"internal: parameters never used: {sorted(missed)[:5]}"
    return out[0] if rank3 else out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    args = ap.parse_args(argv)
    cfg = load_spec(args.spec)
    weights = read_safetensors(args.weights)
    image = np.load(args.input)
    out = forward(cfg, weights, image)
    np.save(args.output, out.astype(np.float32))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (SpecError, ValueError, OSError) as e:
        print(f"reference.py: error: {e}", file=sys.stderr)
        sys.exit(1)
