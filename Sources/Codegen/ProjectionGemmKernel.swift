/// `matmul {transpose_a}`: y (M, N) = Aᵀ·B for A (K, M) planar and B (K, N), the GEMM `choose-layouts` makes
/// write a token-major output (A = the pixels' channels, B = the transposed weight: x_proj of SS2D's four
/// directions as one GEMM, y = x_dbl read by ss2d_scan), on register tiles like the GEMM micro-kernel's
/// (MicroKernel.swift) that read A in rows.
///
/// The operands' roles are swapped against the convolutions: the register tile is MR tokens (rows of y, one
/// broadcast per k from A) × NR = nv vectors of outputs (columns of y, vector loads of B), so that y is written
/// token-major with vector stores and the weights are the streamed, L1-resident operand:
///  - B, a constant, is prepacked at compile time as [ceil(N/NR)][K][NR] (`packColumns`, columns past N zero;
///    placed in the weights blob by KernelPlan); otherwise each slice's K block is packed into the thread's scratch;
///  - items of (block of ProjectionGemmTiles.tokens tokens, group of NR-column slices) go over threads (the slices
///    are grouped only when there are fewer than 4 items per thread); per K block (at most KC deep) the block's
///    rows of A are copied into the thread's scratch as [kc][rowStride] in whole vectors (planes of A are M floats
///    apart and would all map to the same L1 and L2 sets; rows rowStride apart spread over them), then for each
///    slice (its kc×NR block of B stays in L1) every MR-token tile runs `<k>_micro`, which reads its MR tokens of
///    row k at a + k·rowStride; the first K block starts from zero, later ones from the partial sums in y. (Packing
///    A into [tokens/MR][kc][MR] blocks instead, as the convolutions pack their panels, stores MR floats at a time
///    a whole block apart: at decoder_level1 of mambairunet that copy took about as long as the FMAs.)
///  - edge tiles run `<k>_rows` (fewer than MR tokens left: rows past the end neither loaded nor stored; the copy
///    zeroes the tokens past the block up to a whole tile, so the broadcasts read defined values) and `<k>_cols`
///    (the last slice when N is not a multiple of NR: only its vectors that hold columns, the last one loaded and
///    stored partially), so no tile goes through a copy.
/// Every element of y is summed over k in order (one FMA per term) by one item, whatever the threads.
import HybridIR

public enum ProjectionGemm {
    /// B (K, N) as [ceil(N/NR)][K][NR]: slice j holds columns j·NR..<j·NR + NR, k by k, columns past N zero.
    public static func packColumns(_ b: Tensor, nr: Int) -> Tensor {
        let k = b.shape.first ?? 0, n = b.shape.count > 1 ? b.shape[1] : 0
        let slices = (n + nr - 1) / max(1, nr)
        var d = [Float](repeating: 0, count: max(1, slices * k * nr))
        for q in 0..<k {
            for c in 0..<n { d[((c / nr) * k + q) * nr + c % nr] = b.data[q * n + c] }
        }
        return Tensor(shape: [d.count], data: d)
    }

    /// Whether `op` reads its packed operands column-packed (`packColumns`) instead of MicroKernel.pack's rows.
    public static func packsColumns(_ op: Operation) -> Bool {
        op.kind == .matmul && (try? op.attributes.bool("transpose_a", default: false)) == true
    }

