/// The C kernel of `fused_feed_forward` (GDFN): tiles of output rows with a one-row halo (carried from the tile
/// above when the same thread computed it), so that the projection, the depthwise conv and the gate live only in
/// per-thread scratch and the kernel writes nothing but its output.
import HybridIR

extension KernelEmitter {
    /// The depthwise-and-gate row the kernel calls, static functions printed before it (the 1x1 convolutions are
    /// the micro-kernel's `_in_gemm` and `_out_gemm`, MicroKernel.swift).
    static func fusedFeedForwardHelpers(_ k: Kernel) -> String {
        let name = k.name
        guard k.op.kind == .fusedFeedForward else { return depthwiseActivationHelpers(k) }
        return """
        /* \(name)_dw_gate_tail: columns x .. x+n-1 (0 < n < HC_VLEN, x + n = W) of \(name)_dw_gate_row in one vector, by partial
           loads that read no further than column W (the rows' zero column); the taps in the order of the vector loop. */
        HC_NOINLINE static void \(name)_dw_gate_tail(float *restrict g, const float *const *ra, const float *const *rb, long W,
                                                     const float *restrict ka, float ba, const float *restrict kb, float bb,
                                                     long x, int n) {
            hc_vf s = hc_vset1(ba), u = hc_vset1(bb);
            for (int d = 0; d < 3; d++)
                for (int dx = 0; dx < 3; dx++) {
                    const long c = x + dx - 1;
                    const int m = W + 1 - c < HC_VLEN ? (int)(W + 1 - c) : HC_VLEN;
                    s = hc_vfma(hc_vset1(ka[d * 3 + dx]), hc_vld_partial(ra[d] + c, m), s);
                    u = hc_vfma(hc_vset1(kb[d * 3 + dx]), hc_vld_partial(rb[d] + c, m), u);
                }
            hc_vst_partial(g + x, hc_vmul(hc_vgelu(s), u), n);
        }

        /* \(name)_dw_gate_row: g[x] = gelu(dwa[x]) * dwb[x] for x < W, where dwa, dwb are the 3x3 depthwise convs (kernels
           ka, kb, biases ba, bb) of the rows a0, a1, a2 and b0, b1, b2, each readable and zero at columns -1 and W (the
           conv's zero padding); g overlaps none of them. Two passes of whole vectors, then the last W mod HC_VLEN columns
           through \(name)_dw_gate_tail. */
        HC_NOINLINE static void \(name)_dw_gate_row(float *restrict g, const float *a0, const float *a1, const float *a2,
                                                 const float *b0, const float *b1, const float *b2, long W,
                                                 const float *restrict ka, float ba, const float *restrict kb, float bb) {
            long x = 0;
            if (W >= HC_VLEN) {
                const hc_vf bav = hc_vset1(ba), bbv = hc_vset1(bb);
                /* Two passes over the row, nine broadcast taps each (they fit the registers): dwa into g, then
                   g = gelu(g) * dwb. */
                {
                    const hc_vf k0 = hc_vset1(ka[0]), k1 = hc_vset1(ka[1]), k2 = hc_vset1(ka[2]), k3 = hc_vset1(ka[3]);
                    const hc_vf k4 = hc_vset1(ka[4]), k5 = hc_vset1(ka[5]), k6 = hc_vset1(ka[6]), k7 = hc_vset1(ka[7]);
                    const hc_vf k8 = hc_vset1(ka[8]);
                    for (x = 0; x + HC_VLEN <= W; x += HC_VLEN) {
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
                    for (x = 0; x + HC_VLEN <= W; x += HC_VLEN) {
                        hc_vf u = bbv;
                        u = hc_vfma(k0, hc_vld(b0 + x - 1), u); u = hc_vfma(k1, hc_vld(b0 + x), u); u = hc_vfma(k2, hc_vld(b0 + x + 1), u);
                        u = hc_vfma(k3, hc_vld(b1 + x - 1), u); u = hc_vfma(k4, hc_vld(b1 + x), u); u = hc_vfma(k5, hc_vld(b1 + x + 1), u);
                        u = hc_vfma(k6, hc_vld(b2 + x - 1), u); u = hc_vfma(k7, hc_vld(b2 + x), u); u = hc_vfma(k8, hc_vld(b2 + x + 1), u);
                        hc_vst(g + x, hc_vmul(hc_vgelu(hc_vld(g + x)), u));
                    }
                }
            }
            if (x < W) {
                const float *const ra[3] = { a0, a1, a2 }, *const rb[3] = { b0, b1, b2 };
                \(name)_dw_gate_tail(g, ra, rb, W, ka, ba, kb, bb, x, (int)(W - x));
            }
        }


        """
    }

