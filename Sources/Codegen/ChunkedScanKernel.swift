/// The C kernels of `chunked_selective_scan` (ARCHITECTURES.md 3.1): the recurrent form, parallel over blocks of one
/// vector of channels (lanes = channels) with the state in vectors, and the carry form, three parallel phases over
/// (channel, chunk) pairs.
import HybridIR

extension KernelEmitter {
    /// Parallel phases of a kernel computing `op`: the carry form has three (local scans, carries, corrections).
    /// `ss2d_scan` in the carry form has four (the last merges the directions).
    public static func phases(of op: Operation) -> Int {
        guard (try? op.attributes.string("form")) == "carry" else { return 1 }
        switch op.kind {
        case .chunkedSelectiveScan: return 3
        case .ss2dScan: return 4
        default: return 1
        }
    }

    /// Workspace floats a kernel computing `op` needs besides its output, at the given operand shapes. The carry
    /// form keeps, per (batch, channel, chunk), the chunk's last local state and its exponent sums (2·N floats);
    /// phase 2 overwrites the states with the carry into the chunk.
    public static func scratchFloats(_ op: Operation, operandShapes: [[Int]]) -> Int {
        ScratchNeeds.of(op, operandShapes: operandShapes, resultShape: operandShapes[0],
                        schedule: Schedule(parallelOver: "", loopOrder: [], vectorWidth: 1)).shared
    }

    /// Phase 2 of a carry-form scan over `channels` (a C expression) scans of NC chunks, slots of 2·NS floats per
    /// (channel, chunk) in `scratch`: the chunk-boundary recurrence H_c = exp(S_c) H_{c-1} + hl_c per channel;
    /// each slot's state is replaced by the carry into its chunk, H_{c-1}.
    static func scanCarries(channels: String, n: Int) -> String {
        """
            /* Phase 2: the chunk-boundary recurrence H_c = exp(S_c) H_{c-1} + hl_c per channel; each slot's
               state is replaced by the carry into its chunk, H_{c-1}. */
            hc_split(\(channels), tid, nt, &b, &e);
            for (long ch = b; ch < e; ch++) {
                float carry[\(n)];
                for (long s = 0; s < NS; s++) carry[s] = 0.0f;
                for (long c = 0; c < NC; c++) {
                    float *slot = scratch + (ch * NC + c) * 2 * NS;
                    for (long s = 0; s < NS; s++) {
                        const float local = slot[s], decay = hc_expf(slot[NS + s]);
                        slot[s] = carry[s];
                        carry[s] = decay * carry[s] + local;
                    }
                }
            }

        """
    }

