/// The C kernels of `fused_attention` (Restormer MDTA): three kernels run in sequence by model_run, sharing one
/// workspace scratch block, because a kernel has no barrier inside it. The op writes only v and its output.
///
///  1. `gram`: per fixed tile of rows (independent of the thread count), each thread over its run of tiles keeps
///     the 1x1 qkv rows (3C × W per image row, with a folded layer norm (`norm`) the row's statistics first) of
///     the last three image rows in a ring in its per-thread scratch, computing each row once as the tiles advance
///     (the row above a thread's first tile is its one-row halo, computed by both neighbouring threads); from the
///     ring, the depthwise 3x3 of q and k in chunks of columns, the tile's partial Gram q·kᵀ per head and the
///     squared norms of q and k (fp64), and the depthwise v for the tile's rows into V (C×P). A qkv row value is
///     the same whichever thread computes it (each row is one GEMM call of W pixels), so the partials are too.
///  2. `mix`:  per head, the partials reduced in tile order (deterministic for any thread count), divided by
///     outer(max(‖q‖, eps), max(‖k‖, eps)), times temperature, softmax over keys, and the head's columns of
///     M = W_out·blockdiag(attn) (C×C).
///  3. `out`:  y = M·V + b_out, a GEMM over pixels.
///
/// Shared scratch (P = H·W at run time; sized at the compiled maximum): V (C·P floats, rounded up to even), the
/// Gram partials (tiles × (C·D + 2C) doubles), the reduced attention (C·D doubles), M (C·C floats). Per thread:
/// the ring, 3 × 3C × W floats, and with a folded norm a row's mean and 1/σ (2W).
import HybridIR

extension KernelEmitter {
    public static let fusedAttentionPhases: [String?] = ["gram", "mix", "out"]
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
                float *V = s;
                double *G = (double *)(s + (C * P + 1) / 2 * 2), *A = G + NTILES * GSTRIDE;
                float *M = (float *)(A + C * D);
                (void)HEADS; (void)D; (void)NTILES; (void)GSTRIDE; (void)V; (void)G; (void)A; (void)M;

            """
        switch k.phase {
        case "gram":
            let wdw = x("qkv_dwconv.weight")
            /// The depthwise 3x3 (zero padded) of qkv channel `ch` at (row, xx), from the ring, into `dst`.
            func dw(_ dst: String, _ ch: String) -> String {
                """
                {
                                const float *wk = \(wdw) + (\(ch)) * 9;
                                float acc = \(bias("qkv_dwconv.bias", ch));
                                for (long ky = 0; ky < 3; ky++) {
                                    const long iy = row + ky - 1;
                                    if (iy < 0 || iy >= H) continue;
                                    const float *tp = R + (iy % 3) * TW + (\(ch)) * W;
                                    for (long kx = 0; kx < 3; kx++) {
                                        const long ix = xx + kx - 1;
                                        if (ix < 0 || ix >= W) continue;
                                        acc += wk[ky * 3 + kx] * tp[ix];
                                    }
                                }
                                \(dst) = acc;
                            }
                """
            }
            let qkvRow: String
            if let norm = try FoldedNorm.of(a) {
                let qkvBias = roles.contains("qkv.bias") ? x("qkv.bias") : "NULL"
                qkvRow = """
                                \(k.name)_stats(mean, rstd, x0 + next * W, P, W, C, \(cFloat(norm.eps)));
                                \(k.name)_gemm(tr, W, x0 + next * W, P, W, \(x("qkv.weight")), \(qkvBias), 3 * C, C, mean, rstd);
                    """
            } else {
                qkvRow = """
                                for (long co = 0; co < 3 * C; co++) {
                                    float *yr = tr + co * W;
                                    const float bv = \(bias("qkv.bias", "co"));
                                    for (long p = 0; p < W; p++) yr[p] = bv;
                                    for (long ci = 0; ci < C; ci++) {
                                        const float wv = \(x("qkv.weight"))[co * C + ci];
                                        const float *xr = x0 + ci * P + next * W;
                                        for (long p = 0; p < W; p++) yr[p] += wv * xr[p];
                                    }
                                }
                    """
            }
            let norm = try FoldedNorm.of(a) != nil
            return prelude + """
                const long CW = \(cols), TW = 3 * C * W;
                float *restrict R = a->thread_scratch + (long)tid * a->scratch_floats;
                \(norm ? "float *restrict mean = R + 3 * TW, *restrict rstd = mean + W;" : "")
                long b, e;
                hc_split(NTILES, tid, nt, &b, &e);
                /* Rows [next - 3, next) of the 1x1 qkv output are in the ring, row r in slot r % 3. */
                long next = b * TR - 1 > 0 ? b * TR - 1 : 0;
                for (long tile = b; tile < e; tile++) {
                    double *gp = G + tile * GSTRIDE;
                    for (long i = 0; i < GSTRIDE; i++) gp[i] = 0.0;
                    const long y0 = tile * TR, y1 = y0 + TR < H ? y0 + TR : H;
                    for (long row = y0; row < y1; row++) {
                        for (const long need = row + 1 < H ? row + 1 : H - 1; next <= need; next++) {
                            float *tr = R + (next % 3) * TW;
                \(qkvRow)
                        }
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
            return prelude + gemm(out: "y", rows: "C", weight: "M", bias: { bias("project_out.bias", $0) },
                                  input: "V", tile: k.schedule.tile("p"), residual: roles.contains("residual") ? x("residual") : nil)
        default:
            throw HybridError("fused_attention has no kernel phase '\(k.phase ?? "none")'", at: k.op.label)
        }
    }

    /// out (rows×P) = weight (rows×C) · input (C×P) + bias, over items of 4 output rows × `tile` pixels; each output
    /// element is summed in one fixed order, whatever the thread count.
    private static func gemm(out: String, rows: String, weight: String, bias: (String) -> String, input: String,
                             tile: Int, residual: String? = nil) -> String {
        // A fused residual (fuse-elementwise) is added to each finished row of the tile.
        let add = residual.map { "\n            for (long p = p0; p < p1; p++) yr[p] += \($0)[co * P + p];" } ?? ""
        return """
            const long CO = \(rows), TCO = 4, TP = \(tile);
            const long nco = (CO + TCO - 1) / TCO, np = (P + TP - 1) / TP;
            long b, e;
            hc_split(nco * np, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long co0 = (item / np) * TCO, p0 = (item % np) * TP;
                const long co1 = co0 + TCO < CO ? co0 + TCO : CO, p1 = p0 + TP < P ? p0 + TP : P;
                for (long co = co0; co < co1; co++) {
                    float *yr = \(out) + co * P;
                    const float bv = \(bias("co"));
                    for (long p = p0; p < p1; p++) yr[p] = bv;
                    for (long ci = 0; ci < C; ci++) {
                        const float wv = \(weight)[co * C + ci];
                        const float *xr = \(input) + ci * P;
                        for (long p = p0; p < p1; p++) yr[p] += wv * xr[p];
                    }\(add)
                }
            }

        """
    }
}
