/// The C kernels of `ss2d_scan`: SS2D's four directional scans reading xs and x_dbl in place through the
/// directions' pixel maps (no flipped or transposed copies), with dt_proj and softplus computed per step.
///
/// Recurrent form: parallel over blocks of HC_VLEN channels (vector lanes = channels, the d_state states in NS
/// vectors, exp(dt·A) as hc_vexp2_mul(dt, A log2 e) and softplus with hc_vsoftplus4); each work item copies its
/// channels' xs pixel-major into the thread's scratch (HC_VLEN x HC_VLEN squares transposed in registers), runs the
/// four directions one after another in the merge order 0, 2, 1, 3 (ARCHITECTURES.md 2.1 step 7), the first writing
/// the block's y (pixel-major, in the scratch too) and the others adding to it, and finally writes y back planar;
/// no two threads write the same element and the sum's order is fixed. Every step thus reads u and adds its output
/// with one vector access, whatever the direction (the column-major ones jump an image row per step: one cache line
/// instead of one per channel). The sequence goes in chunks of `chunk` steps: per chunk the steps' pixels and their
/// x_dbl rows are gathered into contiguous step-major scratch on the stack, so dt_raw, B and C are broadcasts from
/// L1. Each chunk runs in blocks of 32 steps, in two passes: dt (dt_proj dot and softplus, four steps in lockstep)
/// and u of the block's steps, then the recurrence over the same steps. The layouts choose-layouts picks are kept (x planar, x_dbl
/// token-major).
///
/// Where the time goes (AVX-512 host, C=96 stages: E 192, d_state 8, measured on the C kernel alone with thread CPU
/// time): the scan is bound by vector-instruction throughput. Per state and step 14 vector operations (dt·A,
/// hc_vexp2_decay's 9 on AVX-512, du·B, the state and output FMAs); per step ~40 more (R dt_proj FMAs, softplus with
/// its division). Before (exp(dt·A) by the Cody-Waite exp with clamps, 17 per state; softplus inline in the step)
/// a step took ~85 ns, the out-of-order core stalling on each step's softplus chain; now ~42 ns (~110 cycles for
/// ~155 vector operations), of which the decays are ~14 ns, softplus ~7 ns and the xs/y transposes ~1-2 ns.
/// Since then (llvm-mca -mcpu=sapphirerapids on the two loops, cycles per step; the same split holds on the host,
/// whose ~42 ns/step at ~2.5 GHz is mca's 110): the dt pass was bound by the latency of each step's softplus chain
/// (exp, division, log1p polynomial: 43 cycles a step for ~20 of port work); computing four steps' softplus in
/// lockstep (hc_vsoftplus4, the same bits) gives 34. The recurrence is bound by the two vector ports (67.6 cycles a
/// step for ~134 operations); the decay without hc_vexp2_decay's clamp (hc_vexp2_scan: vscalefps saturates to 0 or
/// inf by itself, the same bits inside [-126, 126]) takes one operation per state off: 62.8. Together ~110 -> ~97
/// cycles a step (measured on the kernel alone at 64², 1 thread, min of 20 runs: 42-44 -> 38.6-40.4 ns a step).
/// What remains is close to the operation count: per state and step 13 vector operations (dt·A, the decay's 9,
/// du·B, the two FMAs) plus ~40 per step for dt. Tried and not kept: the dt of the next block computed inside this
/// block's recurrence loop (one dt step per step: the scheduler fills with the long softplus chains, mca 158 cycles a
/// step, measured ~10 % slower; four in lockstep every fourth step: no gain over the separate pass); the column directions on a column-major copy of the block's xs and
/// y (sequential walks, but five 4 MB transposes per item instead of two cost more than the strided walks: the
/// transposes are memory-bound at ~1 ms per 4 MB); 2^x reduced to [0, 1) with floor (vscalefps then floors by
/// itself, one subtraction less) — 1.07 ulp, over hc_vexp2_decay's 1-ulp bound. Before: a third pass storing the
/// decays and du·B of a block before the recurrence, a degree-5 polynomial in hc_vexp2_decay (2 ulp instead of 1,
/// ~3 % at most). Memory: the column-major directions land on a new 4 KB page
/// every step for u and y (an image row of vectors) and for x_dbl (an image row of 4 J floats), where the hardware
/// prefetchers stop; software prefetches (u and y 16 steps ahead, the next chunk's x_dbl rows during this chunk's
/// scan) remove most of it (256² costs ~10 % more per step than 64²). Also tried before and not kept: scanning the
/// column directions on a transposed copy of the block's scratch, and two vectors of channels per work item.
/// Then (AVX-512): the decay by hc_vexp2_mul, a 16-entry table of 2^(j/16) (vpermps) and a quadratic in the
/// remainder, with dt·A fused into the FMAs of the range reduction: 9 vector operations with the product instead of
/// 10, so 12 per state and step; and hc_vsoftplus4 two operations shorter (same bits). Kernel alone (C harness,
/// thread CPU time, min of 20 runs, 64², 1 thread, three alternating rounds): E 192 d_state 8 7.03-7.10 -> 6.73-6.78
/// ms, E 96 d_state 4 2.25-2.27 -> 2.15-2.17 ms (both x0.955); E 384 d_state 16 at 64² and E 768 d_state 32 at 32²:
/// x0.94-0.99 (min of 10); llvm-mca -mcpu=sapphirerapids on the recurrence
/// loop (one step, d_state 8): 98 -> 82 cycles (its model puts every 512-bit FMA on port 0; the host runs two).
/// Measured and not kept: a second copy of A's lanes so that the compiler reads A from memory
/// instead of copying registers (no change); transparent huge pages for the scratch, x_dbl and y (no measurable
/// change at 256² against the noise; the column steps' page misses are hidden by the software prefetches). At 256²
/// a step costs ~20 % more than at 64²: the xs/y transposes (4 MB each way per item, ~10 % of the kernel) and the
/// column directions' strided walks.
/// Carry form (section 3.1, few channels): four phases over (direction, channel, chunk) items; directions 2, 1, 3
/// write their partial outputs to workspace scratch and the last phase adds them to y in the merge order.
import HybridIR