    /// A register tile of `mr` rows (tokens) × `nv` vectors (columns) over a K block, with A read in rows `ast`
    /// floats apart (a[k*ast + r]) and B `bstride` floats per k; the first K block starts from zero (`first`),
    /// later ones from c. With `guarded`, rows at or past `mn` are neither loaded nor stored; the last vector holds
    /// `lastLanes` lanes (loaded and stored partially; nil: a whole vector). Every tile sums in the same order (one
    /// FMA per k), so an element of y is the same bits whichever tile computes it.
    static func tile(_ name: String, mr: Int, nv: Int, bstride: String, lastLanes: Int?, guarded: Bool) -> String {
        func load(_ r: Int, _ v: Int) -> String {
            let p = "c + \(r) * cs + \(v) * HC_VLEN"
            return v == nv - 1 && lastLanes != nil ? "hc_vld_partial(\(p), \(lastLanes!))" : "hc_vld(\(p))"
        }
        func store(_ r: Int, _ v: Int) -> String {
            let p = "c + \(r) * cs + \(v) * HC_VLEN"
            return v == nv - 1 && lastLanes != nil ? "hc_vst_partial(\(p), c\(r)\(v), \(lastLanes!));" : "hc_vst(\(p), c\(r)\(v));"
        }
        let row = { (r: Int, body: String) in !guarded || r == 0 ? body : "if (\(r) < mn) { \(body) }" }
        let what = guarded
            ? "an edge tile of \(mr) rows x \(nv) vectors\(lastLanes.map { " (the last one \($0) lanes)" } ?? "")"
            : "the \(mr) x \(nv)-vector register tile (\(mr * nv) accumulators, \(nv) loads, 1 broadcast)"
        var s = """
        /* \(name): \(what): for r < \(guarded ? "mn" : "\(mr)"),
           c[r*cs + j] = (first ? 0 : c[r*cs + j]) + sum_k a[k*ast + r] * b[k*\(bstride) + j]\(guarded ? "; rows r >= mn untouched" : ""). */
        static inline void \(name)(long kc, long ast, const float *restrict a, const float *restrict b, float *restrict c,
                                   long cs, int first\(guarded ? ", long mn" : "")) {

        """
        s += "    hc_vf " + (0..<mr).flatMap { r in (0..<nv).map { "c\(r)\($0) = hc_vzero()" } }.joined(separator: ", ") + ";\n"
        s += "    if (!first) {\n"
        for r in 0..<mr {
            s += "        " + row(r, (0..<nv).map { "c\(r)\($0) = \(load(r, $0));" }.joined(separator: " ")) + "\n"
        }
        s += "    }\n"
        s += MicroKernel.fmaLoop(rows: mr, mr: mr, nv: nv, bStep: bstride, aStep: "ast")
        for r in 0..<mr {
            s += "    " + row(r, (0..<nv).map { store(r, $0) }.joined(separator: " ")) + "\n"
        }
        s += "}\n\n"
        return s
    }
}

extension KernelEmitter {
    /// The register tiles `matmulTransposedA` calls: `<k>_micro`, `<k>_rows` and, when N is not a multiple of NR,
    /// `<k>_cols`.
    static func projectionGemmHelpers(_ k: Kernel) -> String {
        let t = gemmTiles(k)
        let n = k.result.shape[1].coefficient
        let bstride = "\(t.nv) * HC_VLEN"
        var s = "_Static_assert(HC_VLEN == \(t.vectorWidth), \"\(k.name): the tiles were chosen for \(t.vectorWidth) floats per vector\");\n\n"
        s += ProjectionGemm.tile("\(k.name)_micro", mr: t.mr, nv: t.nv, bstride: bstride, lastLanes: nil, guarded: false)
        s += ProjectionGemm.tile("\(k.name)_rows", mr: t.mr, nv: t.nv, bstride: bstride, lastLanes: nil, guarded: true)
        let tail = n % t.nr
        if tail != 0 {
            let vectors = (tail + t.vectorWidth - 1) / t.vectorWidth, lanes = tail - (vectors - 1) * t.vectorWidth
            s += ProjectionGemm.tile("\(k.name)_cols", mr: t.mr, nv: vectors, bstride: bstride,
                                     lastLanes: lanes == t.vectorWidth ? nil : lanes, guarded: true)
        }
        return s
    }

