"""The hybridc model family (Restormer / MambaIRUNet / HybridUNet) in PyTorch, from /work/shared/ARCHITECTURES.md.

Parameter names follow ARCHITECTURES.md exactly, so `state_dict()` saved as safetensors is what
`hybridc compile SPEC --weights W.safetensors` reads. Everything stays NCHW; the channels-last Linear and LayerNorm
of the MambaIR blocks are applied over the channel axis (the same computation in another layout), with the
parameters kept in their upstream shapes ((out, in) for Linear).

The selective scan (section 3) is the chunked form of section 3.1, written without any loop over positions or
chunks so that it exports to ONNX as a static graph:
  * within a chunk of T positions, the local state is hl_t = exp(S_t - S_m) * cumsum_s(exp(S_m - S_s) * v_s),
    with S the within-chunk cumsum of dt*A and S_m its value at the middle of the chunk (centring keeps both
    exponents within half a chunk of decay, so nothing overflows for the step sizes these weights give);
  * the chunk-boundary recurrence H_c = P_c * H_{c-1} + hl_last is an inclusive linear scan over the chunks,
    done as a Hillis-Steele doubling scan (log2(#chunks) steps, each a shifted multiply-add);
  * y_t = sum_n (hl_t + exp(S_t) * H_{c-1}) * C_t, plus u*D.
In eager mode the same code runs on channel groups so that the (channel, position, state) tensors stay small.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "CrossCheck"))
from reference import STAGES, load_spec, resolve_spec  # noqa: E402,F401  (spec parsing and defaults only)

LN_EPS = 1e-5
K_DIRS = 4

# Scan settings; the harness changes them for ONNX export.
SCAN = {"chunk": 16, "group_elems": 1 << 24, "split": True}


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of NCHW (per pixel). Keys: weight, bias (unless bias-free)."""

    def __init__(self, C, with_bias=True, bias_free_numerator=False):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))
        self.bias = nn.Parameter(torch.zeros(C)) if with_bias else None
        self.bias_free_numerator = bias_free_numerator

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        xc = x - mean
        var = (xc * xc).mean(1, keepdim=True)
        num = x if self.bias_free_numerator else xc
        y = num * torch.rsqrt(var + LN_EPS) * self.weight[None, :, None, None]
        if self.bias is not None:
            y = y + self.bias[None, :, None, None]
        return y


class RestormerNorm(nn.Module):
    """Restormer's LayerNorm wrapper (1.1): the parameters live under `body`."""

    def __init__(self, C, ln_type):
        super().__init__()
        bias_free = ln_type == "BiasFree"
        self.body = ChannelNorm(C, with_bias=not bias_free, bias_free_numerator=bias_free)

    def forward(self, x):
        return self.body(x)


