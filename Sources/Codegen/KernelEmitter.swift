/// Prints one kernel as a C function: a comment of its shapes and schedule, the dimension variables, the body.
import HybridIR

public enum KernelEmitter {
    /// The whole C function of `kernel`.
    public static func emit(_ kernel: Kernel) throws -> String {
        let op = kernel.op
        let names = kernel.operands.indices.map { "x\($0)" }
        var s = "/* \(kernel.name): \(op.kind.name)("
        s += zip(names, kernel.operands).map { "\($0) f32\(shapeText($1.shape))" }.joined(separator: ", ")
        s += ") -> y f32\(shapeText(kernel.result.shape))"
        if !op.scope.isEmpty { s += "\n   from: \(op.scope)" }
        let attrs = op.attributes.values.keys.sorted().filter { $0 != "schedule" && !MemoryPlanner.opAnnotationKeys.contains($0) }.map { "\($0)=\(op.attributes.values[$0]!)" }
        if !attrs.isEmpty { s += "\n   attributes: \(attrs.joined(separator: ", "))" }
        s += "\n   schedule: \(kernel.schedule)"
        if kernel.functionNames.count > 1 {
            s += "\n   phases: \(kernel.functionNames.joined(separator: ", ")), run one after another (each a barrier)"
        }
        s += " */\n"
        for (phase, function) in kernel.functionNames.enumerated() {
            if phase > 0 { s += "\n" }
            s += "static void \(function)(void *argp, int tid, int nt) {\n"
            s += try prologue(kernel)
            s += try body(kernel, phase: phase)
            s += "}\n"
        }
        return helpers(kernel) + s
    }

    /// Static C functions a kernel calls, printed before it.
    static func helpers(_ k: Kernel) -> String {
        // Projections with a folded layer norm call a statistics helper and a normalising GEMM.
        let norm = (try? FoldedNorm.of(k.op.attributes)) ?? nil
        switch k.op.kind {
        case .fusedFeedForward, .fusedPointwiseDepthwise:
            return fusedFeedForwardHelpers(k) + (norm.map { normalizedPointwiseHelpers("\(k.name)_in", $0) } ?? "")
                + gemmHelpers(k)
        case .conv2d where (try? k.op.attributes.int("groups")) == 1 && !k.openBLAS:
            return (norm.map { normalizedPointwiseHelpers(k.name, $0) } ?? "") + gemmHelpers(k)
        case .fusedAttention where k.phase == "gram":
            return (norm.map { normalizedPointwiseHelpers(k.name, $0) } ?? "") + gemmHelpers(k) + fusedAttentionDepthwise(k)
        case .fusedAttention where k.phase == "out":
            return gemmHelpers(k)
        case .matmul where ProjectionGemm.packsColumns(k.op):
            return projectionGemmHelpers(k)
        default:
            return ""
        }
    }

    /// The kernel's arguments as named C locals: operands x0.., their dims x0_d0.., the output y and its dims,
    /// and the scratch buffer when the plan gave it one.
    static func prologue(_ kernel: Kernel) throws -> String {
        var s = "    const hc_kargs *a = (const hc_kargs *)argp;\n"
        s += "    const long h8 = a->h8, w8 = a->w8;\n"
        var unused = ["h8", "w8", "tid", "nt"]
        // An in-place kernel writes the slot of one of its operands: those two pointers alias, so neither is restrict.
        let aliased = kernel.operands.map { $0.storage == kernel.result.storage }
        for (i, operand) in kernel.operands.enumerated() {
            s += "    const float *\(aliased[i] ? "" : "restrict ")x\(i) = a->in[\(i)];\n"
            unused.append("x\(i)")
            for (d, dim) in operand.shape.enumerated() {
                s += "    const long x\(i)_d\(d) = \(dim.c);\n"
                unused.append("x\(i)_d\(d)")
            }
        }
        s += "    float *\(aliased.contains(true) ? "" : "restrict ")y = a->out;\n"
        unused.append("y")
        if kernel.scratch != nil {
            s += "    float *restrict s = a->scratch;\n"
            unused.append("s")
        }
        for (d, dim) in kernel.result.shape.enumerated() {
            s += "    const long y_d\(d) = \(dim.c);\n"
            unused.append("y_d\(d)")
        }
        if kernel.scratch != nil {
            s += "    float *restrict scratch = s;\n"
            unused.append("scratch")
        }
        s += "    " + unused.map { "(void)\($0);" }.joined(separator: " ") + "\n"
        return s
    }

