/// The one GEMM micro-kernel generator: every GEMM-shaped kernel (1x1 and dense KxK convolutions, the projections
/// of `fused_feed_forward`, the qkv rows, Gram partials and output GEMM of `fused_attention`) calls C printed here.
///
/// Layout is planar: Y[m][p] = sum_k W[m][k] · X[k][p]. The C has three levels:
///  - `<prefix>_micro`: one MR×NR register tile (MR output channels × NR = nv vectors of pixels, GemmTiles) over a
///    K block: MR·nv accumulators, nv pixel loads and one weight broadcast per k, weights read from an MR-interleaved
///    block ([k][MR]) and pixels from a packed panel slice ([k][NR]), both contiguous;
///  - `<prefix>_gemm` (one per use): for each panel of NC pixels and each K block of at most KC, packs the input
///    panel into per-thread scratch as [NC/NR][kc][NR] (so the tile streams contiguous memory instead of rows a whole
///    image plane apart, which all map to the same L1 sets), applying the fused prologue (the folded layer norm's
///    x̂ = (x − μ)·r) or, for dense KxK convolutions, gathering the shifted, zero-padded input rows (implicit GEMM,
///    stride 1 or 2; with an unfolded norm, `norm_affine`, at stride 2 each tap inside the image normalised as
///    (x − μ)·r·γ + β from statistics the kernel body computed once per item for the input rows its panel reads,
///    each tap in the padding 0; at stride 1 the body copies the item's input rows once into a zero-padded slab,
///    normalises each pixel there once, and the panel's taps are plain contiguous runs of slab rows); then runs the tiles of a range of MR-channel blocks, the first K block starting from the bias,
///    later ones from the partial sums in Y (with a fused residual, the first starts from bias + res·scale, written
///    into Y element by element, so Y may be the residual's slot); after the last K block the fused epilogue
///    (bias-free norm scale r·acc + b, activation) runs on each tile while it is in L1;
///  - the kernel bodies split (image, NC-pixel panel, group of channel blocks) items over threads.
/// Weights that are constants are prepacked at compile time ([M/MR][K][MR], zero rows padded: `pack`, placed in
/// the weights blob by KernelPlan); others (kernel tests without constant folding) are packed per K block into
/// the same scratch. Every output element is summed in one fixed order (k ascending) whatever the threads.
import HybridIR

public enum MicroKernel {
    /// W (M rows, K = the product of the other dims) as [ceil(M/MR)][K][MR], rows past M zero.
    public static func pack(_ t: Tensor, mr: Int) -> Tensor {
        let m = t.shape.first ?? 1, k = m == 0 ? 0 : t.count / m
        let blocks = (m + mr - 1) / mr
        var d = [Float](repeating: 0, count: max(1, blocks * k * mr))
        for row in 0..<m {
            let b = row / mr, r = row % mr
            for q in 0..<k { d[(b * k + q) * mr + r] = t.data[row * k + q] }
        }
        return Tensor(shape: [d.count], data: d)
    }

    /// W (M rows in `groups` equal groups of M/groups) with each group packed as above one after the other, so that
    /// a group's MR-row blocks start at a block boundary: fused_feed_forward's project_in, whose two halves (the
    /// gate's two inputs) are read block by block at the same hidden channels.
    public static func pack(_ t: Tensor, mr: Int, groups: Int) -> Tensor {
        let m = t.shape.first ?? 1
        guard groups > 1, m % groups == 0, m > 0 else { return pack(t, mr: mr) }
        let k = t.count / m, rows = m / groups
        var d: [Float] = []
        for g in 0..<groups {
            let part = Tensor(shape: [rows, k], data: Array(t.data[(g * rows * k)..<((g + 1) * rows * k)]))
            d += pack(part, mr: mr).data.prefix((rows + mr - 1) / mr * k * mr)
        }
        return Tensor(shape: [max(1, d.count)], data: d.isEmpty ? [0] : d)
    }

    /// How many row groups `pack(_:mr:groups:)` packs operand `operand` of `op` in (1: the plain block layout).
    public static func packedGroups(_ op: Operation, operand: Int) -> Int {
        guard op.kind == .fusedFeedForward, let roles = try? ShapeRules.fusedFeedForwardRoles(op.attributes) else { return 1 }
        return roles.firstIndex(of: "project_in") == operand ? 2 : 1
    }

    /// Operand slots of `op` whose constant weights the micro-kernel reads prepacked.
    public static func packedOperands(_ op: Operation) -> [Int] {
        switch op.kind {
        case .conv2d:
            return (try? op.attributes.int("groups")) == 1 ? [1] : []
        case .fusedFeedForward:
            guard let roles = try? ShapeRules.fusedFeedForwardRoles(op.attributes) else { return [] }
            return ["project_in", "project_out"].compactMap { roles.firstIndex(of: $0) }
        case .fusedPointwiseDepthwise:
            return [1]
        case .fusedAttention:
            guard let roles = try? ShapeRules.fusedAttentionRoles(op.attributes) else { return [] }
            return roles.firstIndex(of: "qkv.weight").map { [$0] } ?? []
        case .matmul where ProjectionGemm.packsColumns(op):
            // B, column-packed (ProjectionGemm.packColumns).
            return [1]
        default:
            return []
        }
    }

    /// How a `_gemm` reads its input panel.
    public enum Input {
        /// X[k][p] = x[k*xs + p]: a 1x1 convolution / projection.
        case pointwise
        /// X[(ci,ky,kx)][p] = x[ci][oy*S + ky - PAD][ox*S + kx - PAD] (0 outside) for output pixel p = oy*OW + ox.
        case conv(kh: Int, kw: Int, stride: Int, padding: Int)
        /// A stride-1 KxK convolution with an unfolded norm (norm_affine), read from the slab the kernel body
        /// built for its item: input rows ylo .. ylo+SR-1 of every channel already normalised, rows outside the
        /// image 0, each row W2 = W + 2·padding floats with the padding columns 0 (slab[(ci·SR + r)·W2 + c]), so
        /// that every tap of an output row segment is one contiguous run of a slab row.
        case slab(kh: Int, kw: Int, padding: Int)

        var isSlab: Bool {
            if case .slab = self { return true }
            return false
        }
    }

    public struct Options {
        public var input: Input = .pointwise
        /// A folded layer norm: with_bias normalises what it packs; bias_free scales the sums by r in the epilogue.
        public var norm: FoldedNorm? = nil
        /// Weights prepacked ([M/MR][K][MR]); otherwise W is [M][K] and each K block of a channel block is packed.
        public var packed: Bool = true
        /// C expression of the activation applied to `v` in the epilogue, nil for none.
        public var activation: String? = nil
        /// The same activation on an hc_vf `v` (hc_vgelu, hc_vsilu, ...): with it, or without an activation, the
        /// epilogue runs in vectors (a partial vector at the end of a row of the tile).
        public var vectorActivation: String? = nil
        /// Rows R (0 < R < MR) of the last channel block (M mod MR, known at compile time): its full tiles run on
        /// `<micro>_micro<R>` (printed by `narrowMicro`), R rows instead of MR, without the tail tile's copies.
        public var narrowRows: Int? = nil
        /// Full-height tiles whose last slice is a whole number of vectors narrower than NR (pc = v·HC_VLEN, v < nv)
        /// run on `<micro>_micro_c<v>` (printed by `narrowColumnMicros`), v vectors instead of nv and without the
        /// tail tile's copies: a row of W pixels (the fused attention's qkv rows) is not a multiple of NR.
        public var narrowColumns: Bool = false
        /// Adds res[m*rs + p]: the first K block starts from it (y may alias res).
        public var residual: Bool = false
        /// With `residual`: the residual is scaled per channel, res[m*rs + p]·rscale[m] (the S block's skip scale).
        public var residualScaled: Bool = false
        public init() {}
    }