    static func matmulTransposedA(_ k: Kernel) -> String {
        let t = gemmTiles(k)
        let n = k.result.shape[1].coefficient
        let packed = k.packedOperands.contains(1)
        let tail = n % t.nr != 0
        let slice = packed ? """
                            const float *bs = x1 + (j * K + k0) * NR;
            """ : """
                            /* B is not a constant: this slice's K block, [kc][NR], columns past N zero. */
                            for (long k = 0; k < kc; k++)
                                for (long l = 0; l < NR; l++) bpack[k * NR + l] = l < pc ? x1[(k0 + k) * NN + n0 + l] : 0.0f;
                            const float *bs = bpack;
            """
        let call = tail ? """
                                if (pc < NR) \(k.name)_cols(kc, AS, as, bs, c, NN, first, mn);
                                else if (mn < MR) \(k.name)_rows(kc, AS, as, bs, c, NN, first, mn);
                                else \(k.name)_micro(kc, AS, as, bs, c, NN, first);
            """ : """
                                if (mn < MR) \(k.name)_rows(kc, AS, as, bs, c, NN, first, mn);
                                else \(k.name)_micro(kc, AS, as, bs, c, NN, first);
            """
        return """
            const long K = x0_d0, M = x0_d1, NN = y_d1;
            enum { MR = \(t.mr) };
            const long NR = \(t.nv) * HC_VLEN, KCMAX = \(t.kc), MC = \(ProjectionGemmTiles.tokens(t)), AS = \(ProjectionGemmTiles.rowStride(t));
            const long nkb = (K + KCMAX - 1) / KCMAX, kcs = nkb > 0 ? (K + nkb - 1) / nkb : 1;
            const long nsl = (NN + NR - 1) / NR, nmc = (M + MC - 1) / MC;
            long b, e;
            if (K == 0) {
                hc_split(M, tid, nt, &b, &e);
                for (long i = b; i < e; i++) memset(y + i * NN, 0, (size_t)NN * sizeof(float));
                return;
            }
            /* Items of (block of MC tokens, group of slices); slices are grouped only with fewer than 4 items per thread. */
            long ng = 1;
            while (nmc * ng < 4 * nt && ng < nsl) ng++;
            float *restrict apack = a->thread_scratch + (long)tid * a->scratch_floats, *restrict bpack = apack + AS * kcs;
            (void)bpack;
            hc_split(nmc * ng, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long l0 = (item / ng) * MC, mc = M - l0 < MC ? M - l0 : MC, g = item % ng;
                const long j0 = g * nsl / ng, j1 = (g + 1) * nsl / ng, nmb = (mc + MR - 1) / MR;
                for (long k0 = 0; k0 < K; k0 += kcs) {
                    const long kc = K - k0 < kcs ? K - k0 : kcs;
                    const int first = k0 == 0;
                    /* Copy the block's rows of A: apack[k*AS + t] = A[k0 + k][l0 + t] for t < mc, 0 for mc <= t < nmb*MR. */
                    for (long k = 0; k < kc; k++) {
                        const float *src = x0 + (k0 + k) * M + l0;
                        float *dst = apack + k * AS;
                        long t = 0;
                        for (; t + HC_VLEN <= mc; t += HC_VLEN) hc_vst(dst + t, hc_vld(src + t));
                        if (t < mc) { hc_vst(dst + t, hc_vld_partial(src + t, (int)(mc - t))); t += HC_VLEN; }
                        for (; t < nmb * MR; t += HC_VLEN) hc_vst(dst + t, hc_vzero());
                    }
                    for (long j = j0; j < j1; j++) {
                        const long n0 = j * NR, pc = NN - n0 < NR ? NN - n0 : NR;
                        (void)pc;
        \(slice)
                        for (long i = 0; i < nmb; i++) {
                            const long mn = mc - i * MR < MR ? mc - i * MR : MR;
                            const float *as = apack + i * MR;
                            float *c = y + (l0 + i * MR) * NN + n0;
        \(call)
                        }
                    }
                }
            }

        """
    }
}