    static func chunkedSelectiveScan(_ k: Kernel, phase: Int) throws -> String {
        let a = k.op.attributes
        let (chunk, form) = try ShapeRules.chunkedScanParameters(a)
        let (n, index, dtExpr, skipped, gate) = try scanExpressions(k)

        if form == "recurrent" {
            return try chunkedSelectiveScanVector(k, n: n, chunk: chunk)
        }
        let head = """
            const long BT = x0_d0, D = x0_d1, L = x0_d2, NS = \(n), T = \(chunk);
            const long NC = (L + T - 1) / T;
            long b, e;

        """
        switch phase {
        case 0:
            return head + """
                /* Phase 1: every chunk scans from a zero state; y gets <hl_t, C_t> + D u, the scratch slot of the
                   chunk its last local state and the exponent sums S = sum dt A (the chunk's decay is exp(S)). */
                hc_split(BT * D * NC, tid, nt, &b, &e);
                for (long item = b; item < e; item++) {
                    const long ch = item / NC, c = item % NC, bb = ch / D, d = ch % D, row = ch * L;
                    const long l0 = c * T, l1 = l0 + T < L ? l0 + T : L;
                    float h[\(n)], sum[\(n)];
                    for (long s = 0; s < NS; s++) { h[s] = 0.0f; sum[s] = 0.0f; }
                    for (long l = l0; l < l1; l++) {
                        const float dt = \(dtExpr);
                        const float u = x0[row + l];
                        float yv = 0.0f;
                        for (long s = 0; s < NS; s++) {
                            const float da = dt * x2[d * NS + s];
                            sum[s] += da;
                            h[s] = hc_expf(da) * h[s] + dt * \(index(3)) * u;
                            yv += h[s] * \(index(4));
                        }
                        y[row + l] = \(skipped);
                    }
                    float *slot = scratch + item * 2 * NS;
                    for (long s = 0; s < NS; s++) { slot[s] = h[s]; slot[NS + s] = sum[s]; }
                    (void)bb;
                }

            """
        case 1:
            return head + scanCarries(channels: "BT * D", n: n)
        default:
            return head + """
                /* Phase 3: y_t += <exp(S_t) H_{c-1}, C_t> with S_t recomputed within the chunk (exponents <= 0),
                   then the z gate. The first chunk has no carry. */
                hc_split(BT * D * NC, tid, nt, &b, &e);
                for (long item = b; item < e; item++) {
                    const long ch = item / NC, c = item % NC, bb = ch / D, d = ch % D, row = ch * L;
                    const long l0 = c * T, l1 = l0 + T < L ? l0 + T : L;
                    const float *carry = scratch + item * 2 * NS;
                    float sum[\(n)];
                    for (long s = 0; s < NS; s++) sum[s] = 0.0f;
                    for (long l = l0; l < l1; l++) {
                        float yv = y[row + l];
                        if (c > 0) {
                            const float dt = \(dtExpr);
                            for (long s = 0; s < NS; s++) {
                                const float da = dt * x2[d * NS + s];
                                sum[s] += da;
                                yv += hc_expf(sum[s]) * carry[s] * \(index(4));
                            }
                        }
                        y[row + l] = yv\(gate);
                    }
                    (void)bb;
                }

            """
        }
    }

