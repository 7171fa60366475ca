/// The C kernels of `fused_attention` (Restormer MDTA): four kernels run in sequence by model_run, sharing one
/// workspace scratch block, because a kernel has no barrier inside it. The op writes only v and its output. The
/// GEMM-shaped work runs on the micro-kernel (MicroKernel.swift, tiles from GemmTiles).
///
///  1. `gram`: per fixed tile of rows (independent of the thread count), each thread over its run of tiles keeps
///     the 1x1 qkv rows (3C × W per image row: one micro-kernel GEMM call per row, weights prepacked, a folded
///     layer norm (`norm`) normalised while packing after the row's statistics) of the last three image rows in a
///     ring in its per-thread scratch, computing each row once as the tiles advance (the row above a thread's
///     first tile is its one-row halo, computed by both neighbouring threads); each ring row is zero padded on
///     both sides (FusedAttentionTiles.ringPad) so the depthwise 3x3 is vectorised along pixels without tests.
///     Per image row and head, in chunks of columns, the depthwise q and k are written straight into the
///     micro-kernel's operand layouts (q as [D/MR][chunk][MR], k as [D/NR][chunk][NR], rows past D zero) and the
///     chunk is one K block of `_micro` tiles accumulating the head's float Gram q·kᵀ (DM × DN) over the row;
///     the row's Gram and squared norms are then added to the tile's fp64 partials. The depthwise v of the tile's
///     rows goes into V (C×P). A qkv row value is the same whichever thread computes it (each row is one GEMM
///     call of W pixels) and every sum has one fixed order, so the partials are too.
///  2. `softmax`: per (head, block of FusedAttentionTiles.softmaxRows query rows), the partials reduced in tile
///     order (deterministic for any thread count), divided by outer(max(‖q‖, eps), max(‖k‖, eps)), times
///     temperature, softmax over keys: the rows of attn (fp64). Items of row blocks rather than heads, so that
///     one head (level 0) still splits among the threads.
///  3. `mix`: per (head, block of MR output rows), that head's columns of M = W_out·blockdiag(attn) (C×C), written
///     in the micro-kernel's weight layout [C/MR][C][MR] (zero rows past C).
///  4. `out`:  y = M·V + b_out (+ the fused residual), the micro-kernel GEMM over (pixel panel, channel blocks).
///
/// Shared scratch (P = H·W at run time; sized at the compiled maximum): V (C·P floats, rounded up to even), the
/// Gram partials (tiles × (C·D + 2C) doubles), the reduced attention (C·D doubles), M packed (⌈C/MR⌉·MR·C
/// floats). Per thread (ScratchNeeds, FusedAttentionTiles.gramThreadFloats): the ring 3 × 3C × WP floats, with a
/// folded norm a row's mean and 1/σ (2W), the packed q and k of a chunk, the head's row Gram, GEMM packing.
import HybridIR

extension KernelEmitter {
    public static let fusedAttentionPhases: [String?] = ["gram", "softmax", "mix", "out"]
    public static let fusedAttentionRowsPerTile = FusedAttentionTiles.rowsPerTile
    public static let fusedAttentionColumnsPerChunk = FusedAttentionTiles.columnsPerChunk

    /// Floats of scratch one `fused_attention` needs for input shape `x` = (1, C, H, W).
    public static func fusedAttentionScratchFloats(x: [Int], heads: Int) -> Int {
        ScratchNeeds.of(Operation(kind: .fusedAttention, operands: [], attributes: ["heads": .int(heads)], result: 0),
                        operandShapes: [x], resultShape: x, schedule: Schedule(parallelOver: "", loopOrder: [], vectorWidth: 1)).shared
    }