extension KernelEmitter {
    /// Lanes per pixel the recurrent form's thread scratch is sized for (ScratchNeeds: 2·lanes·L floats): the widest
    /// HC_VLEN of any target (16, AVX-512); the kernel asserts it statically.
    static let ss2dScratchLanes = ScratchNeeds.ss2dScratchLanes

    /// How many steps ahead the recurrent form prefetches u and y (a step takes ~45 ns at d_state 8 on the host).
    static let ss2dPrefetchSteps = 16

    /// Steps per block of the recurrent form's two passes (dt and u first, then the recurrence): the block's dt and
    /// u take 2 · 32 vectors (4 KB at AVX-512) next to the chunk's x_dbl rows in L1.
    static let ss2dStepBlock = 32

    /// The C statements that set `p`, the pixel direction `k` reads at step `t`, and `xd`, the first of its
    /// R + 2N x_dbl values at that pixel (consecutive values XS floats apart).
    static func ss2dStep(_ indent: String) -> String {
        """
        \(indent)const long sq = k >= 2 ? L - 1 - t : t;
        \(indent)const long p = (k & 1) ? (sq % H) * W + sq / H : sq;
        \(indent)const float *xd = XD_AT(p, k);

        """
    }

    /// dt = softplus(dt_projs_weight[ch] · dt_raw + bias[ch]) for channel `ch` (= k·E + d) at the step's pixel.
    static func ss2dDelta(_ indent: String) -> String {
        """
        \(indent)float dt = 0.0f;
        \(indent)for (long j = 0; j < R; j++) dt += x2[ch * R + j] * xd[j * XS];
        \(indent)dt = hc_softplusf(dt + x5[ch]);

        """
    }

