/// The C kernel of `fused_feed_forward` (GDFN): tiles of output rows with a one-row halo, so that the projection,
/// the depthwise conv and the gate live only in per-thread scratch and the kernel writes nothing but its output.
import HybridIR

extension KernelEmitter {
    /// The depthwise-and-gate row the kernel calls, static functions printed before it (the 1x1 convolutions are
    /// the micro-kernel's `_in_gemm` and `_out_gemm`, MicroKernel.swift).
    static func fusedFeedForwardHelpers(_ k: Kernel) -> String {
        let name = k.name
        return """
        /* \(name)_dw_at: the 3x3 depthwise sum at column x of rows r, r + W, r + 2W (zero outside 0 .. W-1), the taps in the
           order of the vector loop. */
        static inline float \(name)_dw_at(const float *r, long W, const float *k, float bias, long x) {
            float s = bias;
            for (int dy = 0; dy < 3; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    if (x + dx >= 0 && x + dx < W) s = fmaf(k[dy * 3 + dx + 1], r[dy * W + x + dx], s);
            return s;
        }

        /* \(name)_dw_gate_row: g[x] = gelu(dwa[x]) * dwb[x] for x < W, where dwa, dwb are the 3x3 depthwise convs (kernels
           ka, kb, biases ba, bb) of the rows ra, ra + W, ra + 2W and rb, rb + W, rb + 2W; g overlaps neither. */
        HC_NOINLINE static void \(name)_dw_gate_row(float *restrict g, const float *restrict ra, const float *restrict rb, long W,
                                                 const float *restrict ka, float ba, const float *restrict kb, float bb) {
            long x = 1;
            if (W - 1 >= 1 + HC_VLEN) {
                const float *a0 = ra, *a1 = ra + W, *a2 = ra + 2 * W, *b0 = rb, *b1 = rb + W, *b2 = rb + 2 * W;
                const hc_vf bav = hc_vset1(ba), bbv = hc_vset1(bb);
                /* Two passes over the row, nine broadcast taps each (they fit the registers): dwa into g, then
                   g = gelu(g) * dwb. */
                const long x0 = x;
                {
                    const hc_vf k0 = hc_vset1(ka[0]), k1 = hc_vset1(ka[1]), k2 = hc_vset1(ka[2]), k3 = hc_vset1(ka[3]);
                    const hc_vf k4 = hc_vset1(ka[4]), k5 = hc_vset1(ka[5]), k6 = hc_vset1(ka[6]), k7 = hc_vset1(ka[7]);
                    const hc_vf k8 = hc_vset1(ka[8]);
                    for (x = x0; x + HC_VLEN <= W - 1; x += HC_VLEN) {
                        hc_vf s = bav;
                        s = hc_vfma(k0, hc_vld(a0 + x - 1), s); s = hc_vfma(k1, hc_vld(a0 + x), s); s = hc_vfma(k2, hc_vld(a0 + x + 1), s);
                        s = hc_vfma(k3, hc_vld(a1 + x - 1), s); s = hc_vfma(k4, hc_vld(a1 + x), s); s = hc_vfma(k5, hc_vld(a1 + x + 1), s);
                        s = hc_vfma(k6, hc_vld(a2 + x - 1), s); s = hc_vfma(k7, hc_vld(a2 + x), s); s = hc_vfma(k8, hc_vld(a2 + x + 1), s);
                        hc_vst(g + x, s);
                    }
                }
                {
                    const hc_vf k0 = hc_vset1(kb[0]), k1 = hc_vset1(kb[1]), k2 = hc_vset1(kb[2]), k3 = hc_vset1(kb[3]);
                    const hc_vf k4 = hc_vset1(kb[4]), k5 = hc_vset1(kb[5]), k6 = hc_vset1(kb[6]), k7 = hc_vset1(kb[7]);
                    const hc_vf k8 = hc_vset1(kb[8]);
                    for (x = x0; x + HC_VLEN <= W - 1; x += HC_VLEN) {
                        hc_vf u = bbv;
                        u = hc_vfma(k0, hc_vld(b0 + x - 1), u); u = hc_vfma(k1, hc_vld(b0 + x), u); u = hc_vfma(k2, hc_vld(b0 + x + 1), u);
                        u = hc_vfma(k3, hc_vld(b1 + x - 1), u); u = hc_vfma(k4, hc_vld(b1 + x), u); u = hc_vfma(k5, hc_vld(b1 + x + 1), u);
                        u = hc_vfma(k6, hc_vld(b2 + x - 1), u); u = hc_vfma(k7, hc_vld(b2 + x), u); u = hc_vfma(k8, hc_vld(b2 + x + 1), u);
                        hc_vst(g + x, hc_vmul(hc_vgelu(hc_vld(g + x)), u));
                    }
                }
            }
            /* Column 0 and columns x .. W-1 (at most HC_VLEN + 1), by scalar sums through whole or partial vectors. */
            long cols[HC_VLEN + 1], m = 0;
            cols[m++] = 0;
            for (long c = x; c < W; c++) cols[m++] = c;
            for (long i0 = 0; i0 < m; i0 += HC_VLEN) {
                const int n = m - i0 < HC_VLEN ? (int)(m - i0) : HC_VLEN;
                float s[HC_VLEN], u[HC_VLEN];
                for (int i = 0; i < n; i++) {
                    s[i] = \(name)_dw_at(ra, W, ka, ba, cols[i0 + i]);
                    u[i] = \(name)_dw_at(rb, W, kb, bb, cols[i0 + i]);
                }
                float out[HC_VLEN];
                hc_vst_partial(out, hc_vmul(hc_vgelu(hc_vld_partial(s, n)), hc_vld_partial(u, n)), n);
                for (int i = 0; i < n; i++) g[cols[i0 + i]] = out[i];
            }
        }


        """
    }