    /// `<prefix>_micro`: the register tile. c[r*cs + j] = (init ? init[r] : c[r*cs + j]) + sum_k a[k*MR + r]·b[k*NR + j].
    public static func micro(_ prefix: String, _ t: GemmTiles) -> String {
        let mr = t.mr, nv = t.nv
        let s = """
        /* \(prefix)_micro: the \(mr) x \(nv)-vector register tile (\(mr * nv) accumulators, \(nv) loads, 1 broadcast): for r < \(mr),
           j < NR = \(nv)*HC_VLEN, c[r*cs + j] = (init ? init[r] : c[r*cs + j]) + sum_k a[k*\(mr) + r] * b[k*NR + j]. */
        static inline void \(prefix)_micro(long kc, const float *restrict a, const float *restrict b, float *restrict c,
                                           long cs, const float *restrict init) {

        """
        return s + tile(rows: mr, mr: mr, nv: nv, bStep: "\(nv) * HC_VLEN")
    }

    /// The body shared by every register tile of this file (`micro`, `narrowMicro`, `microStrided`) after its
    /// header: `rows` x `nv` accumulators set from `init` or loaded from c, the k loop (`fmaLoop`), the stores.
    static func tile(rows: Int, mr: Int, nv: Int, bStep: String) -> String {
        var s = "    hc_vf " + (0..<rows).flatMap { r in (0..<nv).map { "c\(r)\($0)" } }.joined(separator: ", ") + ";\n"
        s += "    if (init) {\n"
        for r in 0..<rows {
            s += "        c\(r)0 = hc_vset1(init[\(r)]);" + (1..<max(1, nv)).map { " c\(r)\($0) = c\(r)0;" }.joined() + "\n"
        }
        s += "    } else {\n"
        for r in 0..<rows {
            s += "        " + (0..<nv).map { "c\(r)\($0) = hc_vld(c + \(r) * cs + \($0) * HC_VLEN);" }.joined(separator: " ") + "\n"
        }
        s += "    }\n"
        s += fmaLoop(rows: rows, mr: mr, nv: nv, bStep: bStep)
        for r in 0..<rows {
            s += "    " + (0..<nv).map { "hc_vst(c + \(r) * cs + \($0) * HC_VLEN, c\(r)\($0));" }.joined(separator: " ") + "\n"
        }
        return s + "}\n\n"
    }

    /// The k loop of a register tile: per k, nv vectors of B (then b += bStep), and per row r < rows one broadcast
    /// of a[r] (then a += aStep: A interleaved by mr unless the caller reads A in rows of another stride) and nv FMAs
    /// into c<r><v>.
    static func fmaLoop(rows: Int, mr: Int, nv: Int, bStep: String, aStep: String? = nil) -> String {
        var s = "    for (long k = 0; k < kc; k++, a += \(aStep ?? "\(mr)"), b += \(bStep)) {\n"
        s += "        const hc_vf " + (0..<nv).map { "b\($0) = hc_vld(b + \($0) * HC_VLEN)" }.joined(separator: ", ") + ";\n"
        s += "        hc_vf w;\n"
        for r in 0..<rows {
            s += "        w = hc_vset1(a[\(r)]);" + (0..<nv).map { " c\(r)\($0) = hc_vfma(w, b\($0), c\(r)\($0));" }.joined() + "\n"
        }
        return s + "    }\n"
    }

    /// `<prefix>_micro<R>`: the register tile of the last R < MR rows of a channel block (weights still read from
    /// the MR-interleaved block, a[k*MR + r] for r < R): R·nv accumulators, the same k order and FMAs as `micro`,
    /// so each output element is the same bits as through the MR-row tile.
    public static func narrowMicro(_ prefix: String, _ t: GemmTiles, rows: Int) -> String {
        let mr = t.mr, nv = t.nv
        let s = """
        /* \(prefix)_micro\(rows): the \(rows) x \(nv)-vector register tile of a channel block's last \(rows) rows (weights [k][\(mr)]): for
           r < \(rows), j < NR = \(nv)*HC_VLEN, c[r*cs + j] = (init ? init[r] : c[r*cs + j]) + sum_k a[k*\(mr) + r] * b[k*NR + j]. */
        static inline void \(prefix)_micro\(rows)(long kc, const float *restrict a, const float *restrict b, float *restrict c,
                                           long cs, const float *restrict init) {

        """
        return s + tile(rows: rows, mr: mr, nv: nv, bStep: "\(nv) * HC_VLEN")
    }

    /// `<prefix>_micro_c<v>` for 0 < v < nv: the register tile of a slice's first v vectors (B still read from the
    /// NR-wide panel, b += NR per k): MR·v accumulators, the same k order and FMAs as `micro`, so each output
    /// element is the same bits as through the full tile.
    public static func narrowColumnMicros(_ prefix: String, _ t: GemmTiles) -> String {
        let mr = t.mr, nv = t.nv
        return (1..<max(1, nv)).map { v in
            """
            /* \(prefix)_micro_c\(v): the \(mr) x \(v)-vector register tile of a slice's first \(v) of \(nv) vectors: for r < \(mr),
               j < \(v)*HC_VLEN, c[r*cs + j] = (init ? init[r] : c[r*cs + j]) + sum_k a[k*\(mr) + r] * b[k*\(nv)*HC_VLEN + j]. */
            static inline void \(prefix)_micro_c\(v)(long kc, const float *restrict a, const float *restrict b, float *restrict c,
                                               long cs, const float *restrict init) {

            """ + tile(rows: mr, mr: mr, nv: v, bStep: "\(nv) * HC_VLEN")
        }.joined()
    }

    /// The parameters of a `_gemm` for `input`, as C.
    static func parameters(_ o: Options) -> String {
        // With a residual, y may be the residual's own slot (plan-memory runs the conv in place over it).
        var s = o.residual ? "float *y, long ys, const float *restrict x, " : "float *restrict y, long ys, const float *restrict x, "
        switch o.input {
        case .pointwise: s += "long xs, long np"
        case .conv: s += "long H, long W, long OW, long p0, long np"
        case .slab: s += "long SR, long W2, long OW, long p0, long np, long ylo"
        }
        s += ",\n        const float *restrict w, const float *restrict bias, long M, long K, long mb0, long mb1, float *restrict pack"
        if let norm = o.norm, !o.input.isSlab {
            s += ", const float *restrict mean, const float *restrict rstd"
            if norm.gated {
                // Gated (1x1): the panel's statistics, γ and β (NULL: none), and the gate z (x's layout).
                s += ", const float *restrict gamma, const float *restrict beta, const float *restrict z"
            } else if norm.affine {
                // Unfolded (dense convolutions): the statistics of input rows iy0.. (row stride W), γ and β (NULL: none).
                s += ", long iy0, const float *restrict gamma, const float *restrict beta"
            }
        }
        if o.residual { s += ", const float *res, long rs" }
        if o.residual && o.residualScaled { s += ", const float *restrict rscale" }
        return s
    }