    static func ss2dScan(_ k: Kernel, phase: Int) throws -> String {
        let (chunk, form) = try ShapeRules.chunkedScanParameters(k.op.attributes)
        let tokenMajor = try k.op.attributes.string("x_dbl_layout") == "token_major"
        let r = k.operands[2].shape[2].coefficient, n = k.operands[3].shape[1].coefficient
        let xdAt = tokenMajor ? "x1 + (P) * (4 * J) + (K) * J" : "x1 + (K) * J * L + (P)"
        var s = """
            const long E = x0_d1, H = x0_d2, W = x0_d3, L = H * W, R = \(r), NS = \(n), J = R + 2 * NS, T = \(chunk);
            const long XS = \(tokenMajor ? "1" : "L");
            #define XD_AT(P, K) (\(xdAt))
            long b, e;
            (void)J; (void)XS; (void)R; (void)T; (void)H; (void)W;

        """
        if form == "recurrent" {
            let sb = min(chunk, ss2dStepBlock)
            // Token-major x_dbl: a step's J values are contiguous (one copy); planar: L apart.
            let gather = tokenMajor ? "memcpy(xdt[i], src, sizeof xdt[i]);" : "for (long j = 0; j < J; j++) xdt[i][j] = src[j * XS];"
            // The next chunk's x_dbl row of step t: its J floats are contiguous when token-major (one or two
            // lines); planar x_dbl (not what choose-layouts produces) has them L apart and is not prefetched.
            let prefetchXD = tokenMajor
                ? """
                                        if (t < nsteps) { const float *nx = XD_AT(pn[t], k); hc_prefetch(nx); hc_prefetch(nx + J - 1); }

                """
                : ""
            s += """
                /* Blocks of HC_VLEN channels, vector lanes = channels: the state is NS vectors, dt, softplus and
                   exp(dt A) are evaluated for all lanes at once, and a step's dt_raw, B and C (one pixel of x_dbl) are
                   broadcast. The block's xs is first copied pixel-major into the thread's scratch (one vector per
                   pixel) and its y is summed there, so every direction reads u and adds its output with one vector
                   access per step (a column-major step touches one cache line instead of one per channel); y
                   leaves planar at the end. */
                _Static_assert(HC_VLEN <= \(ss2dScratchLanes), "ss2d_scan: the thread scratch holds \(ss2dScratchLanes) lanes per pixel");
                const long ntiles = (E + HC_VLEN - 1) / HC_VLEN;
                float *restrict xr = a->thread_scratch + (long)tid * a->scratch_floats, *restrict yr = xr + L * HC_VLEN;
                hc_split(ntiles, tid, nt, &b, &e);
                for (long item = b; item < e; item++) {
                    const long d0 = item * HC_VLEN, nl = E - d0 < HC_VLEN ? E - d0 : HC_VLEN;
                    /* xs of the block, pixel-major: squares of HC_VLEN channels x HC_VLEN pixels transposed in
                       registers, the last < HC_VLEN pixels one by one; lanes past E are 0. */
                    long p0 = 0;
                    for (; p0 + HC_VLEN <= L; p0 += HC_VLEN) {
                        hc_vf v[HC_VLEN];
                        for (long i = 0; i < HC_VLEN; i++) v[i] = i < nl ? hc_vld(x0 + (d0 + i) * L + p0) : hc_vzero();
                        hc_vtranspose(v);
                        for (long i = 0; i < HC_VLEN; i++) hc_vst(xr + (p0 + i) * HC_VLEN, v[i]);
                    }
                    for (long p = p0; p < L; p++)
                        for (long i = 0; i < HC_VLEN; i++) xr[p * HC_VLEN + i] = i < nl ? x0[(d0 + i) * L + p] : 0.0f;
                    /* The directions in the merge order 0, 2, 1, 3: the first writes every pixel of the block's y,
                       the others add to it, so y = ((y0 + y2) + y1) + y3 element by element. */
                    for (int q = 0; q < 4; q++) {
                        const long k = q == 0 ? 0 : q == 1 ? 2 : q == 2 ? 1 : 3;
                        /* The direction's parameters per lane (A times log2 e for hc_vexp2_mul, kept >= -2^40 for its
                           domain: 2^(dt A log2 e) is 0 long before); lanes past E stay 0 (their state stays 0). */
                        float wt[\(r)][HC_VLEN], at[\(n)][HC_VLEN], dv[HC_VLEN], bv[HC_VLEN];
                        memset(wt, 0, sizeof wt); memset(at, 0, sizeof at); memset(dv, 0, sizeof dv); memset(bv, 0, sizeof bv);
                        for (long i = 0; i < nl; i++) {
                            const long ch = k * E + d0 + i;
                            for (long j = 0; j < R; j++) wt[j][i] = x2[ch * R + j];
                            for (long s = 0; s < NS; s++) {
                                const float al = x3[ch * NS + s] * 1.44269504088896341f;
                                at[s][i] = al < -0x1p40f ? -0x1p40f : al;
                            }
                            dv[i] = x4[ch];
                            bv[i] = x5[ch];
                        }
                        const hc_vf vd = hc_vld(dv), vb = hc_vld(bv);
                        hc_vf h[\(n)];
                        for (long s = 0; s < NS; s++) h[s] = hc_vzero();
                        /* px: the pixels of this chunk, pn: of the next one (computed one chunk ahead so that the
                           scan can prefetch the next chunk's x_dbl rows while it runs). */
                        long pxa[2][\(chunk)];
                        for (long l0 = 0, c = 0; l0 < L; l0 += T, c ^= 1) {
                            const long steps = l0 + T < L ? T : L - l0;
                            const long nsteps = l0 + T >= L ? 0 : l0 + 2 * T < L ? T : L - l0 - T;
                            long *px = pxa[c], *pn = pxa[c ^ 1];
                            /* The pixels: sq = t (k < 2) or L - 1 - t; column-major (k odd) walks (row, column) =
                               (sq % H, sq / H) incrementally, one division per chunk. */
                            for (long m = l0 == 0 ? 0 : 1; m < 2; m++) {
                                const long m0 = l0 + m * T, ms = m == 0 ? steps : nsteps;
                                long *dst = m == 0 ? px : pn;
                                if (ms == 0) break;
                                if (k & 1) {
                                    const long sq0 = k >= 2 ? L - 1 - m0 : m0;
                                    long hh = sq0 % H, ww = sq0 / H;
                                    for (long i = 0; i < ms; i++) {
                                        dst[i] = hh * W + ww;
                                        if (k < 2) { if (++hh == H) { hh = 0; ww++; } }
                                        else if (--hh < 0) { hh = H - 1; ww--; }
                                    }
                                } else {
                                    for (long i = 0; i < ms; i++) dst[i] = k >= 2 ? L - 1 - (m0 + i) : m0 + i;
                                }
                            }
                            /* The chunk's rows of x_dbl (dt_raw, B, C of each step), gathered before the scan needs
                               them (step-major, \(r + 2 * n) floats a step: \(chunk * (r + 2 * n) * 4) bytes). */
                            float xdt[\(chunk)][\(r + 2 * n)], dtb[\(sb)][HC_VLEN], ub[\(sb)][HC_VLEN];
                            for (long i = 0; i < steps; i++) {
                                const float *src = XD_AT(px[i], k);
                                \(gather)
                            }
                            /* The chunk in blocks of \(sb) steps, each in two passes. First dt = softplus(dt_proj ·
                               dt_raw + bias) and u of every step of the block (independent steps, so the vector units
                               overlap their long dependency chains), then the recurrence, whose steps depend on each
                               other only through h: per state 2^(dt A log2 e), h = decay h + dt u B, y += C h. */
                            for (long t0 = 0; t0 < steps; t0 += \(sb)) {
                                const long t1 = t0 + \(sb) < steps ? t0 + \(sb) : steps;
                                /* Four steps at a time in lockstep (hc_vsoftplus4), the block's last < 4 one by one.
                                   Prefetch u and y \(ss2dPrefetchSteps) steps ahead: a column-major step lands on a
                                   new 4 KB page (an image row of vectors), where the hardware prefetchers stop. */
                                long t = t0;
                                for (; t + 4 <= t1; t += 4) {
                                    for (long i = 0; i < 4; i++) {
                                        const long tp = t + i + \(ss2dPrefetchSteps);
                                        const long pp = tp < steps ? px[tp] : tp - steps < nsteps ? pn[tp - steps] : -1;
                                        if (pp >= 0) { hc_prefetch(xr + pp * HC_VLEN); hc_prefetchw(yr + pp * HC_VLEN); }
                                    }
                                    hc_vf dd[4];
                                    for (long i = 0; i < 4; i++) dd[i] = hc_vfma(hc_vld(wt[0]), hc_vset1(xdt[t + i][0]), vb);
                                    for (long j = 1; j < R; j++)
                                        for (long i = 0; i < 4; i++) dd[i] = hc_vfma(hc_vld(wt[j]), hc_vset1(xdt[t + i][j]), dd[i]);
                                    hc_vsoftplus4(dd);
                                    for (long i = 0; i < 4; i++) {
                                        hc_vst(dtb[t + i - t0], dd[i]);
                                        hc_vst(ub[t + i - t0], hc_vld(xr + px[t + i] * HC_VLEN));
                                    }
                                }
                                for (; t < t1; t++) {
                                    const long tp = t + \(ss2dPrefetchSteps);
                                    const long pp = tp < steps ? px[tp] : tp - steps < nsteps ? pn[tp - steps] : -1;
                                    if (pp >= 0) { hc_prefetch(xr + pp * HC_VLEN); hc_prefetchw(yr + pp * HC_VLEN); }
                                    hc_vf dt = vb;
                                    for (long j = 0; j < R; j++) dt = hc_vfma(hc_vld(wt[j]), hc_vset1(xdt[t][j]), dt);
                                    hc_vst(dtb[t - t0], hc_vsoftplus(dt));
                                    hc_vst(ub[t - t0], hc_vld(xr + px[t] * HC_VLEN));
                                }
                                for (long t = t0; t < t1; t++) {
                                    const float *xd = xdt[t];
                                    float *yp = yr + px[t] * HC_VLEN;
                                    /* The next chunk's x_dbl row of this step (on a new page too if column-major). */
            \(prefetchXD)                        const hc_vf dt = hc_vld(dtb[t - t0]), u = hc_vld(ub[t - t0]), du = hc_vmul(dt, u);
                                    /* dt for the decays, <= 2^20 for AVX-512's hc_vexp2_mul (its domain |dt A log2 e|
                                       <= 2^60; a larger dt decays to 0 all the same unless |A| < 1.2e-4); the other
                                       targets' clamp in hc_vexp2_decay. */
            #if defined(HC_TARGET_AVX512)
                                    const hc_vf dte = hc_vmin(dt, hc_vset1(0x1p20f));
            #else
                                    const hc_vf dte = dt;
            #endif
                                    hc_vf yv = hc_vzero();
                                    for (long s = 0; s < NS; s++) {
                                        const hc_vf da = hc_vexp2_mul(dte, hc_vld(at[s]));
                                        h[s] = hc_vfma(da, h[s], hc_vmul(du, hc_vset1(xd[R + s])));
                                        yv = hc_vfma(h[s], hc_vset1(xd[R + NS + s]), yv);
                                    }
                                    yv = hc_vfma(u, vd, yv);
                                    hc_vst(yp, q == 0 ? yv : hc_vadd(hc_vld(yp), yv));
                                }
                            }
                        }
                    }
                    /* y of the block back to planar, transposed as xs came in. */
                    for (p0 = 0; p0 + HC_VLEN <= L; p0 += HC_VLEN) {
                        hc_vf v[HC_VLEN];
                        for (long i = 0; i < HC_VLEN; i++) v[i] = hc_vld(yr + (p0 + i) * HC_VLEN);
                        hc_vtranspose(v);
                        for (long i = 0; i < nl; i++) hc_vst(y + (d0 + i) * L + p0, v[i]);
                    }
                    for (long p = p0; p < L; p++)
                        for (long i = 0; i < nl; i++) y[(d0 + i) * L + p] = yr[p * HC_VLEN + i];
                }
                #undef XD_AT

            """
            return s
        }
        s += """
            const long NC = (L + T - 1) / T, SLOTS = 4 * E * NC * 2 * NS;
            /* Direction k's output: y for k = 0, else its partial in the scratch after the chunk slots. */
            #define OUT_OF(K) ((K) == 0 ? y : scratch + SLOTS + ((K) == 2 ? 0 : (K) == 1 ? 1 : 2) * E * L)
            (void)SLOTS;

        """
        switch phase {
        case 0:
            s += """
                /* Phase 1: every (direction, channel, chunk) scans from a zero state; its output gets <hl_t, C_t> + D u,
                   its scratch slot the chunk's last local state and the exponent sums S = sum dt A. */
                hc_split(4 * E * NC, tid, nt, &b, &e);
                for (long item = b; item < e; item++) {
                    const long k = item / (E * NC), d = (item / NC) % E, c = item % NC, ch = k * E + d;
                    const long l0 = c * T, l1 = l0 + T < L ? l0 + T : L;
                    float *out = OUT_OF(k);
                    float h[\(n)], sum[\(n)];
                    for (long s = 0; s < NS; s++) { h[s] = 0.0f; sum[s] = 0.0f; }
                    for (long t = l0; t < l1; t++) {
            \(ss2dStep("            "))\(ss2dDelta("            "))            const float u = x0[d * L + p];
                        float yv = 0.0f;
                        for (long s = 0; s < NS; s++) {
                            const float da = dt * x3[ch * NS + s];
                            sum[s] += da;
                            h[s] = hc_expf(da) * h[s] + dt * xd[(R + s) * XS] * u;
                            yv += h[s] * xd[(R + NS + s) * XS];
                        }
                        out[d * L + p] = yv + u * x4[ch];
                    }
                    float *slot = scratch + item * 2 * NS;
                    for (long s = 0; s < NS; s++) { slot[s] = h[s]; slot[NS + s] = sum[s]; }
                }

            """
        case 1:
            // Phase 2 per (direction, channel): the slots are laid out (k·E + d, chunk).
            s += scanCarries(channels: "4 * E", n: n)
        case 2:
            s += """
                /* Phase 3: out_t += <exp(S_t) H_{c-1}, C_t> with S_t recomputed within the chunk (exponents <= 0).
                   The first chunk of each direction has no carry. */
                hc_split(4 * E * NC, tid, nt, &b, &e);
                for (long item = b; item < e; item++) {
                    const long k = item / (E * NC), d = (item / NC) % E, c = item % NC, ch = k * E + d;
                    if (c == 0) continue;
                    const long l0 = c * T, l1 = l0 + T < L ? l0 + T : L;
                    float *out = OUT_OF(k);
                    const float *carry = scratch + item * 2 * NS;
                    float sum[\(n)];
                    for (long s = 0; s < NS; s++) sum[s] = 0.0f;
                    for (long t = l0; t < l1; t++) {
            \(ss2dStep("            "))\(ss2dDelta("            "))            float yv = out[d * L + p];
                        for (long s = 0; s < NS; s++) {
                            sum[s] += dt * x3[ch * NS + s];
                            yv += hc_expf(sum[s]) * carry[s] * xd[(R + NS + s) * XS];
                        }
                        out[d * L + p] = yv;
                    }
                }

            """
        default:
            s += """
                /* Phase 4: the merge, y = ((y0 + y2) + y1) + y3, each element by one thread. */
                const float *p2 = OUT_OF(2), *p1 = OUT_OF(1), *p3 = OUT_OF(3);
                hc_split(E * L, tid, nt, &b, &e);
                for (long i = b; i < e; i++) y[i] = ((y[i] + p2[i]) + p1[i]) + p3[i];

            """
        }
        return s + """
            #undef OUT_OF
            #undef XD_AT

        """
    }
}