    static func shapeText(_ shape: SymbolicShape) -> String { "[" + shape.map(\.description).joined(separator: ",") + "]" }

    /// C product of dims d[from..<to] of tensor `t` ("1" when empty).
    static func product(_ t: String, _ range: Range<Int>) -> String {
        range.isEmpty ? "1" : range.map { "\(t)_d\($0)" }.joined(separator: " * ")
    }

    static func body(_ k: Kernel, phase: Int) throws -> String {
        let op = k.op
        let a = op.attributes
        let rank = k.result.shape.count
        switch op.kind {
        case .conv2d:
            if isDepthwise3x3(k) { return depthwiseConv3x3(k) }
            return try conv2d(k)
        case .matmul:
            return try a.bool("transpose_a", default: false) ? matmulTransposedA(k) : matmul(k)
        case .layerNorm:
            let axis = try a.int("axis")
            return layerNorm(k, axis: axis, eps: try a.float("eps"), centered: try a.bool("centered"),
                             gated: try ShapeRules.layerNormGate(a) != nil)
        case .softmax, .l2Normalize:
            return try rowReduction(k, axis: try a.int("axis"))
        case .gelu, .silu, .sigmoid, .softplus, .relu, .exp, .neg:
            return unary(k)
        case .add where a["scaled"] != nil:
            return try scaledAdd(k)
        case .add, .sub, .mul, .div:
            return binary(k)
        case .concat:
            return concat(k, axis: try a.int("axis"))
        case .slice:
            let axis = try a.int("axis")
            return """
                const long OUTER = \(product("y", 0..<axis)), INNER = \(product("y", (axis + 1)..<rank));
                const long N = x0_d\(axis), SIZE = y_d\(axis), START = \(try a.int("start"));
                long b, e;
                hc_split(OUTER, tid, nt, &b, &e);
                for (long o = b; o < e; o++)
                    memcpy(y + o * SIZE * INNER, x0 + (o * N + START) * INNER, (size_t)(SIZE * INNER) * sizeof(float));

            """
        case .transpose:
            return transpose(k, perm: try a.ints("perm"))
        case .flip:
            let axis = try a.int("axis")
            return """
                const long OUTER = \(product("y", 0..<axis)), N = y_d\(axis), INNER = \(product("y", (axis + 1)..<rank));
                long b, e;
                hc_split(OUTER * N, tid, nt, &b, &e);
                for (long item = b; item < e; item++) {
                    const long o = item / N, i = item % N;
                    memcpy(y + item * INNER, x0 + (o * N + (N - 1 - i)) * INNER, (size_t)INNER * sizeof(float));
                }

            """
        case .pixelShuffle, .pixelUnshuffle:
            return pixelShuffle(k, factor: try a.int("factor"), inverse: op.kind == .pixelUnshuffle)
        case .reduceMean:
            return reduceMean(k, axes: try a.ints("axes"))
        case .selectiveScan:
            return try selectiveScan(k)
        case .fusedAttention:
            return try fusedAttention(k)
        case .chunkedSelectiveScan:
            return try chunkedSelectiveScan(k, phase: phase)
        case .fusedFeedForward, .fusedPointwiseDepthwise:
            return try fusedFeedForward(k)
        case .ss2dScan:
            return try ss2dScan(k, phase: phase)
        case .reshape, .weight, .transformerBlock, .ssmBlock, .downsample, .upsample:
            throw HybridError("\(op.kind.name) has no kernel (it must be expanded, folded or viewed before code generation)", at: op.label)
        }
    }

    // MARK: convolution

    /// The C of a fused activation (`conv2d`'s `activation`) applied to `v`, nil when the op has none.
    static func activationExpression(_ k: Kernel) -> String? {
        switch (try? Epilogue.activation(k.op.attributes)) ?? nil {
        case .gelu?: return "hc_geluf(v)"
        case .silu?: return "hc_siluf(v)"
        case .sigmoid?: return "hc_sigmoidf(v)"
        case .relu?: return "(v > 0.0f ? v : 0.0f)"
        default: return nil
        }
    }

    /// The activation applied in place to `count` floats from `base` (a line of C, or "" without activation).
    static func activation(_ k: Kernel, _ base: String, count: String, indent: String) -> String {
        guard let f = activationExpression(k) else { return "" }
        return "\n\(indent)for (long i = 0; i < \(count); i++) { float *yv = \(base) + i; const float v = *yv; *yv = \(f); }"
    }