    /// `fused_pointwise_depthwise`'s row: the depthwise 3x3 of one projection's rows, its bias and the fused
    /// activation, written to the output row (the taps in the order of the gated row's, one pass).
    static func depthwiseActivationHelpers(_ k: Kernel) -> String {
        let name = k.name
        let act = vectorActivationExpression(k) ?? "v"
        return """
        /* \(name)_dw_act_tail: columns x .. x+n-1 (0 < n < HC_VLEN, x + n = W) of \(name)_dw_act_row in one vector, by partial
           loads that read no further than column W (the rows' zero column). */
        HC_NOINLINE static void \(name)_dw_act_tail(float *restrict g, const float *const *ra, long W, const float *restrict ka,
                                                    float ba, long x, int n) {
            hc_vf v = hc_vset1(ba);
            for (int d = 0; d < 3; d++)
                for (int dx = 0; dx < 3; dx++) {
                    const long c = x + dx - 1;
                    const int m = W + 1 - c < HC_VLEN ? (int)(W + 1 - c) : HC_VLEN;
                    v = hc_vfma(hc_vset1(ka[d * 3 + dx]), hc_vld_partial(ra[d] + c, m), v);
                }
            hc_vst_partial(g + x, \(act), n);
        }

        /* \(name)_dw_act_row: g[x] = act(dw[x]) for x < W, dw the 3x3 depthwise conv (kernel ka, bias ba) of the rows a0, a1,
           a2, each readable and zero at columns -1 and W (the conv's zero padding); g (an output row) overlaps none of
           them. Whole vectors, then the last W mod HC_VLEN columns through \(name)_dw_act_tail. */
        HC_NOINLINE static void \(name)_dw_act_row(float *restrict g, const float *a0, const float *a1, const float *a2, long W,
                                                   const float *restrict ka, float ba) {
            long x = 0;
            if (W >= HC_VLEN) {
                const hc_vf bav = hc_vset1(ba);
                const hc_vf k0 = hc_vset1(ka[0]), k1 = hc_vset1(ka[1]), k2 = hc_vset1(ka[2]), k3 = hc_vset1(ka[3]);
                const hc_vf k4 = hc_vset1(ka[4]), k5 = hc_vset1(ka[5]), k6 = hc_vset1(ka[6]), k7 = hc_vset1(ka[7]);
                const hc_vf k8 = hc_vset1(ka[8]);
                for (x = 0; x + HC_VLEN <= W; x += HC_VLEN) {
                    hc_vf v = bav;
                    v = hc_vfma(k0, hc_vld(a0 + x - 1), v); v = hc_vfma(k1, hc_vld(a0 + x), v); v = hc_vfma(k2, hc_vld(a0 + x + 1), v);
                    v = hc_vfma(k3, hc_vld(a1 + x - 1), v); v = hc_vfma(k4, hc_vld(a1 + x), v); v = hc_vfma(k5, hc_vld(a1 + x + 1), v);
                    v = hc_vfma(k6, hc_vld(a2 + x - 1), v); v = hc_vfma(k7, hc_vld(a2 + x), v); v = hc_vfma(k8, hc_vld(a2 + x + 1), v);
                    hc_vst(g + x, \(act));
                }
            }
            if (x < W) {
                const float *const ra[3] = { a0, a1, a2 };
                \(name)_dw_act_tail(g, ra, W, ka, ba, x, (int)(W - x));
            }
        }


        """
    }

