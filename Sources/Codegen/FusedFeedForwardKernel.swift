/// The C kernel of `fused_feed_forward` (GDFN): tiles of output rows with a one-row halo, so that the projection,
/// the depthwise conv and the gate live only in per-thread scratch and the kernel writes nothing but its output.
import HybridIR

extension KernelEmitter {
    /// The depthwise row the kernel calls, a static function printed before it (the 1x1 convolutions are the
    /// micro-kernel's `_in_gemm` and `_out_gemm`, MicroKernel.swift).
    static func fusedFeedForwardHelpers(_ k: Kernel) -> String {
        let name = k.name
        return """
        /* \(name)_depthwise_row: one output row of a 3x3 depthwise conv from the input rows r, r + W, r + 2W,
           zero outside columns 0 .. W-1 (the rows above and below the image are zero rows of the tile). */
        HC_NOINLINE static void \(name)_depthwise_row(float *restrict out, const float *restrict r, long W,
                                                      const float *restrict k, float bias) {
            const float *r0 = r, *r1 = r + W, *r2 = r + 2 * W;
            if (W == 1) {
                out[0] = bias + k[1] * r0[0] + k[4] * r1[0] + k[7] * r2[0];
                return;
            }
            out[0] = bias + k[1] * r0[0] + k[2] * r0[1] + k[4] * r1[0] + k[5] * r1[1] + k[7] * r2[0] + k[8] * r2[1];
            const hc_vf k0 = hc_vset1(k[0]), k1 = hc_vset1(k[1]), k2 = hc_vset1(k[2]);
            const hc_vf k3 = hc_vset1(k[3]), k4 = hc_vset1(k[4]), k5 = hc_vset1(k[5]);
            const hc_vf k6 = hc_vset1(k[6]), k7 = hc_vset1(k[7]), k8 = hc_vset1(k[8]), bv = hc_vset1(bias);
            long x = 1;
            for (; x + HC_VLEN <= W - 1; x += HC_VLEN) {
                hc_vf s = bv;
                s = hc_vfma(k0, hc_vld(r0 + x - 1), s); s = hc_vfma(k1, hc_vld(r0 + x), s); s = hc_vfma(k2, hc_vld(r0 + x + 1), s);
                s = hc_vfma(k3, hc_vld(r1 + x - 1), s); s = hc_vfma(k4, hc_vld(r1 + x), s); s = hc_vfma(k5, hc_vld(r1 + x + 1), s);
                s = hc_vfma(k6, hc_vld(r2 + x - 1), s); s = hc_vfma(k7, hc_vld(r2 + x), s); s = hc_vfma(k8, hc_vld(r2 + x + 1), s);
                hc_vst(out + x, s);
            }
            for (; x < W - 1; x++)
                out[x] = bias + k[0] * r0[x - 1] + k[1] * r0[x] + k[2] * r0[x + 1] + k[3] * r1[x - 1] + k[4] * r1[x]
                       + k[5] * r1[x + 1] + k[6] * r2[x - 1] + k[7] * r2[x] + k[8] * r2[x + 1];
            const long l = W - 1;
            out[l] = bias + k[0] * r0[l - 1] + k[1] * r0[l] + k[3] * r1[l - 1] + k[4] * r1[l] + k[6] * r2[l - 1] + k[7] * r2[l];
        }


        """
    }

    /// The kernel body. For each tile of R output rows of one image:
    ///  1. project_in of image rows r0-1 .. r0+R into the tile (2h channels × (R+2) rows × W), the rows outside
    ///     the image set to zero (the depthwise conv zero-pads its input, the projection, not x);
    ///  2. per hidden channel and row: the depthwise 3x3 of both halves into two row buffers, then
    ///     gelu(u1)·u2 written over projection row j of the first half, which no later row reads;
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
        // A folded layer norm: the statistics of the tile's input pixels (after u2 in the scratch slot), then
        // project_in normalising what it loads (with_bias) or scaling its sums (bias_free).
        let input = "x0 + n * CI * P + lo * W, P, (hi - lo) * W"
        // A fused residual (fuse-elementwise) is added to the tile's output rows once project_out wrote them.
        let residual = roles.contains("residual") ? ", \(x("residual")) + n * CO * P + r0 * W, P" : ""
        let t = gemmTiles(k)
        let projectIn = try FoldedNorm.of(a).map { norm in
            "float *restrict nmean = u2 + W, *restrict nrstd = nmean + TS;\n"
                + "        \(k.name)_in_stats(nmean, nrstd, \(input), CI, \(cFloat(norm.eps)));\n"
                + "        \(k.name)_in_gemm(t + (lo - r0 + 1) * W, TS, \(input), \(wIn), \(bIn), C2, CI, 0, (C2 + MR - 1) / MR, pack, nmean, nrstd);"
        } ?? "\(k.name)_in_gemm(t + (lo - r0 + 1) * W, TS, \(input), \(wIn), \(bIn), C2, CI, 0, (C2 + MR - 1) / MR, pack);"
        return """
            const long N = x0_d0, CI = x0_d1, H = x0_d2, W = x0_d3, CO = y_d1, P = H * W;
            const long HID = \(hidden), C2 = 2 * HID, R = \(rows) < H ? \(rows) : H;
            const long ntiles = (H + R - 1) / R, TS = (R + 2) * W;
            float *restrict t = a->thread_scratch + (long)tid * a->scratch_floats;
            float *restrict u1 = t + C2 * TS, *restrict u2 = u1 + W;
            /* The micro-kernel's packing scratch, after u2 (and the folded norm's statistics). */
            float *restrict pack = u2 + W\(try FoldedNorm.of(a) != nil ? " + 2 * TS" : "");
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
                \(projectIn)
                /* 2. depthwise 3x3 and gate, channel by channel. */
                for (long c = 0; c < HID; c++) {
                    float *p1 = t + c * TS;
                    const float *p2 = t + (c + HID) * TS;
                    for (long j = 0; j < nr; j++) {
                        \(k.name)_depthwise_row(u1, p1 + j * W, W, \(wDw) + c * 9, \(dwBias("c")));
                        \(k.name)_depthwise_row(u2, p2 + j * W, W, \(wDw) + (c + HID) * 9, \(dwBias("c + HID")));
                        float *g = p1 + j * W;
                        for (long xx = 0; xx < W; xx++) g[xx] = hc_geluf(u1[xx]) * u2[xx];
                    }
                }
                /* 3. project_out of the gates (local rows 0 .. nr-1 of the first half) into output rows r0 .. r1-1. */
                \(k.name)_out_gemm(y + n * CO * P + r0 * W, P, t, TS, nr * W, \(wOut), \(bOut), CO, HID, 0, (CO + MR - 1) / MR, pack\(residual));
            }

        """
    }
}