    /// The activation applied in place to rows [rows, to) (stride `stride`) of `base`, columns [from, until).
    static func activationRows(_ k: Kernel, _ base: String, rows: String, to: String, stride: String, from: String,
                               until: String, indent: String) -> String {
        guard let f = activationExpression(k) else { return "" }
        return "\n\(indent)for (long r = \(rows); r < \(to); r++)\n"
            + "\(indent)    for (long i = \(from); i < \(until); i++) { const float v = \(base)[r * \(stride) + i]; \(base)[r * \(stride) + i] = \(f); }"
    }

    static func conv2d(_ k: Kernel) throws -> String {
        let a = k.op.attributes
        let groups = try a.int("groups"), padding = try a.int("padding"), stride = try a.int("stride", default: 1)
        let hasBias = Epilogue.convHasBias(a, operandCount: k.operands.count)
        let bias = { (co: String) in hasBias ? "x2[\(co)]" : "0.0f" }
        if k.openBLAS { return openBLASConv2d(k) }
        if groups == 1 { return try gemmConv2d(k) }
        if try FoldedNorm.of(a) != nil { throw HybridError("a folded layer norm needs a conv2d with groups 1", at: k.op.label) }
        // Direct convolution over tiles of output rows: each tile of one output plane stays in L1 while every
        // input channel and kernel tap is added to it as a shifted row.
        let rowsPerTile = k.schedule.tile("oy")
        return """
            const long N = x0_d0, CI = x0_d1, H = x0_d2, W = x0_d3;
            const long CO = y_d1, OH = y_d2, OW = y_d3;
            const long KH = x1_d2, KW = x1_d3, G = \(groups), CIG = CI / G, COG = CO / G;
            const long S = \(stride), PAD = \(padding), TOY = \(rowsPerTile);
            const long ntiles = (OH + TOY - 1) / TOY;
            long b, e;
            hc_split(N * CO * ntiles, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long plane = item / ntiles, oy0 = (item % ntiles) * TOY;
                const long oy1 = oy0 + TOY < OH ? oy0 + TOY : OH;
                const long n = plane / CO, co = plane % CO, g = co / COG;
                float *yp = y + plane * OH * OW;
                const float bv = \(bias("co"));
                for (long i = oy0 * OW; i < oy1 * OW; i++) yp[i] = bv;
                for (long cig = 0; cig < CIG; cig++) {
                    const float *xp = x0 + (n * CI + g * CIG + cig) * H * W;
                    const float *wk = x1 + (co * CIG + cig) * KH * KW;
                    for (long ky = 0; ky < KH; ky++) {
                        for (long kx = 0; kx < KW; kx++) {
                            const float wv = wk[ky * KW + kx];
                            /* ox range whose input column ox*S + kx - PAD lies inside the row. */
                            long lo = 0, hi = OW;
                            while (lo < OW && lo * S + kx - PAD < 0) lo++;
                            while (hi > lo && (hi - 1) * S + kx - PAD >= W) hi--;
                            for (long oy = oy0; oy < oy1; oy++) {
                                const long iy = oy * S + ky - PAD;
                                if (iy < 0 || iy >= H) continue;
                                const float *xr = xp + iy * W + kx - PAD;
                                float *yr = yp + oy * OW;
                                if (S == 1) {
                                    long ox = lo;
                                    const hc_vf wvv = hc_vset1(wv);
                                    for (; ox + HC_VLEN <= hi; ox += HC_VLEN)
                                        hc_vst(yr + ox, hc_vfma(wvv, hc_vld(xr + ox), hc_vld(yr + ox)));
                                    for (; ox < hi; ox++) yr[ox] += wv * xr[ox];
                                } else {
                                    for (long ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox * S];
                                }
                            }
                        }
                    }
                }\(activation(k, "yp + oy0 * OW", count: "(oy1 - oy0) * OW", indent: "        "))
            }

        """
    }

    // MARK: matmul