    /// `<prefix>_gemm`: Y (rows m of channel blocks [mb0, mb1), pixels p < np, row stride ys) from the input, the
    /// weights w (packed or [M][K]) and bias (NULL: none), through `<micro>_micro` (printed separately).
    public static func gemm(_ prefix: String, micro: String, _ t: GemmTiles, _ o: Options) -> String {
        let mr = t.mr, nv = t.nv
        let what: String
        let pack: String
        switch o.input {
        case .pointwise where o.norm?.gated == true:
            // A gated norm (fuse-gated-norm): x̂ = ((x − μ)·r·γ + β)·silu(z) (with_bias) or x·r·γ·silu(z) (bias_free),
            // in vectors; the last slice's partial vectors load only the pixels that exist (the lanes past them are
            // 0 and give 0).
            let centered = o.norm!.centered
            what = "X[k][p] = x[k*xs + p]" + (centered ? " normalised ((x - mean[p]) * rstd[p] * gamma[k] + beta[k])" : " normalised x * rstd[p] * gamma[k]")
                + " * silu(z[k*xs + p])"
            let gated = { (ld: (String) -> String) in
                let affine = centered ? "hc_vfma(hc_vmul(hc_vsub(\(ld("xr")), \(ld("mv"))), \(ld("rv"))), gv, bv)"
                                      : "hc_vmul(hc_vmul(\(ld("xr")), \(ld("rv"))), gv)"
                return "hc_vmul(\(affine), hc_vsilu(\(ld("zr"))))"
            }
            let full = gated { "hc_vld(\($0) + l0 + v)" }, part = gated { "hc_vld_partial(\($0) + l0 + v, (int)q)" }
            pack = """
                        /* Pack the panel: panel[(j*kc + k)*NR + l] = X[k0 + k][pb + j*NR + l], normalised and gated, zero past the last pixel. */
                        for (long k = 0; k < kc; k++) {
                            const float *xr = x + (k0 + k) * xs + pb, *zr = z + (k0 + k) * xs + pb;
                            const float *mv = mean + pb, *rv = rstd + pb;
                            const hc_vf gv = hc_vset1(gamma[k0 + k]), bv = hc_vset1(beta ? beta[k0 + k] : 0.0f);
                            (void)bv; (void)mv;
                            /* The next NC pixels of both rows (the next panel, or the thread's next item): the rows are a
                               plane apart, too many streams for the hardware prefetchers. */
                            for (long u = 0; u < NC; u += 16) {
                                hc_prefetch(xr + NC + u);
                                hc_prefetch(zr + NC + u);
                            }
                            for (long j = 0; j < nslices; j++) {
                                float *dst = panel + (j * kc + k) * NR;
                                const long l0 = j * NR, n = pn - l0 < NR ? pn - l0 : NR;
                                for (long v = 0; v < NR; v += HC_VLEN) {
                                    const long q = n - v;
                                    if (q >= HC_VLEN) hc_vst(dst + v, \(full));
                                    else if (q > 0) hc_vst(dst + v, \(part));
                                    else hc_vst(dst + v, hc_vzero());
                                }
                            }
                        }
            """
        case .pointwise:
            what = "X[k][p] = x[k*xs + p]"
            let centered = o.norm?.centered == true
            let vload = centered ? "hc_vmul(hc_vsub(hc_vld(xr + l0 + v), hc_vld(mv + l0 + v)), hc_vld(rv + l0 + v))" : "hc_vld(xr + l0 + v)"
            let sload = centered ? "(xr[l0 + l] - mv[l0 + l]) * rv[l0 + l]" : "xr[l0 + l]"
            pack = """
                        /* Pack the panel: panel[(j*kc + k)*NR + l] = X[k0 + k][pb + j*NR + l], zero past the last pixel\(centered ? "; x̂ = (x - μ)·r" : ""). */
                        for (long k = 0; k < kc; k++) {
                            const float *xr = x + (k0 + k) * xs + pb;
                            \(centered ? "const float *mv = mean + pb, *rv = rstd + pb;" : "")
                            for (long j = 0; j < nslices; j++) {
                                float *dst = panel + (j * kc + k) * NR;
                                const long l0 = j * NR, n = pn - l0 < NR ? pn - l0 : NR;
                                if (n == NR) {
                                    for (long v = 0; v < NR; v += HC_VLEN) hc_vst(dst + v, \(vload));
                                } else {
                                    long l = 0;
                                    for (; l < n; l++) dst[l] = \(sload);
                                    for (; l < NR; l++) dst[l] = 0.0f;
                                }
                            }
                        }
            """
        case .slab(let kh, let kw, let padding):
            // Per panel, its output row segments cut at NR-slice boundaries (computed once for every K block);
            // per segment and k, one contiguous run of the slab: no padding tests and no normalisation here (the
            // body normalised each input pixel once).
            what = "X[(ci*\(kh) + ky)*\(kw) + kx][p] = x[ci][oy + ky - \(padding)][ox + kx - \(padding)] normalised (0 outside), read from the slab at ((ci*SR + oy + ky - \(padding) - ylo)*W2 + ox + kx), output pixel p0 + p = oy*OW + ox"
            pack = """
                        /* Pack the panel from the slab: per segment (slice lane sl, len pixels, slab offset base of tap (0, 0)), the
                           kc taps' runs, each contiguous in a slab row. */
                        for (long s = 0; s < nseg; s++) {
                            const long sl = seg[3 * s], len = seg[3 * s + 1], base = seg[3 * s + 2];
                            float *dst = panel + (sl / NR) * kc * NR + sl % NR;
                            for (long k = 0; k < kc; k++, dst += NR) {
                                const long kk = k0 + k, ci = kk / (KH * KW), ky = (kk / KW) % KH, kx = kk % KW;
                                const float *src = x + (ci * SR + ky) * W2 + kx + base;
                                long j = 0;
                                for (; j + HC_VLEN <= len; j += HC_VLEN) hc_vst(dst + j, hc_vld(src + j));
                                if (j < len) hc_vst_partial(dst + j, hc_vld_partial(src + j, (int)(len - j)), (int)(len - j));
                            }
                        }
                        /* The last slice's lanes past the panel's pixels. */
                        if (pn % NR)
                            for (long k = 0; k < kc; k++)
                                for (long l = pn % NR; l < NR; l++) panel[((nslices - 1) * kc + k) * NR + l] = 0.0f;
            """
        case .conv(let kh, let kw, let stride, let padding):
            // An unfolded norm (norm_affine): each tap inside the image reads x̂ = (x − μ)·r·γ + β (with_bias) or
            // x·r·γ (bias_free) with the statistics of its input pixel; taps in the padding stay 0.
            let affine = o.norm?.affine == true ? o.norm : nil
            let inside = { (i: String) in
                affine.map { $0.centered ? "(xr[\(i)] - mr[\(i)]) * rr[\(i)] * g + bt" : "xr[\(i)] * rr[\(i)] * g" } ?? "xr[\(i)]"
            }
            let vinside = { (i: String) in
                affine.map { $0.centered ? "hc_vfma(hc_vmul(hc_vsub(hc_vld(xr + \(i)), hc_vld(mr + \(i))), hc_vld(rr + \(i))), gv, bv)"
                                         : "hc_vmul(hc_vmul(hc_vld(xr + \(i)), hc_vld(rr + \(i))), gv)" } ?? "hc_vld(xr + \(i))"
            }
            let normalized = affine.map { $0.centered ? ", normalised (x - mean)*rstd*gamma[ci] + beta[ci] inside the image"
                                                      : ", normalised x*rstd*gamma[ci] inside the image" } ?? ""
            what = "X[(ci*\(kh) + ky)*\(kw) + kx][p] = x[ci][oy*\(stride) + ky - \(padding)][ox*\(stride) + kx - \(padding)]\(normalized) (0 outside), output pixel p0 + p = oy*OW + ox"
            let rows = affine.map { norm in """

                                \(norm.centered ? "const float *mr = rowok ? mean + (iy - iy0) * W : mean;\n                    " : "")const float *rr = rowok ? rstd + (iy - iy0) * W : rstd;
            """ } ?? ""
            let channel = affine == nil ? "" : """

                            const float g = gamma[ci], bt = beta ? beta[ci] : 0.0f;
                            const hc_vf gv = hc_vset1(g), bv = hc_vset1(bt);
                            (void)bt; (void)gv; (void)bv;
            """
            // Stride 1 (known here): a run of output pixels reads a contiguous input segment, so it is packed in
            // vectors up to the end of each NR slice: zeros left of the image, the inside in whole vectors (the last
            // one, when the inside is at least a vector long, ending at its last element and overlapping the one
            // before: it stores the same values), zeros right of the image; rows outside the image are all zeros.
            let strideOne = stride != 1 ? "" : [
                "if (!rowok) {",
                "    for (long i = 0; i < run;) {",
                "        const long n = NR - lane < run - i ? NR - lane : run - i;",
                "        long j = 0;",
                "        for (; j + HC_VLEN <= n; j += HC_VLEN) hc_vst(dst + lane + j, hc_vzero());",
                "        for (; j < n; j++) dst[lane + j] = 0.0f;",
                "        lane += n;",
                "        i += n;",
                "        if (lane == NR) { lane = 0; dst += kc * NR; }",
                "    }",
                "} else {",
                "    for (long i = 0; i < run;) {",
                "        const long n = NR - lane < run - i ? NR - lane : run - i, ix = ox0 + i + kx - PAD;",
                "        const long jend = W - ix < n ? W - ix : n;",
                "        long j = 0;",
                "        for (; j < n && ix + j < 0; j++) dst[lane + j] = 0.0f;",
                "        const long j0 = j;",
                "        for (; j + HC_VLEN <= jend; j += HC_VLEN) hc_vst(dst + lane + j, \(vinside("ix + j")));",
                "        if (j < jend && jend - j0 >= HC_VLEN) {",
                "            j = jend - HC_VLEN;",
                "            hc_vst(dst + lane + j, \(vinside("ix + j")));",
                "            j = jend;",
                "        }",
                "        for (; j < jend; j++) dst[lane + j] = \(inside("ix + j"));",
                "        for (; j < n; j++) dst[lane + j] = 0.0f;",
                "        lane += n;",
                "        i += n;",
                "        if (lane == NR) { lane = 0; dst += kc * NR; }",
                "    }",
                "}",
            ].joined(separator: "\n                                ")
            let scalarRun = """
            for (long i = 0; i < run; i++) {
                                                const long ix = (ox0 + i) * S + kx - PAD;
                                                dst[lane] = rowok && ix >= 0 && ix < W ? \(inside("ix")) : 0.0f;
                                                if (++lane == NR) { lane = 0; dst += kc * NR; }
                                            }
            """
            pack = """
                        /* Pack the panel (implicit GEMM): the shifted, zero-padded input row segments of every (ci, ky, kx)\(affine == nil ? "" : ", normalised (the padding stays 0)"). */
                        for (long k = 0; k < kc; k++) {
                            const long kk = k0 + k, ci = kk / (KH * KW), ky = (kk / KW) % KH, kx = kk % KW;
                            const float *xp = x + ci * H * W;\(channel)
                            float *dst = panel + k * NR;
                            long lane = 0;
                            for (long l = 0; l < pn;) {
                                const long q = p0 + pb + l, oy = q / OW, ox0 = q % OW;
                                const long run = OW - ox0 < pn - l ? OW - ox0 : pn - l;
                                const long iy = oy * S + ky - PAD;
                                const int rowok = iy >= 0 && iy < H;
                                const float *xr = rowok ? xp + iy * W : xp;\(rows)
                                \(stride == 1 ? strideOne : scalarRun)
                                l += run;
                            }
                            for (; lane > 0 && lane < NR; lane++) dst[lane] = 0.0f;
                        }
            """
        }
        let packW = o.packed ? "const float *ablk = w + (mb * K + k0) * MR;" : """
                            /* Weights not prepacked: this block's K block into [kc][MR] (rows past M zero). */
                            for (long k = 0; k < kc; k++)
                                for (long r = 0; r < MR; r++) wblk[k * MR + r] = r < mn ? w[(m0 + r) * K + k0 + k] : 0.0f;
                            const float *ablk = wblk;
            """
        // A folded bias_free norm scales the sums by r (it commutes with a 1x1); an unfolded one normalised the panel.
        let biasFree = o.norm.map { !$0.centered && !$0.affine } ?? false
        // The epilogue on rows [0, mn) and pixels [0, pc) of the tile at c (stride ys), pixel offset pp in the panel.
        var epi: [String] = []
        if biasFree { epi.append("v = v * rstd[pq] + (bias ? bias[m0 + r] : 0.0f);") }
        // A residual (y may alias it) is not an epilogue: the first K block starts from bias + res (·rscale), read
        // element by element just before the same element of y is first written.
        let residualStart = !o.residual ? "" : """
                                if (first)
                                    for (long r = 0; r < mn; r++)
                                        for (long l = 0; l < pc; l++) {
                                            const float rv = res[(m0 + r) * rs + pb + l0 + l]\(o.residualScaled ? " * rscale[m0 + r]" : "");
                                            c[r * ys + l] = (bias ? bias[m0 + r] : 0.0f) + rv;
                                        }
            """
        if let f = o.activation { epi.append("v = \(f);") }
        var vepi: [String] = []
        if biasFree { vepi.append("v = hc_vadd(hc_vmul(v, n == HC_VLEN ? hc_vld(rstd + pq) : hc_vld_partial(rstd + pq, n)), bv);") }
        if let f = o.vectorActivation { vepi.append("v = \(f);") }
        let vectorEpilogue = o.activation == nil || o.vectorActivation != nil
        let epilogue = epi.isEmpty ? "" : vectorEpilogue ? """
                                    if (last)
                                        for (long r = 0; r < mn; r++) {
                                            float *cr = c + r * ys;
                                            const hc_vf bv = hc_vset1(\(biasFree ? "bias ? bias[m0 + r] : 0.0f" : "0.0f"));
                                            (void)bv;
                                            for (long l = 0; l < pc; l += HC_VLEN) {
                                                const long pq = pb + l0 + l; (void)pq;
                                                const int n = pc - l < HC_VLEN ? (int)(pc - l) : HC_VLEN;
                                                hc_vf v = n == HC_VLEN ? hc_vld(cr + l) : hc_vld_partial(cr + l, n);
                                                \(vepi.joined(separator: " "))
                                                if (n == HC_VLEN) hc_vst(cr + l, v); else hc_vst_partial(cr + l, v, n);
                                            }
                                        }
            """ : """
                                    if (last)
                                        for (long r = 0; r < mn; r++)
                                            for (long l = 0; l < pc; l++) {
                                                const long pq = pb + l0 + l; (void)pq;
                                                float v = c[r * ys + l];
                                                \(epi.joined(separator: " "))
                                                c[r * ys + l] = v;
                                            }
            """
        // The last channel block's full tiles on the narrow tile (its R rows only).
        let narrow = o.narrowRows.map { r in
            r > 0 && r < mr ? "else if (mn == \(r) && pc == NR) {\n" + String(repeating: " ", count: 36)
                + "\(micro)_micro\(r)(kc, ablk, bslice, c, ys, first && !RES ? init : NULL);\n"
                + String(repeating: " ", count: 32) + "} " : ""
        } ?? ""
        // A slice of v < nv whole vectors on the v-vector tile.
        let narrowColumns = !o.narrowColumns || nv < 2 ? "" : "else if (mn == MR && pc < NR && pc % HC_VLEN == 0) {\n"
            + (1..<nv).map { v in
                String(repeating: " ", count: 36) + "\(v > 1 ? "else " : "")if (pc == \(v) * HC_VLEN) \(micro)_micro_c\(v)(kc, ablk, bslice, c, ys, first && !RES ? init : NULL);\n"
            }.joined() + String(repeating: " ", count: 32) + "} "
        let convConstants: String
        var segments = ""
        if case .conv(let kh, let kw, let stride, let padding) = o.input {
            convConstants = "const long KH = \(kh), KW = \(kw), S = \(stride), PAD = \(padding);\n    "
        } else if case .slab(let kh, let kw, let padding) = o.input {
            convConstants = "const long KH = \(kh), KW = \(kw), PAD = \(padding);\n    "
            segments = """

                    /* The panel's output row segments cut at NR-slice boundaries: (panel lane, length, slab offset of the
                       first pixel's tap (0, 0) in channel 0). */
                    long nseg = 0;
                    for (long l = 0; l < pn;) {
                        const long q = p0 + pb + l, oy = q / OW, ox = q % OW;
                        long n = OW - ox < pn - l ? OW - ox : pn - l;
                        if (NR - l % NR < n) n = NR - l % NR;
                        seg[3 * nseg] = l;
                        seg[3 * nseg + 1] = n;
                        seg[3 * nseg + 2] = (oy - PAD - ylo) * W2 + ox;
                        nseg++;
                        l += n;
                    }
            """
        } else {
            convConstants = ""
        }
        return """
        /* \(prefix)_gemm: for m in channel blocks [mb0, mb1) (MR = \(mr), m < M) and p < np, y[m*ys + p] =
           \(biasFree ? "rstd[p] * sum_k W[m][k] X[k][p] + bias[m]" : "bias[m] + sum_k W[m][k] X[k][p]")\(o.residual ? (o.residualScaled ? " + res[m*rs + p] * rscale[m]" : " + res[m*rs + p]") : "")\(o.activation != nil ? ", activated" : ""), with \(what)\(o.norm?.centered == true && o.norm?.affine != true ? " normalised (x - mean[p]) * rstd[p]" : "");
           W \(o.packed ? "prepacked as [M/MR][K][MR]" : "[M][K]"), bias may be NULL; pack: per-thread scratch of
           GemmTiles.packFloats floats (an MR x kc weight block, then the kc x NC panel). */
        HC_NOINLINE static void \(prefix)_gemm(\(parameters(o))) {
            \(convConstants)enum { MR = \(mr), RES = \(o.residual ? 1 : 0) };
            const long NR = \(nv) * HC_VLEN, KCMAX = \(t.kc), NC = \(t.nc);
            const long nkb = (K + KCMAX - 1) / KCMAX, kcs = nkb > 0 ? (K + nkb - 1) / nkb : 1;
            float *restrict wblk = pack, *restrict panel = pack + MR * kcs;
            (void)wblk;\(o.input.isSlab ? "\n    long seg[3 * (\(t.nc) + 2)];" : "")
            for (long pb = 0; pb < np; pb += NC) {
                const long pn = np - pb < NC ? np - pb : NC, nslices = (pn + NR - 1) / NR;\(segments)
                for (long k0 = 0; k0 < K; k0 += kcs) {
                    const long kc = K - k0 < kcs ? K - k0 : kcs;
                    const int first = k0 == 0, last = k0 + kc >= K;
                    (void)last;
                    \(pack)
                    for (long mb = mb0; mb < mb1; mb++) {
                        const long m0 = mb * MR, mn = M - m0 < MR ? M - m0 : MR;
                        \(packW)
                        float init[MR];
                        for (long r = 0; r < MR; r++) init[r] = \(biasFree ? "0.0f" : "bias && r < mn ? bias[m0 + r] : 0.0f");
                        for (long j = 0; j < nslices; j++) {
                            const long l0 = j * NR, pc = pn - l0 < NR ? pn - l0 : NR;
                            float *c = y + m0 * ys + pb + l0;
                            const float *bslice = panel + j * kc * NR;
                            \(residualStart)
                            if (mn == MR && pc == NR) {
                                \(micro)_micro(kc, ablk, bslice, c, ys, first && !RES ? init : NULL);
                            } \(narrow)\(narrowColumns)else {
                                float tile[MR * \(nv) * HC_VLEN];
                                for (long i = 0; i < MR * NR; i++) tile[i] = 0.0f;
                                if (!first || RES)
                                    for (long r = 0; r < mn; r++)
                                        for (long l = 0; l < pc; l++) tile[r * NR + l] = c[r * ys + l];
                                \(micro)_micro(kc, ablk, bslice, tile, NR, first && !RES ? init : NULL);
                                for (long r = 0; r < mn; r++)
                                    for (long l = 0; l < pc; l++) c[r * ys + l] = tile[r * NR + l];
                            }
        \(epilogue)
                        }
                    }
                }
            }
        }


        """
    }

}

