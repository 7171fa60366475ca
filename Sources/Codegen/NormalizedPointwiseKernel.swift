/// The C of projections that carry a folded channel LayerNorm (`fold-layer-norm`, HybridIR's FoldedNorm): a
/// per-pixel statistics helper (two passes: the mean, then the variance around it) and a register-tiled 1x1 GEMM
/// whose prologue normalises what it loads (with_bias) or whose epilogue scales its sums by 1/σ (bias_free).
/// Used by `fused_attention`'s gram phase (its qkv rows); `conv2d` with a `norm` and `fused_feed_forward`'s
/// project_in take only the statistics helper (`gemm: false`) and run the GEMM micro-kernel (MicroKernel.swift).
import HybridIR

extension KernelEmitter {
    /// Pixels per item of the normalised GEMMs: the statistics live on the stack for one tile, and a tile of 128
    /// pixels of 48 channels (24 KiB) stays in L1 while every group of 4 output channels reads it.
    public static let normalizedPixelTile = 128

    /// `<prefix>_stats` and `<prefix>_gemm`, static C functions printed before the kernel that calls them.
    static func normalizedPointwiseHelpers(_ prefix: String, _ norm: FoldedNorm, gemm: Bool = true) -> String {
        // with_bias: the GEMM reads x̂ = (x − μ)·r; bias_free: it reads x and its sums are scaled by r.
        let load = norm.centered ? "hc_vmul(hc_vsub(hc_vld(xr), mv0), rv0), v1 = hc_vmul(hc_vsub(hc_vld(xr + HC_VLEN), mv1), rv1)"
                                 : "hc_vld(xr), v1 = hc_vld(xr + HC_VLEN)"
        let scalarLoad = norm.centered ? "(x[q * xs + p] - mean[p]) * rstd[p]" : "x[q * xs + p]"
        func store(_ acc: String, _ row: Int, _ half: Int) -> String {
            norm.centered ? acc : "hc_vfma(\(acc), rv\(half), hc_vset1(c\(row)))"
        }
        func scalarStore(_ s: String, _ row: Int) -> String { norm.centered ? s : "\(s) * rstd[p] + c\(row)" }
        let initial = { (row: Int) in norm.centered ? "c\(row)" : "0.0f" }
        let gemmText = """
        /* \(prefix)_gemm: y[m*ys + p] = \(norm.centered ? "bias[m] + sum_k w[m*K + k] * (x[k*xs + p] - mean[p]) * rstd[p]"
                                                        : "rstd[p] * sum_k w[m*K + k] * x[k*xs + p] + bias[m]") for p < np
           (bias may be NULL): a 1x1 projection with a folded \(norm.form) layer norm, 4 rows x 2 vectors per register tile. */
        HC_NOINLINE static void \(prefix)_gemm(float *restrict y, long ys, const float *restrict x, long xs, long np,
                                               const float *restrict w, const float *restrict bias, long M, long K,
                                               const float *restrict mean, const float *restrict rstd) {
            (void)mean;
            long m = 0;
            for (; m + 4 <= M; m += 4) {
                const float *w0 = w + m * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
                const float c0 = bias ? bias[m] : 0.0f, c1 = bias ? bias[m + 1] : 0.0f;
                const float c2 = bias ? bias[m + 2] : 0.0f, c3 = bias ? bias[m + 3] : 0.0f;
                float *y0 = y + m * ys, *y1 = y0 + ys, *y2 = y1 + ys, *y3 = y2 + ys;
                long p = 0;
                for (; p + 2 * HC_VLEN <= np; p += 2 * HC_VLEN) {
                    const hc_vf rv0 = hc_vld(rstd + p), rv1 = hc_vld(rstd + p + HC_VLEN);
                    \(norm.centered ? "const hc_vf mv0 = hc_vld(mean + p), mv1 = hc_vld(mean + p + HC_VLEN);" : "(void)rv0; (void)rv1;")
                    hc_vf a00 = hc_vset1(\(initial(0))), a01 = a00, a10 = hc_vset1(\(initial(1))), a11 = a10;
                    hc_vf a20 = hc_vset1(\(initial(2))), a21 = a20, a30 = hc_vset1(\(initial(3))), a31 = a30;
                    for (long q = 0; q < K; q++) {
                        const float *xr = x + q * xs + p;
                        const hc_vf v0 = \(load);
                        hc_vf wv = hc_vset1(w0[q]);
                        a00 = hc_vfma(wv, v0, a00); a01 = hc_vfma(wv, v1, a01);
                        wv = hc_vset1(w1[q]);
                        a10 = hc_vfma(wv, v0, a10); a11 = hc_vfma(wv, v1, a11);
                        wv = hc_vset1(w2[q]);
                        a20 = hc_vfma(wv, v0, a20); a21 = hc_vfma(wv, v1, a21);
                        wv = hc_vset1(w3[q]);
                        a30 = hc_vfma(wv, v0, a30); a31 = hc_vfma(wv, v1, a31);
                    }
                    hc_vst(y0 + p, \(store("a00", 0, 0))); hc_vst(y0 + p + HC_VLEN, \(store("a01", 0, 1)));
                    hc_vst(y1 + p, \(store("a10", 1, 0))); hc_vst(y1 + p + HC_VLEN, \(store("a11", 1, 1)));
                    hc_vst(y2 + p, \(store("a20", 2, 0))); hc_vst(y2 + p + HC_VLEN, \(store("a21", 2, 1)));
                    hc_vst(y3 + p, \(store("a30", 3, 0))); hc_vst(y3 + p + HC_VLEN, \(store("a31", 3, 1)));
                }
                for (; p < np; p++) {
                    float s0 = \(initial(0)), s1 = \(initial(1)), s2 = \(initial(2)), s3 = \(initial(3));
                    for (long q = 0; q < K; q++) {
                        const float v = \(scalarLoad);
                        s0 += w0[q] * v; s1 += w1[q] * v; s2 += w2[q] * v; s3 += w3[q] * v;
                    }
                    y0[p] = \(scalarStore("s0", 0)); y1[p] = \(scalarStore("s1", 1));
                    y2[p] = \(scalarStore("s2", 2)); y3[p] = \(scalarStore("s3", 3));
                }
            }
            /* The last M % 4 rows. */
            const float *w0 = w + m * K;
            float *y0 = y + m * ys;
            for (; m < M; m++, w0 += K, y0 += ys) {
                const float c0 = bias ? bias[m] : 0.0f;
                for (long p = 0; p < np; p++) {
                    float s0 = \(initial(0));
                    for (long q = 0; q < K; q++) {
                        const float v = \(scalarLoad);
                        s0 += w0[q] * v;
                    }
                    y0[p] = \(scalarStore("s0", 0));
                }
            }
        }


        """
        return """
        /* \(prefix)_stats: for np pixels of K channels (channel stride xs), mean[p] and rstd[p] = 1/sqrt(var + eps),
           the variance taken around the mean in a second pass, so that a large common offset does not cancel. */
        HC_NOINLINE static void \(prefix)_stats(float *restrict mean, float *restrict rstd, const float *restrict x,
                                                long xs, long np, long K, float eps) {
            for (long p = 0; p < np; p++) { mean[p] = 0.0f; rstd[p] = 0.0f; }
            for (long q = 0; q < K; q++) {
                const float *xr = x + q * xs;
                for (long p = 0; p < np; p++) mean[p] += xr[p];
            }
            const float inv = 1.0f / (float)K;
            for (long p = 0; p < np; p++) mean[p] *= inv;
            for (long q = 0; q < K; q++) {
                const float *xr = x + q * xs;
                for (long p = 0; p < np; p++) { const float d = xr[p] - mean[p]; rstd[p] += d * d; }
            }
            for (long p = 0; p < np; p++) rstd[p] = 1.0f / sqrtf(rstd[p] * inv + eps);
        }

        \(gemm ? gemmText : "")
        """
    }

    /// A `conv2d` with a folded norm: items of (image, tile of pixels); each computes its pixels' statistics once
    /// and then every output channel of the tile, so no normalised tensor is ever written.
    static func normalizedConv2d(_ k: Kernel, _ norm: FoldedNorm) -> String {
        let bias = k.operands.count == 3 ? "x2" : "NULL"
        return """
            const long N = x0_d0, CI = x0_d1, CO = y_d1, P = y_d2 * y_d3, TP = \(normalizedPixelTile);
            const long np = (P + TP - 1) / TP;
            long b, e;
            hc_split(N * np, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long n = item / np, p0 = (item % np) * TP, m = p0 + TP < P ? TP : P - p0;
                float mean[\(normalizedPixelTile)], rstd[\(normalizedPixelTile)];
                \(k.name)_stats(mean, rstd, x0 + n * CI * P + p0, P, m, CI, \(cFloat(norm.eps)));
                \(k.name)_gemm(y + n * CO * P + p0, P, x0 + n * CI * P + p0, P, m, x1, \(bias), CO, CI, mean, rstd);\(activationRows(k, "(y + n * CO * P + p0)", rows: "0", to: "CO", stride: "P", from: "0", until: "m", indent: "        "))
            }

        """
    }
}
