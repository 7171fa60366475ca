/// The C kernels of `fused_attention` (Restormer MDTA): four kernels run in sequence by model_run, sharing one
/// workspace scratch block, because a kernel has no barrier inside it.
///
///  1. `qkv`:  T = W_qkv·x + b (3C×P) on the GEMM micro-kernel (MicroKernel.swift, prepacked weights); with a layer
///     norm folded into qkv (`norm`), items of pixel panels that compute their pixels' statistics once for all 3C rows.
///  2. `gram`: per fixed tile of rows (independent of the thread count), the depthwise 3x3 of q and k computed from T
///     in chunks of columns, the tile's partial Gram q·kᵀ per head and the squared norms of q and k (fp64), and the
///     depthwise v for the tile's rows into V (C×P).
///  3. `mix`:  per head, the partials reduced in tile order (deterministic for any thread count), divided by
///     outer(max(‖q‖, eps), max(‖k‖, eps)), times temperature, softmax over keys, and the head's columns of
///     M = W_out·blockdiag(attn) (C×C).
///  4. `out`:  y = M·V + b_out (+ residual), the micro-kernel's GEMM over pixel panels (M packed per K block).
///
/// Scratch layout (P = H·W at run time; sized at the compiled maximum): T (3C·P floats), V (C·P floats), the Gram
/// partials (tiles × (C·D + 2C) doubles), the reduced attention (C·D doubles), M (C·C floats).
import HybridIR

extension KernelEmitter {
    public static let fusedAttentionPhases: [String?] = ["qkv", "gram", "mix", "out"]
    public static let fusedAttentionRowsPerTile = FusedAttentionTiles.rowsPerTile
    public static let fusedAttentionColumnsPerChunk = FusedAttentionTiles.columnsPerChunk

    /// Floats of scratch one `fused_attention` needs for input shape `x` = (1, C, H, W).
    public static func fusedAttentionScratchFloats(x: [Int], heads: Int) -> Int {
        ScratchNeeds.of(Operation(kind: .fusedAttention, operands: [], attributes: ["heads": .int(heads)], result: 0),
                        operandShapes: [x], resultShape: x, schedule: Schedule(parallelOver: "", loopOrder: [], vectorWidth: 1)).shared
    }