extension KernelEmitter {
    /// The micro-kernel's tile of a kernel: the one its schedule records, else the target rule at its vector width.
    static func gemmTiles(_ k: Kernel) -> GemmTiles {
        GemmTiles.of(k.schedule)
    }

    /// The fused activation of `k` on an hc_vf `v` (the vector forms of activationExpression), nil for none.
    static func vectorActivationExpression(_ k: Kernel) -> String? {
        switch (try? Epilogue.activation(k.op.attributes)) ?? nil {
        case .gelu?: return "hc_vgelu(v)"
        case .silu?: return "hc_vsilu(v)"
        case .sigmoid?: return "hc_vsigmoid(v)"
        case .relu?: return "hc_vmax(v, hc_vzero())"
        default: return nil
        }
    }

    /// The micro-kernel and the `_gemm` functions a GEMM-shaped kernel calls.
    static func gemmHelpers(_ k: Kernel) -> String {
        let t = gemmTiles(k)
        let norm = (try? FoldedNorm.of(k.op.attributes)) ?? nil
        var s = MicroKernel.micro(k.name, t)
        switch k.op.kind {
        case .conv2d:
            var o = MicroKernel.Options()
            let w = k.operands[1].shape.map(\.coefficient)
            let padding = (try? k.op.attributes.int("padding")) ?? 0, stride = (try? k.op.attributes.int("stride", default: 1)) ?? 1
            // An unfolded norm (norm_affine) is normalised while packing the implicit GEMM's panel, even for a 1x1;
            // a gated one (1x1 only) while packing the pointwise panel.
            if w[2] != 1 || w[3] != 1 || padding != 0 || stride != 1 || (norm?.affine == true && norm?.gated != true) {
                o.input = .conv(kh: w[2], kw: w[3], stride: stride, padding: padding)
                // Stride 1 with an unfolded norm: the body normalises each input pixel once into the item's slab.
                if norm?.affine == true && norm?.gated != true && stride == 1 {
                    o.input = .slab(kh: w[2], kw: w[3], padding: padding)
                }
            }
            o.norm = norm
            o.packed = k.packedOperands.contains(1)
            o.activation = activationExpression(k)
            o.vectorActivation = vectorActivationExpression(k)
            let fusedResidual = (try? Epilogue.convResidual(k.op.attributes)) ?? (residual: false, scaled: false)
            o.residual = fusedResidual.residual
            o.residualScaled = fusedResidual.scaled
            // Output channels not a multiple of MR (the output conv's 3, CAB's 16 on a 6-row tile): a narrow tile.
            if w[0] % t.mr != 0 {
                o.narrowRows = w[0] % t.mr
                s += MicroKernel.narrowMicro(k.name, t, rows: w[0] % t.mr)
            }
            s += MicroKernel.gemm(k.name, micro: k.name, t, o)
        case .fusedFeedForward:
            // The tile's panel, project_in into the hidden block's rows, project_out accumulating per block.
            let roles = (try? ShapeRules.fusedFeedForwardRoles(k.op.attributes)) ?? []
            s += MicroKernel.microStrided(k.name, t)
            s += MicroKernel.packPanel("\(k.name)_in", t, norm: norm)
            s += MicroKernel.panelGemm("\(k.name)_in", micro: k.name, t)
            s += MicroKernel.accumulateGemm("\(k.name)_out", micro: k.name, t, residual: roles.contains("residual"))
        case .fusedPointwiseDepthwise:
            // The tile's panel and the projection rows (no project_out).
            s += MicroKernel.packPanel("\(k.name)_in", t, norm: norm)
            s += MicroKernel.panelGemm("\(k.name)_in", micro: k.name, t)
        case .fusedAttention where k.phase == "gram":
            // The qkv rows (the Gram partials call `_micro` directly, FusedAttentionKernel.swift).
            let roles = (try? ShapeRules.fusedAttentionRoles(k.op.attributes)) ?? []
            var o = MicroKernel.Options()
            o.norm = norm
            o.packed = roles.firstIndex(of: "qkv.weight").map { k.packedOperands.contains($0) } ?? false
            // A row of W pixels ends in a partial slice (W = 256 on 48-pixel slices: 5 and a third); W is a multiple
            // of 8, so on AVX2 and NEON the last slice is whole vectors (on AVX-512 when W is a multiple of 16).
            o.narrowColumns = true
            s += MicroKernel.narrowColumnMicros(k.name, t)
            s += MicroKernel.gemm("\(k.name)_qkv", micro: k.name, t, o)
        case .fusedAttention where k.phase == "out":
            // y = M·V + b_out (+ residual), M written packed by the mix phase.
            var o = MicroKernel.Options()
            o.residual = ((try? ShapeRules.fusedAttentionRoles(k.op.attributes)) ?? []).contains("residual")
            s += MicroKernel.gemm(k.name, micro: k.name, t, o)
        default:
            break
        }
        return s
    }