    /// The kernel body (tiling and scratch layout: FeedForwardTiles). For each tile of R output rows r0 .. r1-1 of
    /// one image (a thread takes consecutive tiles, hc_split):
    ///  1. the input pixels of image rows lo .. hi-1 packed once as the micro-kernel's panel, each row between two
    ///     zero pixels (rows of W+2), normalised by a folded layer norm (statistics of those pixels). lo .. hi-1 is
    ///     r0-1 .. r1 where they exist; when the thread's previous item was the tile above, the projection of
    ///     image rows r0-1 and r0 was kept from it (the carry), and only rows r0+1 .. r1 are packed and projected;
    ///  2. per block of HB hidden channels (a multiple of MR; project_in prepacked in two halves so both halves
    ///     of a block start at an MR boundary):
    ///     a. project_in of the block's channels of both halves into 2·HB rows of (R+2)·(W+2) pixels (local row 0
    ///        is image row r0-1), whole MR×NR tiles, then the pad columns and the rows outside the image set to
    ///        zero (the depthwise conv zero-pads its input, the projection, not x);
    ///     b. per channel and output row, the depthwise 3x3 of both halves and gelu(u1)·u2 (hc_vgelu) into the
    ///        block's gate rows while the projection rows are hot, in whole vectors (the pad columns are the conv's
    ///        padding); local rows 0 and 1 read from the carry when it was kept; then local rows R, R+1 (image rows
    ///        r1-1, r1) copied into the carry for the next tile;
    ///     c. project_out of those HB gates added into the tile's output sums (the first block starts from the
    ///        bias and the fused residual), reading the gate rows in place;
    ///  3. the sums copied to the output rows (the sums live in scratch rows GS apart: output rows are H·W
    ///     floats apart, which puts a tile of them in one L1 set and one L2 set).
    /// Every output element is summed in one order (hidden channel ascending), and every projection value is the
    /// same bits whichever tile computed it (per-pixel statistics and normalisation, one k order per lane), so the
    /// carry, which depends on how items fall to threads, changes no bit of the result. Working set per tile
    /// (FeedForwardTiles.rows picks R to fit 3/4 of L2): the panel (C·(R+2)·(W+2)) and the output rows (CO·R·W),
    /// re-read by every block, plus the block's rows, ~3·HB·(R+2)·(W+2); each micro-kernel call works from L1.
    ///
    /// `fused_pointwise_depthwise` (not gated) runs the same walk with one projection of HB rows per block and no
    /// project_out: step 2b writes act(depthwise) straight into the block's output rows (each row W floats of one
    /// output plane), and steps 2c and 3 are absent.
    static func fusedFeedForward(_ k: Kernel) throws -> String {
        let a = k.op.attributes
        let gated = k.op.kind == .fusedFeedForward
        let hidden = try a.int("hidden")
        let rows = k.schedule.tile("rows")
        let roles = try gated ? ShapeRules.fusedFeedForwardRoles(a) : ShapeRules.fusedPointwiseDepthwiseRoles(a)
        func x(_ role: String) -> String { roles.firstIndex(of: role).map { "x\($0)" } ?? "NULL" }
        let (wIn, wDw, wOut) = (x("project_in"), x("dwconv"), x("project_out"))
        let (bIn, bOut) = (x("project_in bias"), x("project_out bias"))
        let dwBias = { (c: String) in roles.contains("dwconv bias") ? "\(x("dwconv bias"))[\(c)]" : "0.0f" }
        let packedIn = roles.firstIndex(of: "project_in").map { k.packedOperands.contains($0) } ?? false
        let packedOut = roles.firstIndex(of: "project_out").map { k.packedOperands.contains($0) } ?? false
        let t = gemmTiles(k)
        let hb = FeedForwardTiles.hiddenBlock(k.schedule, hidden: hidden, input: k.operands[0].shape.map(\.coefficient))
        let norm = try FoldedNorm.of(a)
        let stats = norm.map { norm in
            "\(k.name)_in_stats(nmean, nrstd, xin, P, nrows * W, CI, \(cFloat(norm.eps)));\n            "
        } ?? ""
        let normArgs = norm != nil ? ", nmean, nrstd" : ""
        // A fused residual (fuse-elementwise) starts the first block's sums (it may be y's own slot).
        let residual = roles.contains("residual") ? ", \(x("residual")) + n * CO * P + r0 * W, P" : ""
        // Weights: prepacked constants are read in place; otherwise (no constant folding) the block's weights are
        // packed into the thread's scratch, project_in as [nb][CI][MR] per half, project_out as [CO/MR][kn][MR].
        let weightsIn = packedIn ? """
                        const float *a0 = \(wIn) + (c0 / MR) * CI * MR, *a1 = \(gated ? "\(wIn) + (NBH + c0 / MR) * CI * MR" : "a0");
            """ : """
                        for (long h = 0; h < NH; h++)
                            for (long b = 0; b < nb; b++)
                                for (long q = 0; q < CI; q++)
                                    for (long r = 0; r < MR; r++) {
                                        const long ch = c0 + b * MR + r;
                                        wblk[((h * nb + b) * CI + q) * MR + r] = ch < HID ? \(wIn)[(h * HID + ch) * CI + q] : 0.0f;
                                    }
                        const float *a0 = wblk, *a1 = wblk + (NH - 1) * nb * CI * MR;
            """
        let weightsOut = packedOut ? """
                        const float *ao = \(wOut) + c0 * MR;
                        const long aos = HID * MR;
            """ : """
                        float *wo = wblk + 2 * HB * CI;
                        for (long mb = 0; mb < (CO + MR - 1) / MR; mb++)
                            for (long q = 0; q < kn; q++)
                                for (long r = 0; r < MR; r++)
                                    wo[(mb * kn + q) * MR + r] = mb * MR + r < CO ? \(wOut)[(mb * MR + r) * HID + c0 + q] : 0.0f;
                        const float *ao = wo;
                        const long aos = kn * MR;
            """
        let initIn = bIn == "NULL" ? ("0.0f", "0.0f") : ("c0 + i < HID ? \(bIn)[c0 + i] : 0.0f", "c0 + i < HID ? \(bIn)[HID + c0 + i] : 0.0f")
        // The scratch after the projection: the gates and the output sums (gated only), the carry, the weights.
        let layout = gated ? """
                float *restrict gates = proj + 2 * HB * CS;
                float *restrict ysum = gates + HB * GS;
                float *restrict carry = ysum + CO * GS;
                float *restrict wblk = carry + 4 * NBH * MR * W2;
                float *restrict nmean = wblk + 2 * HB * CI + (CO + MR - 1) / MR * MR * HB, *restrict nrstd = nmean + TP;
            """ : """
                float *restrict carry = proj + HB * CS;
                float *restrict wblk = carry + 2 * NBH * MR * W2;
                float *restrict nmean = wblk + HB * CI, *restrict nrstd = nmean + TP;
                (void)GS;
            """
        let depthwise = gated ? """
                        /* 2b. depthwise 3x3 and gate of channel c0 + q, output row j from projection rows j .. j+2 (local rows
                           0 and 1 from the carry when it is reused: carry channel c0 + q of half 1, NBH*MR + c0 + q of half 2). */
                        for (long q = 0; q < kn; q++) {
                            const float *p1 = proj + q * CS + 1, *p2 = proj + (nb * MR + q) * CS + 1;
                            const float *h1 = reuse ? carry + (c0 + q) * 2 * W2 + 1 : p1, *h2 = reuse ? carry + (NBH * MR + c0 + q) * 2 * W2 + 1 : p2;
                            for (long j = 0; j < nr; j++)
                                \(k.name)_dw_gate_row(gates + q * GS + j * W, (j < 2 ? h1 : p1) + j * W2, (j < 1 ? h1 : p1) + (j + 1) * W2,
                                                     p1 + (j + 2) * W2, (j < 2 ? h2 : p2) + j * W2, (j < 1 ? h2 : p2) + (j + 1) * W2,
                                                     p2 + (j + 2) * W2, W, \(wDw) + (c0 + q) * 9, \(dwBias("c0 + q")),
                                                     \(wDw) + (HID + c0 + q) * 9, \(dwBias("HID + c0 + q")));
                        }
            """ : """
                        /* 2b. depthwise 3x3 and activation of channel c0 + q into its output rows r0 .. r1-1, output row j from
                           projection rows j .. j+2 (local rows 0 and 1 from the carry, channel c0 + q, when it is reused). */
                        for (long q = 0; q < kn; q++) {
                            const float *p1 = proj + q * CS + 1;
                            const float *h1 = reuse ? carry + (c0 + q) * 2 * W2 + 1 : p1;
                            float *yq = y + (n * HID + c0 + q) * P + r0 * W;
                            for (long j = 0; j < nr; j++)
                                \(k.name)_dw_act_row(yq + j * W, (j < 2 ? h1 : p1) + j * W2, (j < 1 ? h1 : p1) + (j + 1) * W2,
                                                    p1 + (j + 2) * W2, W, \(wDw) + (c0 + q) * 9, \(dwBias("c0 + q")));
                        }
            """
        let projectOut = gated ? """
                        /* 2c. project_out of the block's gates added into output rows r0 .. r1-1. */
            \(weightsOut)
                        \(k.name)_out_acc(ysum, GS, gates, GS, nr * W, kn, ao, aos, \(bOut), CO, c0 == 0\(residual));
                    }
                    /* 3. The sums out to output rows r0 .. r1-1 (the residual, possibly y's own slot, was read into them by
                       the first block). */
                    for (long m = 0; m < CO; m++)
                        memcpy(y + n * CO * P + m * P + r0 * W, ysum + m * GS, (size_t)(nr * W) * sizeof(float));
            """ : """
                    }
            """
        return """
            const long N = x0_d0, CI = x0_d1, H = x0_d2, W = x0_d3, CO = y_d1, P = H * W;
            const long HID = \(hidden), R = \(rows) < H ? \(rows) : H;
            enum { MR = \(t.mr), NH = \(gated ? 2 : 1) };
            const long NR = \(t.nv) * HC_VLEN, HB = \(hb), NBH = (HID + MR - 1) / MR, ntiles = (H + R - 1) / R;
            /* The scratch slot (FeedForwardTiles.scratchFloats, the same formulas): the panel, the block's projection
               (NH halves, row stride CS)\(gated ? " and gates (row stride GS), the output sums" : ""), the carried projection rows (2 rows of W per
               channel of each half), run-time weight blocks, the norm's statistics. */
            /* Projection rows are W2 = W + 2 apart: columns -1 and W of each are the depthwise conv's zero padding. */
            const long W2 = W + 2, TP = (R + 2) * W2, CS = TP + NR + 16, GS = (R * W + NR - 1) / NR * NR + 16;
            float *restrict xp = a->thread_scratch + (long)tid * a->scratch_floats;
            float *restrict proj = xp + (TP + NR - 1) / NR * NR * CI;
        \(layout)
            (void)wblk; (void)nmean; (void)nrstd; (void)NBH; (void)CO;
            long b, e, prev = -2;
            hc_split(N * ntiles, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long n = item / ntiles, r0 = (item % ntiles) * R;
                const long r1 = r0 + R < H ? r0 + R : H, nr = r1 - r0;
                /* The tile above in the same image was this thread's previous item: its last two projection rows
                   (image rows r0-1, r0) are carried, and only rows r0+1 .. r1 are computed. */
                const int reuse = item == prev + 1 && r0 > 0;
                prev = item;
                /* 1. The panel of image rows lo .. hi-1, which land in local rows from lo-r0+1. */
                const long lo = reuse ? r0 + 1 : (r0 > 0 ? r0 - 1 : 0), hi = r1 < H ? r1 + 1 : H;
                const long nrows = hi > lo ? hi - lo : 0, np = nrows * W2;
                const float *xin = x0 + n * CI * P + lo * W;
                if (np > 0) {
                    \(stats)\(k.name)_in_pack_panel(xp, xin, P, nrows, W, CI\(normArgs));
                }
                for (long c0 = 0; c0 < HID; c0 += HB) {
                    const long kn = HID - c0 < HB ? HID - c0 : HB, nb = (kn + MR - 1) / MR;
                    /* 2a. project_in: rows b*MR + r of the block (channel c0 + b*MR + r\(gated ? "; half 2 from row nb*MR" : "")). */
        \(weightsIn)
                    float init[NH * \(hb)];
                    for (long i = 0; i < nb * MR; i++) {
                        init[i] = \(initIn.0);\(gated ? "\n                    init[nb * MR + i] = \(initIn.1);" : "")
                    }
                    if (np > 0) \(k.name)_in_panel_gemm(proj + (lo - r0 + 1) * W2, CS, xp, np, CI, a0, a1, nb, NH, init);
                    /* Zero: the padding columns (the projection of the panel's zero pixels is the bias) and the rows
                       outside the image. */
                    for (long i = 0; i < NH * nb * MR; i++) {
                        for (long l = lo - r0 + 1; l < hi - r0 + 1; l++) proj[i * CS + l * W2] = proj[i * CS + l * W2 + W + 1] = 0.0f;
                        if (r0 == 0) memset(proj + i * CS, 0, (size_t)W2 * sizeof(float));
                        if (r1 == H) memset(proj + i * CS + (nr + 1) * W2, 0, (size_t)W2 * sizeof(float));
                    }
        \(depthwise)
                    /* The block's projection rows of image rows r1-1 and r1 (local rows nr, nr+1) are the next tile's
                       first two (with one row per tile, local row 1 is itself carried: row 1 of the carry moves to row 0). */
                    if (r1 < H)
                        for (long i = 0; i < NH * nb * MR; i++) {
                            float *ch = carry + (i < nb * MR ? c0 + i : NBH * MR + c0 + i - nb * MR) * 2 * W2;
                            for (long l = nr; l < nr + 2; l++)
                                memcpy(ch + (l - nr) * W2, reuse && l < 2 ? ch + l * W2 : proj + i * CS + l * W2, (size_t)W2 * sizeof(float));
                        }
        \(projectOut)
            }

        """
    }
}