    static func matmul(_ k: Kernel) -> String {
        let ra = k.operands[0].shape.count, rb = k.operands[1].shape.count, ry = k.result.shape.count
        let batchRank = ry - 2
        // Batch strides of each operand under broadcasting: 0 where its dimension is 1 (or missing).
        func strides(_ t: String, _ r: Int, _ shape: SymbolicShape) -> [String] {
            (0..<batchRank).map { d in
                let od = d - (batchRank - (r - 2))
                if od < 0 || (shape[od].isConstant && shape[od].coefficient == 1) { return "0" }
                return product(t, (od + 1)..<r)
            }
        }
        let sa = strides("x0", ra, k.operands[0].shape), sb = strides("x1", rb, k.operands[1].shape)
        var decompose = "        long r = bi;\n"
        var aoff = "0", boff = "0"
        for d in stride(from: batchRank - 1, through: 0, by: -1) {
            decompose += "        const long i\(d) = r % y_d\(d); r /= y_d\(d);\n"
            aoff += " + i\(d) * (\(sa[d]))"
            boff += " + i\(d) * (\(sb[d]))"
        }
        decompose += "        (void)r;\n"
        return """
            const long M = y_d\(ry - 2), NN = y_d\(ry - 1), K = x0_d\(ra - 1);
            const long BATCH = \(product("y", 0..<batchRank));
            long b, e;
            hc_split(BATCH * M, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long bi = item / M, i = item % M;
        \(decompose)        const float *ar = x0 + (\(aoff)) + i * K;
                const float *bm = x1 + (\(boff));
                float *yr = y + item * NN;
                for (long j = 0; j < NN; j++) yr[j] = 0.0f;
                for (long p = 0; p < K; p++) {
                    const float av = ar[p];
                    const float *br = bm + p * NN;
                    for (long j = 0; j < NN; j++) yr[j] += av * br[j];
                }
            }

        """
    }

    // MARK: normalisation

    /// With `gated`, the last operand z gates the result: LN(x)·silu(z) (SS2D's out_norm and its gate, one kernel).
    /// Tiles of inner positions (pixels; the schedule sizes them so that a tile of every channel stays in L2) are
    /// split over threads; each tile takes three vectorised passes over the channels, each reading whole
    /// contiguous runs of a channel (prefetch-friendly): the sums into the tile's mean, the squared deviations
    /// about it (two-pass variance), then normalise-scale-shift (and gate). Each position is summed in channel
    /// order, so no result depends on the tiling or the thread count.
    static func layerNorm(_ k: Kernel, axis: Int, eps: Double, centered: Bool, gated: Bool = false) -> String {
        let rank = k.result.shape.count
        let hasBias = k.operands.count == (gated ? 4 : 3)
        let z = "x\(k.operands.count - 1)"
        let tile = k.schedule.tile("inner")
        // A loop over the tile's positions in whole vectors, then the last partial one: `body(load)` is the C of
        // one vector step at j (its loads through `load`), `store` its store.
        func positions(_ indent: String, _ body: (_ load: (String) -> String, _ store: (String, String) -> String) -> String) -> String {
            let full = body({ "hc_vld(\($0) + j)" }, { "hc_vst(\($0) + j, \($1));" })
            let part = body({ "hc_vld_partial(\($0) + j, n)" }, { "hc_vst_partial(\($0) + j, \($1), n);" })
            return "\(indent)long j = 0;\n"
                + "\(indent)for (; j + HC_VLEN <= m; j += HC_VLEN) { \(full) }\n"
                + "\(indent)if (j < m) { const int n = (int)(m - j); \(part) }\n"
        }
        let sum = positions("                ") { ld, st in st("mean", "hc_vadd(\(ld("mean")), \(ld("xr")))") }
        let square = positions("                ") { ld, st in
            "const hc_vf d = hc_vsub(\(ld("xr")), \(ld("mean"))); \(st("rstd", "hc_vfma(d, d, \(ld("rstd")))"))"
        }
        let normalise = positions("                ") { ld, st in
            var v = "hc_vfma(hc_vmul(\(centered ? "hc_vsub(\(ld("xr")), \(ld("mean")))" : ld("xr")), \(ld("rstd"))), wc, bc)"
            if gated { v = "hc_vmul(\(v), hc_vsilu(\(ld("zr"))))" }
            return st("yr", v)
        }
        return """
            const long OUTER = \(product("y", 0..<axis)), NC = y_d\(axis), INNER = \(product("y", (axis + 1)..<rank));
            const long TI = \(tile), ntiles = (INNER + TI - 1) / TI;
            const float eps = \(cFloat(eps));
            const hc_vf vnc = hc_vset1((float)NC);
            long b, e;
            hc_split(OUTER * ntiles, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long o = item / ntiles, j0 = (item % ntiles) * TI;
                const long m = (j0 + TI < INNER ? j0 + TI : INNER) - j0;
                const float *xs = x0 + o * NC * INNER + j0;
                float *ys = y + o * NC * INNER + j0;\(gated ? "\n        const float *zs = \(z) + o * NC * INNER + j0;" : "")
                float mean[\(tile) + HC_VLEN], rstd[\(tile) + HC_VLEN];
                for (long j = 0; j < m; j += HC_VLEN) { hc_vst(mean + j, hc_vzero()); hc_vst(rstd + j, hc_vzero()); }
                for (long c = 0; c < NC; c++) {
                    const float *xr = xs + c * INNER;
        \(sum)        }
                for (long j = 0; j < m; j += HC_VLEN) hc_vst(mean + j, hc_vdiv(hc_vld(mean + j), vnc));
                for (long c = 0; c < NC; c++) {
                    const float *xr = xs + c * INNER;
        \(square)        }
                for (long j = 0; j < m; j++) rstd[j] = 1.0f / sqrtf(rstd[j] / (float)NC + eps);
                for (long c = 0; c < NC; c++) {
                    const hc_vf wc = hc_vset1(x1[c]), bc = hc_vset1(\(hasBias ? "x2[c]" : "0.0f"));
                    const float *xr = xs + c * INNER;
                    float *yr = ys + c * INNER;\(gated ? "\n            const float *zr = zs + c * INNER;" : "")
        \(normalise)        }
            }

        """
    }

