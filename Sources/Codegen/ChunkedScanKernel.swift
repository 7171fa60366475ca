/// The C kernels of `chunked_selective_scan` (ARCHITECTURES.md 3.1): the recurrent form, parallel over tiles of
/// channels with the state in locals, and the carry form, three parallel phases over (channel, chunk) pairs.
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
            let tile = k.schedule.tile("channels")
            return """
                const long BT = x0_d0, D = x0_d1, L = x0_d2, NS = \(n), T = \(chunk), TD = \(tile);
                const long ntiles = (D + TD - 1) / TD;
                long b, e;
                hc_split(BT * ntiles, tid, nt, &b, &e);
                for (long item = b; item < e; item++) {
                    const long bb = item / ntiles, d0 = (item % ntiles) * TD, d1 = d0 + TD < D ? d0 + TD : D;
                    float hs[\(tile)][\(n)];
                    for (long d = 0; d < TD; d++)
                        for (long s = 0; s < NS; s++) hs[d][s] = 0.0f;
                    /* Chunk by chunk: every channel of the tile reads the same chunk of B and C while it is in L1. */
                    for (long l0 = 0; l0 < L; l0 += T) {
                        const long l1 = l0 + T < L ? l0 + T : L;
                        for (long d = d0; d < d1; d++) {
                            const long row = (bb * D + d) * L;
                            float *h = hs[d - d0];
                            for (long l = l0; l < l1; l++) {
                                const float dt = \(dtExpr);
                                const float u = x0[row + l];
                                float yv = 0.0f;
                                for (long s = 0; s < NS; s++) {
                                    h[s] = hc_expf(dt * x2[d * NS + s]) * h[s] + dt * \(index(3)) * u;
                                    yv += h[s] * \(index(4));
                                }
                                y[row + l] = \(skipped)\(gate);
                            }
                        }
                    }
                    (void)bb;
                }

            """
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
}