class MDTA(nn.Module):
    """1.2 Multi-Dconv-head Transposed Attention."""

    def __init__(self, C, heads, bias):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(C, 3 * C, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * C, 3 * C, 3, padding=1, groups=3 * C, bias=bias)
        self.project_out = nn.Conv2d(C, C, 1, bias=bias)

    def forward(self, x):
        b, C, H, W = x.shape
        t = self.qkv_dwconv(self.qkv(x))
        q, k, v = t.chunk(3, dim=1)
        q = F.normalize(q.reshape(b, self.heads, C // self.heads, H * W), dim=-1)
        k = F.normalize(k.reshape(b, self.heads, C // self.heads, H * W), dim=-1)
        v = v.reshape(b, self.heads, C // self.heads, H * W)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.temperature, dim=-1)
        return self.project_out((attn @ v).reshape(b, C, H, W))


class GDFN(nn.Module):
    """1.3 Gated-Dconv Feed-forward."""

    def __init__(self, C, factor, bias):
        super().__init__()
        hidden = int(C * factor)
        self.project_in = nn.Conv2d(C, 2 * hidden, 1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, C, 1, bias=bias)

    def forward(self, x):
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    """1.4: x + attn(norm1 x); x + ffn(norm2 x)."""

    def __init__(self, C, heads, factor, bias, ln_type):
        super().__init__()
        self.norm1 = RestormerNorm(C, ln_type)
        self.attn = MDTA(C, heads, bias)
        self.norm2 = RestormerNorm(C, ln_type)
        self.ffn = GDFN(C, factor, bias)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


# ------------------------------------------------------------------------------------------------------------
# Selective scan (section 3.1, loop-free chunked form)

def _inclusive_linear_scan(P, h, dim):
    """H_i = P_i * H_{i-1} + h_i along `dim` (H_{-1} = 0), by doubling: log2(n) shifted multiply-adds."""
    n = h.shape[dim]
    step = 1
    while step < n:
        # shift by `step` along dim, filling with the identity (P = 1, h = 0)
        h_prev = torch.cat([torch.zeros_like(h.narrow(dim, 0, step)), h.narrow(dim, 0, n - step)], dim)
        P_prev = torch.cat([torch.ones_like(P.narrow(dim, 0, step)), P.narrow(dim, 0, n - step)], dim)
        h = h + P * h_prev
        P = P * P_prev
        step *= 2
    return h


def _scan_piece(u, dt, A, B, C):
    """u, dt (b, G, D, L); A (G, D, N); B, C (b, G, N, L) shared by the D channels of a group.

    Returns y (b, G, D, L) without the D term."""
    b, G, D, L = u.shape
    N = A.shape[-1]
    T = SCAN["chunk"]
    nc = L // T
    la = (dt[..., None] * A[None, :, :, None, :]).reshape(b, G, D, nc, T, N)        # log decays, <= 0
    v = ((dt * u)[..., None] * B.transpose(2, 3)[:, :, None]).reshape(b, G, D, nc, T, N)
    S = torch.cumsum(la, dim=4)
    Sm = S[:, :, :, :, T // 2 - 1:T // 2, :]
    hl = torch.exp(S - Sm) * torch.cumsum(torch.exp(Sm - S) * v, dim=4)           # local states
    P = torch.exp(S)                                                                  # decay from chunk start
    H = _inclusive_linear_scan(P[:, :, :, :, T - 1], hl[:, :, :, :, T - 1], dim=3)    # (b, G, D, nc, N)
    Hprev = torch.cat([torch.zeros_like(H[:, :, :, :1]), H[:, :, :, :-1]], dim=3)
    h = hl + P * Hprev[:, :, :, :, None, :]
    Ct = C.transpose(2, 3).reshape(b, G, 1, nc, T, N)
    return (h * Ct).sum(-1).reshape(b, G, D, L)


def selective_scan(u, dt, A, B, C, D):
    """u, dt (b, K, E, L) with dt already softplus'ed; A (K, E, N); B, C (b, K, N, L); D (K, E)."""
    b, K, E, L = u.shape
    N = A.shape[-1]
    T = SCAN["chunk"]
    pad = (-L) % T
    if pad:  # dt = 0, u = 0 on the tail: causal, earlier outputs unchanged
        u, dt = F.pad(u, (0, pad)), F.pad(dt, (0, pad))
        B, C = F.pad(B, (0, pad)), F.pad(C, (0, pad))
    Lp = L + pad
    if SCAN["split"]:  # eager: one direction and a group of channels at a time, to bound the temporaries
        group = max(1, min(E, SCAN["group_elems"] // (b * Lp * N)))
        ys = []
        for k in range(K):
            parts = [_scan_piece(u[:, k:k + 1, e:e + group], dt[:, k:k + 1, e:e + group], A[k:k + 1, e:e + group],
                                 B[:, k:k + 1], C[:, k:k + 1]) for e in range(0, E, group)]
            ys.append(torch.cat(parts, 2))
        y = torch.cat(ys, 1)
    else:  # export: all four directions in one set of ops
        y = _scan_piece(u, dt, A, B, C)
    y = y[..., :L] if pad else y
    return y + u[..., :L] * D[None, :, :, None]


class SS2D(nn.Module):
    """2.1 2D selective scan (self_attention)."""

    def __init__(self, C, E, N):
        super().__init__()
        R = math.ceil(C / 16)
        self.E, self.N, self.R = E, N, R
        self.in_proj = nn.Linear(C, 2 * E, bias=False)
        self.conv2d = nn.Conv2d(E, E, 3, padding=1, groups=E, bias=True)
        self.x_proj_weight = nn.Parameter(torch.zeros(K_DIRS, R + 2 * N, E))
        self.dt_projs_weight = nn.Parameter(torch.zeros(K_DIRS, E, R))
        self.dt_projs_bias = nn.Parameter(torch.zeros(K_DIRS, E))
        self.A_logs = nn.Parameter(torch.zeros(K_DIRS * E, N))
        self.Ds = nn.Parameter(torch.ones(K_DIRS * E))
        self.out_norm = nn.LayerNorm(E)
        self.out_proj = nn.Linear(E, C, bias=False)

    def forward(self, x):
        b, C, H, W = x.shape
        E, N, R, L = self.E, self.N, self.R, H * W
        xz = F.conv2d(x, self.in_proj.weight[:, :, None, None])
        xi, z = xz[:, :E], xz[:, E:]
        xi = F.silu(self.conv2d(xi))
        row = xi.reshape(b, E, L)
        col = xi.transpose(2, 3).reshape(b, E, L)
        xs = torch.stack([row, col, row.flip(-1), col.flip(-1)], 1)                 # (b, K, E, L)
        x_dbl = torch.matmul(self.x_proj_weight[None], xs)                           # (b, K, R+2N, L)
        dt_raw, Bs, Cs = x_dbl[:, :, :R], x_dbl[:, :, R:R + N], x_dbl[:, :, R + N:]
        dt = torch.matmul(self.dt_projs_weight[None], dt_raw)                         # (b, K, E, L)
        dt = F.softplus(dt + self.dt_projs_bias[None, :, :, None])
        A = -torch.exp(self.A_logs).reshape(K_DIRS, E, N)
        ys = selective_scan(xs, dt, A, Bs, Cs, self.Ds.reshape(K_DIRS, E))          # (b, K, E, L)

        def col_to_row(t):
            return t.reshape(b, E, W, H).transpose(2, 3).reshape(b, E, L)

        y = ys[:, 0] + ys[:, 2].flip(-1) + col_to_row(ys[:, 1]) + col_to_row(ys[:, 3].flip(-1))
        y = y.reshape(b, E, H, W)
        mean = y.mean(1, keepdim=True)
        yc = y - mean
        y = yc * torch.rsqrt((yc * yc).mean(1, keepdim=True) + LN_EPS)
        y = y * self.out_norm.weight[None, :, None, None] + self.out_norm.bias[None, :, None, None]
        y = y * F.silu(z)
        return F.conv2d(y, self.out_proj.weight[:, :, None, None])


class ChannelAttention(nn.Module):
    def __init__(self, C, squeeze=30):
        super().__init__()
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(C, C // squeeze, 1), nn.ReLU(),
                                       nn.Conv2d(C // squeeze, C, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.attention(x)


class CAB(nn.Module):
    def __init__(self, C, compress=3):
        super().__init__()
        self.cab = nn.Sequential(nn.Conv2d(C, C // compress, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(C // compress, C, 3, padding=1), ChannelAttention(C))

    def forward(self, x):
        return self.cab(x)


class VSSBlock(nn.Module):
    """2.3: t = x*skip_scale + SS2D(ln_1 x); t = t*skip_scale2 + CAB(ln_2 t)."""

    def __init__(self, C, E, N):
        super().__init__()
        self.ln_1 = ChannelNorm(C)
        self.self_attention = SS2D(C, E, N)
        self.skip_scale = nn.Parameter(torch.ones(C))
        self.conv_blk = CAB(C)
        self.ln_2 = ChannelNorm(C)
        self.skip_scale2 = nn.Parameter(torch.ones(C))

    def forward(self, x):
        t = x * self.skip_scale[None, :, None, None] + self.self_attention(self.ln_1(x))
        return t * self.skip_scale2[None, :, None, None] + self.conv_blk(self.ln_2(t))


def make_block(cfg, s, kind):
    C = cfg["stage_channels"][s]
    if kind == "T":
        return TransformerBlock(C, cfg["stage_heads"][s], cfg["ffn_expansion_factor"], cfg["bias"],
                                cfg["LayerNorm_type"])
    return VSSBlock(C, int(cfg["mlp_ratio"] * C), cfg["d_state"][s])


class Resample(nn.Module):
    def __init__(self, cin, cout, shuffle):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                  nn.PixelShuffle(2) if shuffle else nn.PixelUnshuffle(2))

    def forward(self, x):
        return self.body(x)


class PatchEmbed(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, 3, padding=1, bias=False)

    def forward(self, x):
        return self.proj(x)


class UNet(nn.Module):
    """1.6 / 2.5: the Restormer U-Net with T or S blocks per position."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        dim, bias = cfg["dim"], cfg["bias"]
        self.patch_embed = PatchEmbed(cfg["inp_channels"], dim)
        for s, name in enumerate(STAGES):
            setattr(self, name, nn.Sequential(*[make_block(cfg, s, kind) for kind in cfg["layout"][s]]))
        self.down1_2 = Resample(dim, dim // 2, False)
        self.down2_3 = Resample(2 * dim, dim, False)
        self.down3_4 = Resample(4 * dim, 2 * dim, False)
        self.up4_3 = Resample(8 * dim, 16 * dim, True)
        self.reduce_chan_level3 = nn.Conv2d(8 * dim, 4 * dim, 1, bias=bias)
        self.up3_2 = Resample(4 * dim, 8 * dim, True)
        self.reduce_chan_level2 = nn.Conv2d(4 * dim, 2 * dim, 1, bias=bias)
        self.up2_1 = Resample(2 * dim, 4 * dim, True)
        if cfg["dual_pixel_task"]:
            self.skip_conv = nn.Conv2d(dim, 2 * dim, 1, bias=bias)
        self.output = nn.Conv2d(2 * dim, cfg["out_channels"], 3, padding=1, bias=bias)

    def forward(self, img):
        inp1 = self.patch_embed(img)
        enc1 = self.encoder_level1(inp1)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        lat = self.latent(self.down3_4(enc3))
        d3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(lat), enc3], 1)))
        d2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(d3), enc2], 1)))
        d1 = self.decoder_level1(torch.cat([self.up2_1(d2), enc1], 1))
        d1 = self.refinement(d1)
        if self.cfg["dual_pixel_task"]:
            return self.output(d1 + self.skip_conv(inp1))
        return self.output(d1) + img


class SingleBlock(nn.Module):
    """One block at a stage (per-block mode); its keys are those of `STAGE.0.` in the whole model."""

    def __init__(self, cfg, s, kind):
        super().__init__()
        self.block = make_block(cfg, s, kind)

    def forward(self, x):
        return self.block(x)


# ------------------------------------------------------------------------------------------------------------
# Seeded weights at sensible scales (PyTorch-like fan-in bounds, the SS2D inits of section 2.1)

def init_weights(model, seed):
    g = torch.Generator().manual_seed(seed)

    def uniform(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    def normal(shape):
        return torch.randn(shape, generator=g)

    with torch.no_grad():
        for key, p in model.state_dict().items():
            name = key.rsplit(".", 1)[-1]
            shape = p.shape
            is_norm = any(t in key for t in (".norm1.", ".norm2.", ".ln_1.", ".ln_2.", ".out_norm."))
            if name == "temperature":
                val = uniform(shape, 0.5, 1.5)
            elif is_norm:
                val = (1.0 if name == "weight" else 0.0) + 0.1 * normal(shape)
            elif name == "A_logs":
                n = shape[1]
                val = torch.log(torch.arange(1, n + 1, dtype=torch.float32))[None] + 0.05 * normal(shape)
            elif name == "Ds" or name.startswith("skip_scale"):
                val = 1.0 + 0.1 * normal(shape)
            elif name == "dt_projs_bias":
                dt = torch.exp(uniform(shape, math.log(1e-3), math.log(0.1))).clamp(min=1e-4)
                val = dt + torch.log(-torch.expm1(-dt))
            elif name in ("dt_projs_weight", "x_proj_weight"):
                bound = shape[2] ** -0.5
                val = uniform(shape, -bound, bound)
            elif name == "weight":
                bound = 1.0 / math.sqrt(max(1, int(torch.tensor(shape[1:]).prod())))
                val = uniform(shape, -bound, bound)
            elif name == "bias":
                val = uniform(shape, -0.1, 0.1)
            else:
                raise KeyError(f"no init rule for {key}")
            p.copy_(val.reshape(shape))
    return model