    /// `<name>_dw`, the depthwise 3x3 (zero padded) of one ring channel over a run of pixels of one image row,
    /// vectorised along the pixels (the ring's zero pads stand for the image border left and right).
    static func fusedAttentionDepthwise(_ k: Kernel) -> String {
        """
        /* \(k.name)_dw: out[l*os] for l < n = bias + the 3x3 depthwise (zero padded) with taps wk of ring channel
           ch (row stride WP, slot of image row r: ring + (r % 3)*TW, pixel x at + RP + x) at image row `row`,
           pixels x0c + l; returns the sum of squares of the outputs when `squares` (lanes, then the tail). */
        static inline float \(k.name)_dw(float *restrict out, long os, const float *ring, long TW, long WP, long RP,
                                         long ch, long row, long H, long x0c, long n, const float *wk, float bias,
                                         int squares) {
            const float *rows[3];
            hc_vf w[9];
            for (long t = 0; t < 9; t++) w[t] = hc_vset1(wk[t]);
            for (long ky = 0; ky < 3; ky++) {
                const long iy = row + ky - 1;
                rows[ky] = iy >= 0 && iy < H ? ring + (iy % 3) * TW + ch * WP + RP + x0c : NULL;
            }
            hc_vf sq = hc_vzero();
            float tail = 0.0f;
            for (long l = 0; l < n; l += HC_VLEN) {
                hc_vf acc = hc_vset1(bias);
                for (long ky = 0; ky < 3; ky++) {
                    const float *tp = rows[ky];
                    if (!tp) continue;
                    acc = hc_vfma(w[ky * 3], hc_vld(tp + l - 1), acc);
                    acc = hc_vfma(w[ky * 3 + 1], hc_vld(tp + l), acc);
                    acc = hc_vfma(w[ky * 3 + 2], hc_vld(tp + l + 1), acc);
                }
                if (n - l >= HC_VLEN) {
                    if (os == 1) {
                        hc_vst(out + l, acc);
                    } else {
                        float tmp[HC_VLEN];
                        hc_vst(tmp, acc);
                        for (long v = 0; v < HC_VLEN; v++) out[(l + v) * os] = tmp[v];
                    }
                    if (squares) sq = hc_vfma(acc, acc, sq);
                } else {
                    float tmp[HC_VLEN];
                    hc_vst(tmp, acc);
                    for (long v = 0; v < n - l; v++) {
                        out[(l + v) * os] = tmp[v];
                        tail += tmp[v] * tmp[v];
                    }
                }
            }
            return squares ? hc_vhsum(sq) + tail : 0.0f;
        }


        """
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
        let t = gemmTiles(k)
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
            let norm = try FoldedNorm.of(a)
            let qkvBias = roles.contains("qkv.bias") ? x("qkv.bias") : "NULL"
            let stats = norm.map { "\(k.name)_stats(mean, rstd, x0 + next * W, P, W, C, \(cFloat($0.eps)));\n                " } ?? ""
            let normArgs = norm == nil ? "" : ", mean, rstd"
            func dw(_ out: String, _ os: String, _ ch: String, _ x0c: String, _ n: String, squares: Bool) -> String {
                "\(k.name)_dw(\(out), \(os), R, TW, WP, RP, \(ch), row, H, \(x0c), \(n), \(wdw) + (\(ch)) * 9, \(bias("qkv_dwconv.bias", ch)), \(squares ? 1 : 0))"
            }
            return prelude + """
                enum { MR = \(t.mr) };
                const long NR = \(t.nv) * HC_VLEN, CW = \(cols), RP = \(FusedAttentionTiles.ringPad);
                const long WP = (W + RP - 1) / RP * RP + 2 * RP, TW = 3 * C * WP;
                const long DM = (D + MR - 1) / MR * MR, DN = (D + NR - 1) / NR * NR, NMB = (3 * C + MR - 1) / MR;
                float *restrict R = a->thread_scratch + (long)tid * a->scratch_floats;
                \(norm != nil ? "float *restrict mean = R + 3 * TW, *restrict rstd = mean + W;" : "")
                float *restrict QP = R + 3 * TW\(norm != nil ? " + 2 * W" : ""), *restrict KP = QP + DM * CW;
                float *restrict GC = KP + DN * CW, *restrict pack = GC + DM * DN;
                /* The ring's pads and the packed q/k are zero (the rows past D stay so; the GEMM writes only the W
                   pixels of a ring row, the depthwise only rows below D). */
                for (long i = 0; i < 9 * C; i++) {
                    float *rr = R + i * WP;
                    for (long l = 0; l < RP; l++) rr[l] = 0.0f;
                    for (long l = RP + W; l < WP; l++) rr[l] = 0.0f;
                }
                for (long i = 0; i < DM * CW; i++) QP[i] = 0.0f;
                for (long i = 0; i < DN * CW; i++) KP[i] = 0.0f;
                float zeros[MR];
                for (long r = 0; r < MR; r++) zeros[r] = 0.0f;
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
                            \(stats)\(k.name)_qkv_gemm(R + (next % 3) * TW + RP, WP, x0 + next * W, P, W, \(x("qkv.weight")), \(qkvBias), 3 * C, C, 0, NMB, pack\(normArgs));
                        }
                        for (long head = 0; head < HEADS; head++) {
                            float nq[\(d)], nk[\(d)];
                            for (long i = 0; i < D; i++) { nq[i] = 0.0f; nk[i] = 0.0f; }
                            for (long x0c = 0; x0c < W; x0c += CW) {
                                const long n = x0c + CW < W ? CW : W - x0c;
                                for (long i = 0; i < D; i++) {
                                    nq[i] += \(dw("QP + (i / MR) * CW * MR + i % MR", "MR", "head * D + i", "x0c", "n", squares: true));
                                    nk[i] += \(dw("KP + (i / NR) * CW * NR + i % NR", "NR", "C + head * D + i", "x0c", "n", squares: true));
                                }
                                /* The head's Gram of the row so far, GC (DM x DN) += q·kᵀ over the chunk's n pixels. */
                                for (long ib = 0; ib < DM / MR; ib++)
                                    for (long js = 0; js < DN / NR; js++)
                                        \(k.name)_micro(n, QP + ib * CW * MR, KP + js * CW * NR, GC + ib * MR * DN + js * NR, DN,
                                                        x0c == 0 ? zeros : NULL);
                            }
                            double *gh = gp + head * D * D;
                            for (long i = 0; i < D; i++) {
                                for (long j = 0; j < D; j++) gh[i * D + j] += (double)GC[i * DN + j];
                                gp[C * D + head * D + i] += (double)nq[i];
                                gp[C * D + C + head * D + i] += (double)nk[i];
                            }
                        }
                        for (long ch = 0; ch < C; ch++)
                            (void)\(dw("V + ch * P + row * W", "1", "2 * C + ch", "0", "W", squares: false));
                    }
                }

            """
        case "softmax":
            let temperature = x("temperature")
            let epsText = cFloat(eps, double: true)
            return prelude + """
                const long SR = \(FusedAttentionTiles.softmaxRows), NRB = (D + SR - 1) / SR;
                long b, e;
                hc_split(HEADS * NRB, tid, nt, &b, &e);
                for (long item = b; item < e; item++) {
                    const long head = item / NRB, i0 = (item % NRB) * SR, i1 = i0 + SR < D ? i0 + SR : D;
                    double *ah = A + head * D * D;
                    for (long i = i0 * D; i < i1 * D; i++) {
                        double sum = 0.0;
                        for (long t = 0; t < NTILES; t++) sum += G[t * GSTRIDE + head * D * D + i];
                        ah[i] = sum;
                    }
                    const double scale = (double)\(temperature)[head];
                    /* The key norms max(‖k_j‖, eps) of the head (every row block of the head finds them alike). */
                    double nkv[\(d)];
                    for (long j = 0; j < D; j++) {
                        double nk = 0.0;
                        for (long t = 0; t < NTILES; t++) nk += G[t * GSTRIDE + C * D + C + head * D + j];
                        nk = sqrt(nk);
                        nkv[j] = nk < \(epsText) ? \(epsText) : nk;
                    }
                    for (long i = i0; i < i1; i++) {
                        double nq = 0.0;
                        for (long t = 0; t < NTILES; t++) nq += G[t * GSTRIDE + C * D + head * D + i];
                        nq = sqrt(nq);
                        if (nq < \(epsText)) nq = \(epsText);
                        double top = -HUGE_VAL;
                        for (long j = 0; j < D; j++) {
                            ah[i * D + j] = ah[i * D + j] / (nq * nkv[j]) * scale;
                            if (ah[i * D + j] > top) top = ah[i * D + j];
                        }
                        double sum = 0.0;
                        for (long j = 0; j < D; j++) { ah[i * D + j] = exp(ah[i * D + j] - top); sum += ah[i * D + j]; }
                        for (long j = 0; j < D; j++) ah[i * D + j] /= sum;
                    }
                }

            """
        case "mix":
            let wout = x("project_out.weight")
            return prelude + """
                enum { MR = \(t.mr) };
                const long MB = (C + MR - 1) / MR;
                long b, e;
                hc_split(HEADS * MB, tid, nt, &b, &e);
                for (long item = b; item < e; item++) {
                    const long head = item / MB, ob = item % MB;
                    const double *ah = A + head * D * D;
                    /* The head's columns of M for output rows ob·MR.., in the micro-kernel's weight layout: M[o][ci]
                       at ((o / MR) * C + ci) * MR + o % MR, rows past C zero. */
                    for (long o = ob * MR; o < (ob + 1) * MR; o++) {
                        float *mo = M + (o / MR) * C * MR + o % MR;
                        for (long j = 0; j < D; j++) {
                            double sum = 0.0;
                            if (o < C) {
                                const float *wr = \(wout) + o * C + head * D;
                                for (long i = 0; i < D; i++) sum += (double)wr[i] * ah[i * D + j];
                            }
                            mo[(head * D + j) * MR] = (float)sum;
                        }
                    }
                }

            """
        case "out":
            let outBias = roles.contains("project_out.bias") ? x("project_out.bias") : "NULL"
            let res = roles.contains("residual") ? ", \(x("residual")) + p0, P" : ""
            return prelude + gemmItems(t, images: "1", pixels: "P", rows: "C",
                                       call: "\(k.name)_gemm(y + p0, P, V + p0, P, pn, M, \(outBias), C, C, mb0, mb1, pack\(res))")
        default:
            throw HybridError("fused_attention has no kernel phase '\(k.phase ?? "none")'", at: k.op.label)
        }
    }
}