    /// Items of (image, NC-pixel panel, group of MR-channel blocks) over threads; with fewer than 4 panels per
    /// thread the channel blocks are split into groups as well (each output element is still summed in one item,
    /// in one order, so the result does not depend on the grouping). `call` is the `_gemm` call of one item, which
    /// sees n, p0, pn, mb0, mb1 and pack; `stats` (C, optional) runs first for the item's pixels.
    static func gemmItems(_ t: GemmTiles, images: String, pixels: String, rows: String, panels: Int = 1, stats: String = "",
                          call: String) -> String {
        """
            const long MR = \(t.mr), NC = \(t.nc * max(1, panels)), NIMG = \(images), PIX = \(pixels), ROWS = \(rows);
            const long nmb = (ROWS + MR - 1) / MR, npb = (PIX + NC - 1) / NC;
            long ncg = 1;
            while (NIMG * npb * ncg < 4 * nt && ncg < nmb) ncg++;
            float *restrict pack = a->thread_scratch + (long)tid * a->scratch_floats;
            long b, e;
            hc_split(NIMG * npb * ncg, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long n = item / (npb * ncg), rest = item % (npb * ncg), g = rest % ncg;
                const long p0 = (rest / ncg) * NC, pn = PIX - p0 < NC ? PIX - p0 : NC;
                const long mb0 = g * nmb / ncg, mb1 = (g + 1) * nmb / ncg;
                (void)n;\(stats)
                \(call);
            }

        """
    }