    /// softmax and l2_normalize: one reduction per (outer, inner) position along the axis, accumulated in double.
    static func rowReduction(_ k: Kernel, axis: Int) throws -> String {
        let rank = k.result.shape.count
        let head = """
            const long OUTER = \(product("y", 0..<axis)), NA = y_d\(axis), INNER = \(product("y", (axis + 1)..<rank));
            long b, e;
            hc_split(OUTER * INNER, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long o = item / INNER, j = item % INNER;
                const float *xs = x0 + o * NA * INNER + j;
                float *ys = y + o * NA * INNER + j;

        """
        if k.op.kind == .softmax {
            return head + """
                    float top = xs[0];
                    for (long i = 1; i < NA; i++) if (xs[i * INNER] > top) top = xs[i * INNER];
                    double sum = 0.0;
                    for (long i = 0; i < NA; i++) sum += (double)hc_expf(xs[i * INNER] - top);
                    const float inv = (float)(1.0 / sum);
                    for (long i = 0; i < NA; i++) ys[i * INNER] = hc_expf(xs[i * INNER] - top) * inv;
                }

            """
        }
        let eps = try k.op.attributes.float("eps")
        return head + """
                double sum = 0.0;
                for (long i = 0; i < NA; i++) sum += (double)xs[i * INNER] * (double)xs[i * INNER];
                double norm = sqrt(sum);
                if (norm < \(cFloat(eps, double: true))) norm = \(cFloat(eps, double: true));
                const float inv = (float)(1.0 / norm);
                for (long i = 0; i < NA; i++) ys[i * INNER] = xs[i * INNER] * inv;
            }

        """
    }

    // MARK: elementwise

    static func unary(_ k: Kernel) -> String {
        let f: String
        switch k.op.kind {
        case .gelu: f = "hc_geluf(v)"
        case .silu: f = "hc_siluf(v)"
        case .sigmoid: f = "hc_sigmoidf(v)"
        case .softplus: f = "hc_softplusf(v)"
        case .relu: f = "(v > 0.0f ? v : 0.0f)"
        case .exp: f = "hc_expf(v)"
        default: f = "(-v)"
        }
        return """
            const long COUNT = \(product("y", 0..<k.result.shape.count)), CHUNK = \(k.schedule.tile("elements"));
            long b, e;
            hc_split((COUNT + CHUNK - 1) / CHUNK, tid, nt, &b, &e);
            for (long c = b; c < e; c++) {
                const long i1 = (c + 1) * CHUNK < COUNT ? (c + 1) * CHUNK : COUNT;
                for (long i = c * CHUNK; i < i1; i++) { const float v = x0[i]; y[i] = \(f); }
            }

        """
    }