    static func fusedAttention(_ k: Kernel) throws -> String {
        let a = k.op.attributes
        let roles = try ShapeRules.fusedAttentionRoles(a)
        func x(_ role: String) -> String { "x\(roles.firstIndex(of: role)!)" }
        func bias(_ role: String, _ index: String) -> String { roles.contains(role) ? "\(x(role))[\(index)]" : "0.0f" }
        let c = k.operands[0].shape[1].coefficient
        let heads = try a.int("heads"), eps = try a.float("eps")
        let d = c / heads
        let rows = fusedAttentionRowsPerTile, cols = fusedAttentionColumnsPerChunk
        // Every phase names the scratch regions the same way; each casts away what it does not use.
        let prelude = """
                const long C = \(c), HEADS = \(heads), D = \(d), H = x0_d2, W = x0_d3, P = H * W;
                const long TR = \(rows), NTILES = (H + TR - 1) / TR, GSTRIDE = C * D + 2 * C;
                float *T = s, *V = s + 3 * C * P;
                double *G = (double *)(s + 4 * C * P), *A = G + NTILES * GSTRIDE;
                float *M = (float *)(A + C * D);
                (void)HEADS; (void)D; (void)NTILES; (void)GSTRIDE; (void)T; (void)V; (void)G; (void)A; (void)M;

            """
        switch k.phase {
        case "qkv":
            // The micro-kernel's GEMM (MicroKernel.swift) over pixel panels; with a folded layer norm, each item
            // computes its pixels' statistics once for all 3C rows.
            let qkvBias = roles.contains("qkv.bias") ? x("qkv.bias") : "NULL"
            let t = gemmTiles(k)
            if let norm = try FoldedNorm.of(a) {
                return prelude + gemmItems(t, images: "1", pixels: "P", rows: "3 * C", stats: """

                        float mean[\(t.nc)], rstd[\(t.nc)];
                        \(k.name)_stats(mean, rstd, x0 + p0, P, pn, C, \(cFloat(norm.eps)));
                """, call: "\(k.name)_gemm(T + p0, P, x0 + p0, P, pn, \(x("qkv.weight")), \(qkvBias), 3 * C, C, mb0, mb1, pack, mean, rstd)")
            }
            return prelude + gemmItems(t, images: "1", pixels: "P", rows: "3 * C",
                                       call: "\(k.name)_gemm(T + p0, P, x0 + p0, P, pn, \(x("qkv.weight")), \(qkvBias), 3 * C, C, mb0, mb1, pack)")
        case "gram":
            let wdw = x("qkv_dwconv.weight")
            /// The depthwise 3x3 (zero padded) of T's channel `ch` at (row, xx), into `dst`.
            func dw(_ dst: String, _ ch: String) -> String {
                """
                {
                                const float *tp = T + (\(ch)) * P, *wk = \(wdw) + (\(ch)) * 9;
                                float acc = \(bias("qkv_dwconv.bias", ch));
                                for (long ky = 0; ky < 3; ky++) {
                                    const long iy = row + ky - 1;
                                    if (iy < 0 || iy >= H) continue;
                                    for (long kx = 0; kx < 3; kx++) {
                                        const long ix = xx + kx - 1;
                                        if (ix < 0 || ix >= W) continue;
                                        acc += wk[ky * 3 + kx] * tp[iy * W + ix];
                                    }
                                }
                                \(dst) = acc;
                            }
                """
            }
            return prelude + """
                const long CW = \(cols);
                long b, e;
                hc_split(NTILES, tid, nt, &b, &e);
                for (long tile = b; tile < e; tile++) {
                    double *gp = G + tile * GSTRIDE;
                    for (long i = 0; i < GSTRIDE; i++) gp[i] = 0.0;
                    const long y0 = tile * TR, y1 = y0 + TR < H ? y0 + TR : H;
                    for (long row = y0; row < y1; row++) {
                        for (long x0c = 0; x0c < W; x0c += CW) {
                            const long n = x0c + CW < W ? CW : W - x0c;
                            for (long head = 0; head < HEADS; head++) {
                                float qb[\(d) * \(cols)], kb[\(d) * \(cols)];
                                for (long i = 0; i < D; i++) {
                                    for (long l = 0; l < n; l++) {
                                        const long xx = x0c + l;
                                        \(dw("qb[i * CW + l]", "head * D + i"))
                                        \(dw("kb[i * CW + l]", "C + head * D + i"))
                                    }
                                }
                                double *gh = gp + head * D * D;
                                for (long i = 0; i < D; i++) {
                                    const float *qi = qb + i * CW;
                                    float qq = 0.0f, kk = 0.0f;
                                    for (long l = 0; l < n; l++) { qq += qi[l] * qi[l]; kk += kb[i * CW + l] * kb[i * CW + l]; }
                                    gp[C * D + head * D + i] += (double)qq;
                                    gp[C * D + C + head * D + i] += (double)kk;
                                    for (long j = 0; j < D; j++) {
                                        const float *kj = kb + j * CW;
                                        float acc = 0.0f;
                                        for (long l = 0; l < n; l++) acc += qi[l] * kj[l];
                                        gh[i * D + j] += (double)acc;
                                    }
                                }
                            }
                        }
                        for (long ch = 0; ch < C; ch++) {
                            for (long xx = 0; xx < W; xx++) {
                                \(dw("V[ch * P + row * W + xx]", "2 * C + ch"))
                            }
                        }
                    }
                }

            """
        case "mix":
            let temperature = x("temperature"), wout = x("project_out.weight")
            let epsText = cFloat(eps, double: true)
            return prelude + """
                long b, e;
                hc_split(HEADS, tid, nt, &b, &e);
                for (long head = b; head < e; head++) {
                    double *ah = A + head * D * D;
                    for (long i = 0; i < D * D; i++) {
                        double sum = 0.0;
                        for (long t = 0; t < NTILES; t++) sum += G[t * GSTRIDE + head * D * D + i];
                        ah[i] = sum;
                    }
                    const double scale = (double)\(temperature)[head];
                    for (long i = 0; i < D; i++) {
                        double nq = 0.0;
                        for (long t = 0; t < NTILES; t++) nq += G[t * GSTRIDE + C * D + head * D + i];
                        nq = sqrt(nq);
                        if (nq < \(epsText)) nq = \(epsText);
                        double top = -HUGE_VAL;
                        for (long j = 0; j < D; j++) {
                            double nk = 0.0;
                            for (long t = 0; t < NTILES; t++) nk += G[t * GSTRIDE + C * D + C + head * D + j];
                            nk = sqrt(nk);
                            if (nk < \(epsText)) nk = \(epsText);
                            ah[i * D + j] = ah[i * D + j] / (nq * nk) * scale;
                            if (ah[i * D + j] > top) top = ah[i * D + j];
                        }
                        double sum = 0.0;
                        for (long j = 0; j < D; j++) { ah[i * D + j] = exp(ah[i * D + j] - top); sum += ah[i * D + j]; }
                        for (long j = 0; j < D; j++) ah[i * D + j] /= sum;
                    }
                    for (long o = 0; o < C; o++) {
                        const float *wr = \(wout) + o * C + head * D;
                        for (long j = 0; j < D; j++) {
                            double sum = 0.0;
                            for (long i = 0; i < D; i++) sum += (double)wr[i] * ah[i * D + j];
                            M[o * C + head * D + j] = (float)sum;
                        }
                    }
                }

            """
        case "out":
            // The micro-kernel's GEMM with M computed at run time (packed per K block) and the residual in its epilogue.
            let outBias = roles.contains("project_out.bias") ? x("project_out.bias") : "NULL"
            let residual = roles.contains("residual") ? ", \(x("residual")) + p0, P" : ""
            return prelude + gemmItems(gemmTiles(k), images: "1", pixels: "P", rows: "C",
                                       call: "\(k.name)_gemm(y + p0, P, V + p0, P, pn, M, \(outBias), C, C, mb0, mb1, pack\(residual))")
        default:
            throw HybridError("fused_attention has no kernel phase '\(k.phase ?? "none")'", at: k.op.label)
        }
    }
}