    /// The normalised value of slab pixels d[l ..] (statistics mr, rr; gv, bv the channel's γ and β) as an hc_vf:
    /// whole vectors (`load` "hc_vld") or the first m lanes ("m").
    static func slabNormalize(_ norm: FoldedNorm, _ load: String) -> String {
        let ld = { (p: String) in load == "hc_vld" ? "hc_vld(\(p) + l)" : "hc_vld_partial(\(p) + l, m)" }
        return norm.centered ? "hc_vfma(hc_vmul(hc_vsub(\(ld("d")), \(ld("mr"))), \(ld("rr"))), gv, bv)"
                             : "hc_vmul(hc_vmul(\(ld("d")), \(ld("rr"))), gv)"
    }

    /// `conv2d` with groups 1: 1x1 (pointwise, optionally with a folded norm) or dense KxK (implicit GEMM).
    static func gemmConv2d(_ k: Kernel) throws -> String {
        let t = gemmTiles(k)
        let bias = Epilogue.convHasBias(k.op.attributes, operandCount: k.operands.count) ? "x2" : "NULL"
        // A fused residual (and its per-channel scale): the residual image's pixels p0.. of image n, row stride PIX.
        let fusedResidual = try Epilogue.convResidual(k.op.attributes)
        let n = k.operands.count, extra = (fusedResidual.residual ? 1 : 0) + (fusedResidual.scaled ? 1 : 0)
        let res = fusedResidual.residual ? ", x\(n - extra) + n * CO * PIX + p0, PIX" + (fusedResidual.scaled ? ", x\(n - 1)" : "") : ""
        let w = k.operands[1].shape.map(\.coefficient)
        let padding = try k.op.attributes.int("padding"), stride = try k.op.attributes.int("stride", default: 1)
        let affine = try FoldedNorm.of(k.op.attributes).map { $0.affine && !$0.gated } == true
        if w[2] != 1 || w[3] != 1 || padding != 0 || stride != 1 || affine {
            let head = "    const long CI = x0_d1, H = x0_d2, W = x0_d3, CO = y_d1, OW = y_d3, K = CI * x1_d2 * x1_d3;\n"
            if let norm = try FoldedNorm.of(k.op.attributes), norm.affine, stride == 1 {
                // An unfolded norm at stride 1: per item of ScratchNeeds.convSlabPanels panels, the input rows its
                // output rows read, every channel, copied once into the slab (rows of W2 = W + 2·PAD floats, the
                // padding columns and the rows outside the image 0), the per-pixel mean and 1/σ of the slab's pixels
                // (same sums, same order, as from the image), each pixel inside the image normalised in place, then
                // the GEMM packs its panels from the slab (ScratchNeeds.convSlabFloats: the slab, then the statistics,
                // then the packing buffer).
                let gamma = k.operands.count - norm.operandCount
                let beta = norm.centered ? "x\(gamma + 1)[ci]" : "0.0f"
                return head + gemmItems(t, images: "x0_d0", pixels: "y_d2 * y_d3", rows: "CO", panels: ScratchNeeds.convSlabPanels, stats: """

                        const long KH = x1_d2, PAD = \(padding), W2 = W + 2 * PAD;
                        const long ylo = p0 / OW - PAD, SR = (p0 + pn - 1) / OW - p0 / OW + KH, SP = SR * W2;
                        float *restrict slab = pack, *restrict mean = slab + CI * SP, *restrict rstd = mean + SP;
                        const float *xn = x0 + n * CI * H * W;
                        for (long ci = 0; ci < CI; ci++)
                            for (long r = 0; r < SR; r++) {
                                float *d = slab + (ci * SR + r) * W2;
                                const long iy = ylo + r;
                                if (iy < 0 || iy >= H) {
                                    memset(d, 0, (size_t)W2 * sizeof(float));
                                    continue;
                                }
                                for (long l = 0; l < PAD; l++) d[l] = d[PAD + W + l] = 0.0f;
                                memcpy(d + PAD, xn + ci * H * W + iy * W, (size_t)W * sizeof(float));
                            }
                        \(k.name)_stats(mean, rstd, slab, SP, SP, CI, \(cFloat(norm.eps)));
                        for (long ci = 0; ci < CI; ci++) {
                            const hc_vf gv = hc_vset1(x\(gamma)[ci]), bv = hc_vset1(\(beta));
                            (void)bv;
                            for (long r = 0; r < SR; r++) {
                                const long iy = ylo + r;
                                if (iy < 0 || iy >= H) continue;
                                float *d = slab + (ci * SR + r) * W2 + PAD;
                                const float *mr = mean + r * W2 + PAD, *rr = rstd + r * W2 + PAD;
                                (void)mr;
                                long l = 0;
                                for (; l + HC_VLEN <= W; l += HC_VLEN) hc_vst(d + l, \(slabNormalize(norm, "hc_vld")));
                                if (l < W) {
                                    const int m = (int)(W - l);
                                    hc_vst_partial(d + l, \(slabNormalize(norm, "m")), m);
                                }
                            }
                        }
                """, call: "\(k.name)_gemm(y + n * CO * PIX + p0, PIX, slab, SR, W2, OW, p0, pn, ylo, x1, \(bias), CO, K, mb0, mb1, rstd + SP)")
            }
            if let norm = try FoldedNorm.of(k.op.attributes), norm.affine {
                // An unfolded norm: the mean and 1/σ of the input rows the item's panel reads, two passes over the
                // channels, in the thread's scratch before its packing buffer (ScratchNeeds.convNormStatsFloats).
                let gamma = k.operands.count - norm.operandCount
                let beta = norm.centered ? "x\(gamma + 1)" : "NULL"
                return head + gemmItems(t, images: "x0_d0", pixels: "y_d2 * y_d3", rows: "CO", stats: """

                        const long KH = x1_d2, S = \(stride), PAD = \(padding);
                        const long STATS = H * W < (S + KH) * (S * (NC - 1) + W) ? H * W : (S + KH) * (S * (NC - 1) + W);
                        float *restrict mean = pack, *restrict rstd = pack + STATS;
                        long iy0 = (p0 / OW) * S - PAD, iy1 = ((p0 + pn - 1) / OW) * S - PAD + KH;
                        if (iy0 < 0) iy0 = 0;
                        if (iy1 > H) iy1 = H;
                        if (iy1 > iy0) \(k.name)_stats(mean, rstd, x0 + n * CI * H * W + iy0 * W, H * W, (iy1 - iy0) * W, CI, \(cFloat(norm.eps)));
                """, call: "\(k.name)_gemm(y + n * CO * PIX + p0, PIX, x0 + n * CI * H * W, H, W, OW, p0, pn, x1, \(bias), CO, K, mb0, mb1, pack + 2 * STATS, mean, rstd, iy0, x\(gamma), \(beta))")
            }
            return head
                + gemmItems(t, images: "x0_d0", pixels: "y_d2 * y_d3", rows: "CO",
                            call: "\(k.name)_gemm(y + n * CO * PIX + p0, PIX, x0 + n * CI * H * W, H, W, OW, p0, pn, x1, \(bias), CO, K, mb0, mb1, pack\(res))")
        }
        if let norm = try FoldedNorm.of(k.op.attributes) {
            // A gated norm: γ, β (NULL for bias_free) and z follow the weight and bias; z has x's layout.
            var gate = ""
            if norm.gated {
                let g = Epilogue.convNormStart(k.op.attributes, operandCount: n)
                gate = ", x\(g), \(norm.centered ? "x\(g + 1)" : "NULL"), x\(g + norm.operandCount - 1) + n * CI * PIX + p0"
            }
            return "    const long CI = x0_d1, CO = y_d1;\n"
                + gemmItems(t, images: "x0_d0", pixels: "y_d2 * y_d3", rows: "CO", stats: """

                        float mean[\(t.nc)], rstd[\(t.nc)];
                        \(k.name)_stats(mean, rstd, x0 + n * CI * PIX + p0, PIX, pn, CI, \(cFloat(norm.eps)));
                """, call: "\(k.name)_gemm(y + n * CO * PIX + p0, PIX, x0 + n * CI * PIX + p0, PIX, pn, x1, \(bias), CO, CI, mb0, mb1, pack, mean, rstd\(gate)\(res))")
        }
        return "    const long CI = x0_d1, CO = y_d1;\n"
            + gemmItems(t, images: "x0_d0", pixels: "y_d2 * y_d3", rows: "CO",
                        call: "\(k.name)_gemm(y + n * CO * PIX + p0, PIX, x0 + n * CI * PIX + p0, PIX, pn, x1, \(bias), CO, CI, mb0, mb1, pack\(res))")
    }