    /// Binary ops with NumPy broadcasting: rows of the output's last axis, operand strides 0 where broadcast.
    static func binary(_ k: Kernel) -> String {
        let r = k.result.shape.count
        let symbol = ["add": "+", "sub": "-", "mul": "*", "div": "/"][k.op.kind.name]!
        func strides(_ t: String, _ shape: SymbolicShape) -> [String] {
            (0..<r).map { d in
                let od = d - (r - shape.count)
                if od < 0 || (shape[od].isConstant && shape[od].coefficient == 1 && !(k.result.shape[d].isConstant && k.result.shape[d].coefficient == 1)) {
                    return "0"
                }
                return product(t, (od + 1)..<shape.count)
            }
        }
        if r == 0 { return "    if (tid == 0) y[0] = x0[0] \(symbol) x1[0];\n" }
        let sa = strides("x0", k.operands[0].shape), sb = strides("x1", k.operands[1].shape)
        var decompose = "        long r = row;\n"
        var aoff = "0", boff = "0"
        for d in stride(from: r - 2, through: 0, by: -1) {
            decompose += "        const long i\(d) = r % y_d\(d); r /= y_d\(d);\n"
            aoff += " + i\(d) * (\(sa[d]))"
            boff += " + i\(d) * (\(sb[d]))"
        }
        decompose += "        (void)r;\n"
        let last = r - 1
        let aIndex = sa[last] == "0" ? "ap[0]" : "ap[j]", bIndex = sb[last] == "0" ? "bp[0]" : "bp[j]"
        return """
            const long LAST = y_d\(last), ROWS = \(product("y", 0..<last));
            long b, e;
            hc_split(ROWS, tid, nt, &b, &e);
            for (long row = b; row < e; row++) {
        \(decompose)        const float *ap = x0 + (\(aoff)), *bp = x1 + (\(boff));
                float *yr = y + row * LAST;
                for (long j = 0; j < LAST; j++) yr[j] = \(aIndex) \(symbol) \(bIndex);
            }

        """
    }

    /// `add` with scaled operands (fuse-elementwise): y = a·sa + b·sb, every operand broadcast to the output as in
    /// `binary` (rows of the last axis, stride 0 where an operand's dimension is 1).
    static func scaledAdd(_ k: Kernel) throws -> String {
        let r = k.result.shape.count
        let scaled = try Epilogue.scaled(k.op.attributes)
        func strides(_ t: String, _ shape: SymbolicShape) -> [String] {
            (0..<r).map { d in
                let od = d - (r - shape.count)
                if od < 0 || (shape[od].isConstant && shape[od].coefficient == 1 && !(k.result.shape[d].isConstant && k.result.shape[d].coefficient == 1)) {
                    return "0"
                }
                return product(t, (od + 1)..<shape.count)
            }
        }
        let n = k.operands.count
        let all = (0..<n).map { strides("x\($0)", k.operands[$0].shape) }
        var decompose = "        long r = row;\n"
        var offsets = [String](repeating: "0", count: n)
        for d in stride(from: r - 2, through: 0, by: -1) {
            decompose += "        const long i\(d) = r % y_d\(d); r /= y_d\(d);\n"
            for i in 0..<n { offsets[i] += " + i\(d) * (\(all[i][d]))" }
        }
        decompose += "        (void)r;\n"
        let pointers = (0..<n).map { "*p\($0) = x\($0) + (\(offsets[$0]))" }.joined(separator: ", ")
        func at(_ i: Int) -> String { all[i][r - 1] == "0" ? "p\(i)[0]" : "p\(i)[j]" }
        let lhs = scaled.lhs ? "\(at(0)) * \(at(2))" : at(0)
        let rhs = scaled.rhs ? "\(at(1)) * \(at(n - 1))" : at(1)
        return """
            const long LAST = y_d\(r - 1), ROWS = \(product("y", 0..<(r - 1)));
            long b, e;
            hc_split(ROWS, tid, nt, &b, &e);
            for (long row = b; row < e; row++) {
        \(decompose)        const float \(pointers);
                float *yr = y + row * LAST;
                for (long j = 0; j < LAST; j++) yr[j] = \(lhs) + \(rhs);
            }

        """
    }

    // MARK: data movement

    static func concat(_ k: Kernel, axis: Int) -> String {
        let rank = k.result.shape.count
        var s = """
            const long OUTER = \(product("y", 0..<axis)), N = y_d\(axis), INNER = \(product("y", (axis + 1)..<rank));
            const long K = \(k.operands.count);
            const float *srcs[\(k.operands.count)] = {\(k.operands.indices.map { "x\($0)" }.joined(separator: ", "))};
            const long sizes[\(k.operands.count)] = {\(k.operands.indices.map { "x\($0)_d\(axis)" }.joined(separator: ", "))};
            long b, e;
            hc_split(OUTER * K, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long o = item / K, q = item % K;
                long offset = 0;
                for (long i = 0; i < q; i++) offset += sizes[i];
                memcpy(y + (o * N + offset) * INNER, srcs[q] + o * sizes[q] * INNER, (size_t)(sizes[q] * INNER) * sizeof(float));
            }

        """
        s += ""
        return s
    }