    /// The kernel body. For each tile of R output rows of one image:
    ///  1. project_in of image rows r0-1 .. r0+R into the tile (2h channels × (R+2) rows × W), the rows outside
    ///     the image set to zero (the depthwise conv zero-pads its input, the projection, not x);
    ///  2. per hidden channel and output row j: the depthwise 3x3 of both halves and gelu(u1)·u2 in one vector
    ///     pass (hc_vgelu), written over projection row j-1 of the first half, which no later row reads (for
    ///     j = 0 that is the previous channel's last halo row, or the W floats before the tile for channel 0),
    ///     so the gates of channel c are rows -1 .. nr-2 of its slab;
    ///  3. project_out of the gates into the R output rows.
    /// Tiles are fixed by R and H alone, so the result does not depend on the thread count; the tile lives in the
    /// calling thread's scratch slot (ScratchNeeds.of sizes it at the maximum image size).
    static func fusedFeedForward(_ k: Kernel) throws -> String {
        let a = k.op.attributes
        let hidden = try a.int("hidden")
        let rows = k.schedule.tile("rows")
        let roles = try ShapeRules.fusedFeedForwardRoles(a)
        func x(_ role: String) -> String { roles.firstIndex(of: role).map { "x\($0)" } ?? "NULL" }
        let (wIn, wDw, wOut) = (x("project_in"), x("dwconv"), x("project_out"))
        let (bIn, bOut) = (x("project_in bias"), x("project_out bias"))
        let dwBias = { (c: String) in roles.contains("dwconv bias") ? "\(x("dwconv bias"))[\(c)]" : "0.0f" }
        // A folded layer norm: the statistics of the tile's input pixels (after the tile in the scratch slot), then
        // project_in normalising what it loads (with_bias) or scaling its sums (bias_free).
        let input = "x0 + n * CI * P + lo * W, P, (hi - lo) * W"
        // A fused residual (fuse-elementwise) is added to the tile's output rows once project_out wrote them.
        let residual = roles.contains("residual") ? ", \(x("residual")) + n * CO * P + r0 * W, P" : ""
        let t = gemmTiles(k)
        let norm = try FoldedNorm.of(a)
        let stats = norm.map { norm in
            "float *restrict nmean = after, *restrict nrstd = nmean + TS;\n"
                + "        \(k.name)_in_stats(nmean, nrstd, \(input), CI, \(cFloat(norm.eps)));\n        "
        } ?? ""
        let normArgs = norm != nil ? ", nmean, nrstd" : ""
        let projectIn = "\(k.name)_in_gemm(t + (lo - r0 + 1) * W, TS, \(input), \(wIn), \(bIn), C2, CI, 0, (C2 + MR - 1) / MR, pack\(normArgs));"
        return """
            const long N = x0_d0, CI = x0_d1, H = x0_d2, W = x0_d3, CO = y_d1, P = H * W;
            const long HID = \(hidden), C2 = 2 * HID, R = \(rows) < H ? \(rows) : H;
            const long ntiles = (H + R - 1) / R, TS = (R + 2) * W;
            /* The scratch slot: W floats (channel 0's gate row 0), the tile, W floats, the folded norm's
               statistics, the micro-kernel's packing scratch. */
            float *restrict t = a->thread_scratch + (long)tid * a->scratch_floats + W;
            float *restrict after = t + C2 * TS + W;
            float *restrict pack = after\(try FoldedNorm.of(a) != nil ? " + 2 * TS" : "");
            const long MR = \(t.mr);
            long b, e;
            hc_split(N * ntiles, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long n = item / ntiles, r0 = (item % ntiles) * R;
                const long r1 = r0 + R < H ? r0 + R : H, nr = r1 - r0;
                /* 1. project_in of image rows lo .. hi-1 (r0-1 .. r1 where they exist) into local rows from lo-r0+1. */
                const long lo = r0 > 0 ? r0 - 1 : 0, hi = r1 < H ? r1 + 1 : H;
                for (long c = 0; c < C2; c++) {
                    if (r0 == 0) memset(t + c * TS, 0, (size_t)W * sizeof(float));
                    if (r1 == H) memset(t + c * TS + (nr + 1) * W, 0, (size_t)W * sizeof(float));
                }
                \(stats)\(projectIn)
                /* 2. depthwise 3x3 and gate, channel by channel, gate row j over projection row j-1. */
                for (long c = 0; c < HID; c++) {
                    const float *p1 = t + c * TS, *p2 = t + (c + HID) * TS;
                    for (long j = 0; j < nr; j++)
                        \(k.name)_dw_gate_row(t + c * TS + (j - 1) * W, p1 + j * W, p2 + j * W, W, \(wDw) + c * 9,
                                             \(dwBias("c")), \(wDw) + (c + HID) * 9, \(dwBias("c + HID")));
                }
                /* 3. project_out of the gates (local rows -1 .. nr-2 of the first half) into output rows r0 .. r1-1. */
                \(k.name)_out_gemm(y + n * CO * P + r0 * W, P, t - W, TS, nr * W, \(wOut), \(bOut), CO, HID, 0, (CO + MR - 1) / MR, pack\(residual));
            }

        """
    }
}