    /// `--gemm openblas`: a 1x1 convolution as cblas_sgemm on column blocks of pixels (one per item, OpenBLAS
    /// single-threaded inside each pool thread), then the separate passes BLAS needs: bias and activation.
    static func openBLASConv2d(_ k: Kernel) -> String {
        let bias = Epilogue.convHasBias(k.op.attributes, operandCount: k.operands.count) ? "x2[co]" : "0.0f"
        let activation = activationExpression(k).map { "\n                for (long p = 0; p < pn; p++) { const float v = yr[p]; yr[p] = \($0); }" } ?? ""
        // A fused residual (and per-channel scale) is one more pass over the block.
        let fusedResidual = (try? Epilogue.convResidual(k.op.attributes)) ?? (residual: false, scaled: false)
        // A fused residual (y may alias it): the block starts from res (·scale) and sgemm adds to it (beta 1).
        var start = "", beta = "0.0f"
        if fusedResidual.residual {
            let n = k.operands.count, r = fusedResidual.scaled ? n - 2 : n - 1
            let term = fusedResidual.scaled ? "rr[p] * x\(n - 1)[co]" : "rr[p]"
            start = """
                            for (long co = 0; co < CO; co++) {
                                const float *rr = x\(r) + n * CO * P + p0 + co * P;
                                float *yr = ys + co * P;
                                for (long p = 0; p < pn; p++) yr[p] = \(term);
                            }

            """
            beta = "1.0f"
        }
        return """
            const long N = x0_d0, CI = x0_d1, CO = y_d1, P = y_d2 * y_d3, TP = 1024, np = (P + TP - 1) / TP;
            long b, e;
            hc_split(N * np, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long n = item / np, p0 = (item % np) * TP, pn = P - p0 < TP ? P - p0 : TP;
                float *ys = y + n * CO * P + p0;
        \(start)        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)CO, (int)pn, (int)CI, 1.0f, x1, (int)CI,
                            x0 + n * CI * P + p0, (int)P, \(beta), ys, (int)P);
                for (long co = 0; co < CO; co++) {
                    float *yr = ys + co * P;
                    const float bv = \(bias);
                    for (long p = 0; p < pn; p++) yr[p] += bv;\(activation)
                }
            }

        """
    }
}

/// The pieces of `fused_feed_forward` (FusedFeedForwardKernel.swift) on the micro-kernel: a panel packed once per
/// row tile and read by every hidden block, a GEMM that writes whole MR×NR tiles of the block's projection rows
/// from it, and an accumulating GEMM that adds one hidden block's terms of project_out into the output rows,
/// reading the gates in place (a B row stride) instead of packing them.
extension MicroKernel {
    /// `<prefix>_micro_s`: the register tile of `micro` with B read at row stride bs: for r < MR, j < NR,
    /// c[r*cs + j] = (init ? init[r] : c[r*cs + j]) + sum_k a[k*MR + r] * b[k*bs + j].
    public static func microStrided(_ prefix: String, _ t: GemmTiles) -> String {
        let mr = t.mr, nv = t.nv
        let s = """
        /* \(prefix)_micro_s: the \(mr) x \(nv)-vector register tile with B rows bs floats apart: for r < \(mr), j < NR = \(nv)*HC_VLEN,
           c[r*cs + j] = (init ? init[r] : c[r*cs + j]) + sum_k a[k*\(mr) + r] * b[k*bs + j]. */
        static inline void \(prefix)_micro_s(long kc, const float *restrict a, const float *restrict b, long bs, float *restrict c,
                                             long cs, const float *restrict init) {

        """
        return s + tile(rows: mr, mr: mr, nv: nv, bStep: "bs")
    }