    static func transpose(_ k: Kernel, perm: [Int]) -> String {
        let r = perm.count
        // Input stride of each output axis.
        let inStride = (0..<r).map { product("x0", (perm[$0] + 1)..<r) }
        var decompose = "        long r = row;\n"
        var off = "0"
        for d in stride(from: r - 2, through: 0, by: -1) {
            decompose += "        const long i\(d) = r % y_d\(d); r /= y_d\(d);\n"
            off += " + i\(d) * (\(inStride[d]))"
        }
        decompose += "        (void)r;\n"
        return """
            const long LAST = y_d\(r - 1), ROWS = \(product("y", 0..<(r - 1)));
            const long SL = \(inStride[r - 1]);
            long b, e;
            hc_split(ROWS, tid, nt, &b, &e);
            for (long row = b; row < e; row++) {
        \(decompose)        const float *xp = x0 + (\(off));
                float *yr = y + row * LAST;
                for (long j = 0; j < LAST; j++) yr[j] = xp[j * SL];
            }

        """
    }

    static func pixelShuffle(_ k: Kernel, factor r: Int, inverse: Bool) -> String {
        // Channel c·r² + i·r + j of the small tensor is pixel (c, y·r + i, x·r + j) of the large one.
        let small = inverse ? "y" : "x0", large = inverse ? "x0" : "y"
        let assign = inverse ? "sp[yy * W + xx] = lp[(yy * R + i) * W * R + xx * R + j]"
                             : "lp[(yy * R + i) * W * R + xx * R + j] = sp[yy * W + xx]"
        return """
            const long R = \(r), N = \(small)_d0, CS = \(small)_d1, H = \(small)_d2, W = \(small)_d3;
            const long CL = CS / (R * R);
            long b, e;
            hc_split(N * CS, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long n = item / CS, cs = item % CS;
                const long c = cs / (R * R), i = (cs / R) % R, j = cs % R;
                \(inverse ? "float" : "const float") *sp = \(inverse ? "y" : "x0") + item * H * W;
                \(inverse ? "const float" : "float") *lp = \(large) + (n * CL + c) * H * R * W * R;
                for (long yy = 0; yy < H; yy++)
                    for (long xx = 0; xx < W; xx++) \(assign);
            }

        """
    }

    static func reduceMean(_ k: Kernel, axes: [Int]) -> String {
        let r = k.result.shape.count
        if !axes.isEmpty, axes.sorted() == Array((r - axes.count)..<r) {
            // The reduced axes are the trailing ones (CAB's channel pooling over H·W): each output sums one
            // contiguous run, in fixed blocks of 1024 floats summed in four vector accumulators, each block's
            // sum added in double (the order depends on HC_VLEN only, never on the thread count).
            return """
                const long COUNT = \(product("y", 0..<r)), RED = \(product("x0", (r - axes.count)..<r));
                long b, e;
                hc_split(COUNT, tid, nt, &b, &e);
                for (long item = b; item < e; item++) {
                    const float *xp = x0 + item * RED;
                    double sum = 0.0;
                    for (long c0 = 0; c0 < RED; c0 += 1024) {
                        const long n = RED - c0 < 1024 ? RED - c0 : 1024;
                        const float *xc = xp + c0;
                        hc_vf a0 = hc_vzero(), a1 = hc_vzero(), a2 = hc_vzero(), a3 = hc_vzero();
                        long i = 0;
                        for (; i + 4 * HC_VLEN <= n; i += 4 * HC_VLEN) {
                            a0 = hc_vadd(a0, hc_vld(xc + i));
                            a1 = hc_vadd(a1, hc_vld(xc + i + HC_VLEN));
                            a2 = hc_vadd(a2, hc_vld(xc + i + 2 * HC_VLEN));
                            a3 = hc_vadd(a3, hc_vld(xc + i + 3 * HC_VLEN));
                        }
                        for (; i + HC_VLEN <= n; i += HC_VLEN) a0 = hc_vadd(a0, hc_vld(xc + i));
                        float t = hc_vhsum(hc_vadd(hc_vadd(a0, a1), hc_vadd(a2, a3)));
                        for (; i < n; i++) t += xc[i];
                        sum += (double)t;
                    }
                    y[item] = (float)(sum / (double)RED);
                }

            """
        }
        let inStrides = (0..<r).map { product("x0", ($0 + 1)..<r) }
        var decompose = "        long r = item;\n"
        var base = "0"
        for d in stride(from: r - 1, through: 0, by: -1) where !axes.contains(d) {
            decompose += "        const long i\(d) = r % y_d\(d); r /= y_d\(d);\n"
            base += " + i\(d) * (\(inStrides[d]))"
        }
        decompose += "        (void)r;\n"
        var loops = "", indent = "        ", offset = "base"
        for d in axes.sorted() {
            loops += "\(indent)for (long r\(d) = 0; r\(d) < x0_d\(d); r\(d)++)\n"
            indent += "    "
            offset += " + r\(d) * (\(inStrides[d]))"
        }
        let count = axes.map { "x0_d\($0)" }.joined(separator: " * ")
        return """
            const long COUNT = \(product("y", 0..<r));
            long b, e;
            hc_split(COUNT, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
        \(decompose)        const long base = \(base);
                double sum = 0.0;
        \(loops)\(indent)sum += (double)x0[\(offset)];
                y[item] = (float)(sum / (double)(\(count.isEmpty ? "1" : count)));
            }

        """
    }