    /// The recurrent form in vectors: blocks of HC_VLEN channels of one batch item (lanes = channels) with the state
    /// in NS vectors, exp(dt·A) by hc_vexp and softplus by hc_vsoftplus. Per chunk, the lanes' u, delta and z (planar,
    /// L apart) are gathered into step-major scratch and y leaves through one. B and C are broadcast when every lane
    /// reads the same value ((B, N, L), or (B, G, N, L) with the block inside one group), read from per-lane tables
    /// when fixed per channel ((D, N)), and gathered lane by lane otherwise (a block spanning groups).
    static func chunkedSelectiveScanVector(_ k: Kernel, n: Int, chunk: Int) throws -> String {
        let roles = try ShapeRules.selectiveScanRoles(k.op.attributes)
        let softplus = try k.op.attributes.bool("delta_softplus")
        func operand(_ role: String) -> String? { roles.firstIndex(of: role).map { "x\($0)" } }
        let ranks = k.operands.map(\.shape.count)
        let bias = operand("delta_bias"), skip = operand("D"), z = operand("z")
        /// The C of B (i = 3) or C (i = 4) for state s at step l as a vector named `name`.
        func value(_ i: Int, _ name: String) -> String {
            switch ranks[i] {
            case 2:
                return "const hc_vf \(name) = hc_vld(fix\(i)[s]);"
            case 3:
                return "const hc_vf \(name) = hc_vset1(x\(i)[(bb * NS + s) * L + l]);"
            default:
                return """
                    hc_vf \(name);
                                    if (g\(i)0 == g\(i)1) \(name) = hc_vset1(x\(i)[((bb * x\(i)_d1 + g\(i)0) * NS + s) * L + l]);
                                    else {
                                        float lanes[HC_VLEN];
                                        for (long i = 0; i < HC_VLEN; i++)
                                            lanes[i] = i < nl ? x\(i)[((bb * x\(i)_d1 + (d0 + i) / (D / x\(i)_d1)) * NS + s) * L + l] : 0.0f;
                                        \(name) = hc_vld(lanes);
                                    }
                    """
            }
        }
        var setup = ""
        for i in [3, 4] {
            if ranks[i] == 2 {
                setup += """
                        float fix\(i)[\(n)][HC_VLEN];
                        memset(fix\(i), 0, sizeof fix\(i));
                        for (long i = 0; i < nl; i++)
                            for (long s = 0; s < NS; s++) fix\(i)[s][i] = x\(i)[(d0 + i) * NS + s];

                """
            } else if ranks[i] == 4 {
                setup += """
                        const long g\(i)0 = d0 / (D / x\(i)_d1), g\(i)1 = (d0 + nl - 1) / (D / x\(i)_d1);

                """
            }
        }
        let dtLine = bias != nil ? "hc_vadd(hc_vld(dtt[t]), vbias)" : "hc_vld(dtt[t])"
        var out = "yv"
        if skip != nil { out = "hc_vfma(u, vskip, yv)" }
        if z != nil { out = "hc_vmul(\(out), hc_vsilu(hc_vld(zt[t])))" }
        return """
            const long BT = x0_d0, D = x0_d1, L = x0_d2, NS = \(n), T = \(chunk);
            const long nblk = (D + HC_VLEN - 1) / HC_VLEN;
            long b, e;
            hc_split(BT * nblk, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long bb = item / nblk, d0 = (item % nblk) * HC_VLEN, nl = D - d0 < HC_VLEN ? D - d0 : HC_VLEN;
                /* Per-lane parameters; lanes past D stay 0 (their state stays 0 and nothing is stored). */
                float at[\(n)][HC_VLEN], pb[HC_VLEN], pd[HC_VLEN];
                memset(at, 0, sizeof at); memset(pb, 0, sizeof pb); memset(pd, 0, sizeof pd);
                for (long i = 0; i < nl; i++) {
                    for (long s = 0; s < NS; s++) at[s][i] = x2[(d0 + i) * NS + s];
                    \(bias.map { "pb[i] = \($0)[d0 + i];" } ?? "")
                    \(skip.map { "pd[i] = \($0)[d0 + i];" } ?? "")
                }
                const hc_vf vbias = hc_vld(pb), vskip = hc_vld(pd);
                (void)vbias; (void)vskip;
            \(setup)        hc_vf h[\(n)];
                for (long s = 0; s < NS; s++) h[s] = hc_vzero();
                for (long l0 = 0; l0 < L; l0 += T) {
                    const long steps = l0 + T < L ? T : L - l0;
                    float ut[\(chunk)][HC_VLEN], dtt[\(chunk)][HC_VLEN], zt[\(chunk)][HC_VLEN], yt[\(chunk)][HC_VLEN];
                    (void)zt;
                    for (long i = 0; i < HC_VLEN; i++) {
                        if (i < nl) {
                            const long row = (bb * D + d0 + i) * L + l0;
                            for (long t = 0; t < steps; t++) { ut[t][i] = x0[row + t]; dtt[t][i] = x1[row + t]; }
                            \(z.map { "for (long t = 0; t < steps; t++) zt[t][i] = \($0)[row + t];" } ?? "")
                        } else {
                            for (long t = 0; t < steps; t++) { ut[t][i] = 0.0f; dtt[t][i] = 0.0f; zt[t][i] = 0.0f; }
                        }
                    }
                    for (long t = 0; t < steps; t++) {
                        const long l = l0 + t;
                        const hc_vf dt = \(softplus ? "hc_vsoftplus(\(dtLine))" : dtLine);
                        const hc_vf u = hc_vld(ut[t]), du = hc_vmul(dt, u);
                        hc_vf yv = hc_vzero();
                        (void)l;
                        for (long s = 0; s < NS; s++) {
                            \(value(3, "vb_"))
                            \(value(4, "vc_"))
                            h[s] = hc_vfma(hc_vexp(hc_vmul(dt, hc_vld(at[s]))), h[s], hc_vmul(du, vb_));
                            yv = hc_vfma(h[s], vc_, yv);
                        }
                        hc_vst(yt[t], \(out));
                    }
                    for (long i = 0; i < nl; i++) {
                        float *yr = y + (bb * D + d0 + i) * L + l0;
                        for (long t = 0; t < steps; t++) yr[t] = yt[t][i];
                    }
                }
            }

        """
    }
}