    /// `<prefix>_pack_panel`: `rows` image rows of W pixels of K channels (channel stride xs, row stride W) as a
    /// panel of rows·(W+2) pixels, each row between a zero pixel before and after it (so the projection computed
    /// from it has a column on each side that the depthwise conv reads as its zero padding, once set to 0):
    /// panel[(j*K + k)*NR + l] = X'[k][j*NR + l] with X'[k][r*(W+2) + 1 + i] = X[k][r*W + i], zero elsewhere and past
    /// the last pixel; with a folded norm each value normalised on the way, (x − μ)·r (with_bias) or x·r (bias_free),
    /// μ and r per pixel of the unpadded rows.
    public static func packPanel(_ prefix: String, _ t: GemmTiles, norm: FoldedNorm?) -> String {
        let load: String
        switch norm.map({ $0.centered }) {
        case true?: load = "(src[u] - mv[u]) * rv[u]"
        case false?: load = "src[u] * rv[u]"
        case nil: load = "src[u]"
        }
        let stats = norm == nil ? "" : (norm!.centered ? "\n                const float *mv = mean + p, *rv = rstd + p;" : "\n                const float *rv = rstd + p;")
        return """
        /* \(prefix)_pack_panel: rows image rows of W pixels of K channels (x[k*xs + r*W + i]) as the panel of rows*(W+2) pixels
           X'[k][r*(W+2) + 1 + i] = X[k][r*W + i]\(norm == nil ? "" : (norm!.centered ? ", normalised (x - mean[p]) * rstd[p]" : ", scaled x * rstd[p]")), a zero pixel before and after every row and
           zeros past the last: panel[(j*K + k)*NR + l] = X'[k][j*NR + l]. */
        HC_NOINLINE static void \(prefix)_pack_panel(float *restrict panel, const float *restrict x, long xs, long rows, long W, long K\(norm == nil ? "" : ",\n        const float *restrict mean, const float *restrict rstd")) {
            const long NR = \(t.nv) * HC_VLEN, W2 = W + 2, np = rows * W2, ns = (np + NR - 1) / NR;
            for (long k = 0; k < K; k++) {
                const float *xr = x + k * xs;
                for (long r = 0; r < rows; r++) {
                    const long q0 = r * W2, q1 = q0 + W + 1;
                    panel[((q0 / NR) * K + k) * NR + q0 % NR] = 0.0f;
                    panel[((q1 / NR) * K + k) * NR + q1 % NR] = 0.0f;
                    /* Runs of the row inside one NR slice. */
                    for (long i = 0; i < W;) {
                        const long q = q0 + 1 + i, off = q % NR, n = NR - off < W - i ? NR - off : W - i, p = r * W + i;
                        float *restrict dst = panel + ((q / NR) * K + k) * NR + off;
                        const float *src = xr + p;\(stats)
                        for (long u = 0; u < n; u++) dst[u] = \(load);
                        i += n;
                    }
                }
                for (long q = np; q < ns * NR; q++) panel[((q / NR) * K + k) * NR + q % NR] = 0.0f;
            }
        }


        """
    }

    /// `<prefix>_panel_gemm`: c[(b*MR + r)*cs + p] = init[b*MR + r] + sum_k A_b[k][r]·X[k][p] for nh·nb blocks of MR
    /// rows (nh halves, 1 or 2) — A_b = a0 + b·K·MR for b < nb, a1 + (b − nb)·K·MR after ([K][MR] each) — and every pixel of the
    /// ⌈np/NR⌉ NR-slices of a packed panel: whole tiles, so c's rows must hold ⌈np/NR⌉·NR floats.
    public static func panelGemm(_ prefix: String, micro: String, _ t: GemmTiles) -> String {
        """
        /* \(prefix)_panel_gemm: c[(b*MR + r)*cs + p] = init[b*MR + r] + sum_k A_b[k][r] * X[k][p] for b < nh*nb (A_b = a0 + b*K*MR,
           then a1 + (b - nb)*K*MR), p < ceil(np/NR)*NR, X the packed panel ([np/NR][K][NR]). Per NR-slice, K in blocks of
           at most KC so that the slice's block (KC x NR) stays in L1 while the nh*nb weight blocks stream past it. */
        HC_NOINLINE static void \(prefix)_panel_gemm(float *restrict c, long cs, const float *restrict panel, long np, long K,
                                                   const float *restrict a0, const float *restrict a1, long nb, long nh,
                                                   const float *restrict init) {
            enum { MR = \(t.mr) };
            const long NR = \(t.nv) * HC_VLEN, KCMAX = \(t.kc), ns = (np + NR - 1) / NR;
            const long nkb = (K + KCMAX - 1) / KCMAX, kcs = nkb > 0 ? (K + nkb - 1) / nkb : 1;
            for (long j = 0; j < ns; j++) {
                const float *slice = panel + j * K * NR;
                for (long k0 = 0; k0 < K; k0 += kcs) {
                    const long kc = K - k0 < kcs ? K - k0 : kcs;
                    for (long b = 0; b < nh * nb; b++) {
                        const float *ab = (b < nb ? a0 + b * K * MR : a1 + (b - nb) * K * MR) + k0 * MR;
                        \(micro)_micro(kc, ab, slice + k0 * NR, c + b * MR * cs + j * NR, cs, k0 == 0 ? init + b * MR : NULL);
                    }
                }
            }
        }


        """
    }

    /// `<prefix>_acc`: y[m*ys + p] = (first ? bias[m] (+ res[m*rs + p]) : y[m*ys + p]) + sum_{k<kc} A[m][k]·G[k][p] for
    /// m < M, p < np; A in MR-row blocks at a + mb·as ([kc][MR] each, rows past M zero), G rows gs floats apart with
    /// NR-slices readable past np (the lanes past np only reach discarded tile lanes). y may alias res.
    public static func accumulateGemm(_ prefix: String, micro: String, _ t: GemmTiles, residual: Bool) -> String {
        let residualStart = !residual ? "" : """
                        if (first)
                            for (long r = 0; r < mn; r++)
                                for (long l = 0; l < pc; l++)
                                    c[r * ys + l] = (bias ? bias[m0 + r] : 0.0f) + res[(m0 + r) * rs + l0 + l];
        """
        return """
        /* \(prefix)_acc: for m < M and p < np, y[m*ys + p] = (first ? bias[m]\(residual ? " + res[m*rs + p]" : "") : y[m*ys + p]) + sum_{k<kc} A[m][k] * G[k][p],
           A in blocks of MR rows at a + mb*as ([kc][MR], rows past M zero), G[k][p] = g[k*gs + p] readable to the end of
           each NR-slice; bias may be NULL. Per NR-slice of pixels (its kc x NR gates stay in L1), every MR block of y. */
        HC_NOINLINE static void \(prefix)_acc(\(residual ? "float *y" : "float *restrict y"), long ys, const float *restrict g, long gs, long np, long kc,
                                            const float *restrict a, long as, const float *restrict bias, long M, int first\(residual ? ",\n        const float *res, long rs" : "")) {
            enum { MR = \(t.mr), RES = \(residual ? 1 : 0) };
            const long NR = \(t.nv) * HC_VLEN, ns = (np + NR - 1) / NR, nmb = (M + MR - 1) / MR;
            for (long j = 0; j < ns; j++) {
                const long l0 = j * NR, pc = np - l0 < NR ? np - l0 : NR;
                for (long mb = 0; mb < nmb; mb++) {
                    const long m0 = mb * MR, mn = M - m0 < MR ? M - m0 : MR;
                    float init[MR];
                    for (long r = 0; r < MR; r++) init[r] = bias && r < mn ? bias[m0 + r] : 0.0f;
                    float *c = y + m0 * ys + l0;
        \(residualStart)
                    if (mn == MR && pc == NR) {
                        \(micro)_micro_s(kc, a + mb * as, g + l0, gs, c, ys, first && !RES ? init : NULL);
                    } else {
                        float tile[MR * \(t.nv) * HC_VLEN];
                        for (long i = 0; i < MR * NR; i++) tile[i] = 0.0f;
                        if (!first || RES)
                            for (long r = 0; r < mn; r++)
                                for (long l = 0; l < pc; l++) tile[r * NR + l] = c[r * ys + l];
                        \(micro)_micro_s(kc, a + mb * as, g + l0, gs, tile, NR, first && !RES ? init : NULL);
                        for (long r = 0; r < mn; r++)
                            for (long l = 0; l < pc; l++) c[r * ys + l] = tile[r * NR + l];
                    }
                }
            }
        }


        """
    }
}