    // MARK: selective scan

    /// The C expressions both scan kernels (sequential and chunked) are built from: the state size, the B or C
    /// element at (bb, d, s, l) for each of their three layouts, dt after bias and softplus, the output with the
    /// D skip (from `yv` and `u`), and the z gate factor ("" without z).
    static func scanExpressions(_ k: Kernel) throws -> (n: Int, index: (Int) -> String, dt: String, skipped: String, gate: String) {
        let roles = try ShapeRules.selectiveScanRoles(k.op.attributes)
        let softplus = try k.op.attributes.bool("delta_softplus")
        func operand(_ role: String) -> String? { roles.firstIndex(of: role).map { "x\($0)" } }
        // B and C: (D, N) fixed, (B, N, L) shared, or (B, G, N, L) grouped by channel.
        let shapes = k.operands.map(\.shape.count)
        func index(_ i: Int) -> String {
            switch shapes[i] {
            case 2: return "x\(i)[d * NS + s]"
            case 3: return "x\(i)[(bb * NS + s) * L + l]"
            default: return "x\(i)[((bb * x\(i)_d1 + d / (D / x\(i)_d1)) * NS + s) * L + l]"
            }
        }
        var dt = "x1[row + l]"
        if let bias = operand("delta_bias") { dt = "(\(dt) + \(bias)[d])" }
        let skipped = operand("D").map { "(yv + u * \($0)[d])" } ?? "yv"
        let gate = operand("z").map { " * hc_siluf(\($0)[row + l])" } ?? ""
        return (k.operands[2].shape[1].coefficient, index, softplus ? "hc_softplusf(\(dt))" : dt, skipped, gate)
    }

    static func selectiveScan(_ k: Kernel) throws -> String {
        let (n, index, dtExpr, skipped, gate) = try scanExpressions(k)
        let out = skipped + gate
        return """
            const long BT = x0_d0, D = x0_d1, L = x0_d2, NS = \(n);
            long b, e;
            hc_split(BT * D, tid, nt, &b, &e);
            for (long item = b; item < e; item++) {
                const long bb = item / D, d = item % D, row = item * L;
                float h[\(n)];
                for (long s = 0; s < NS; s++) h[s] = 0.0f;
                for (long l = 0; l < L; l++) {
                    const float dt = \(dtExpr);
                    const float u = x0[row + l];
                    float yv = 0.0f;
                    for (long s = 0; s < NS; s++) {
                        h[s] = hc_expf(dt * x2[d * NS + s]) * h[s] + dt * \(index(3)) * u;
                        yv += h[s] * \(index(4));
                    }
                    y[row + l] = \(out);
                }
            }

        """
    }

    /// A C float literal that reads back exactly.
    static func cFloat(_ v: Double, double: Bool = false) -> String {
        var s = double ? "\(v)" : "\(Float(v))"
        if !s.contains(".") && !s.contains("e") { s += ".0" }
        return double ? s : s + "f"
    }
}
