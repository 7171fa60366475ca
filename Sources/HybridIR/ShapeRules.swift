/// The typing rule of every op: checks operand types and attributes and gives the result type.
public enum ShapeRules {
    /// The result type of `op` given its operand types. Throws a message without the op's name; callers
    /// (the verifier, `infer-shapes`) prefix it with the op's label.
    public static func resultType(of op: Operation, operands t: [TensorType]) throws -> TensorType {
        let a = op.attributes
        func expectOperands(_ range: ClosedRange<Int>) throws {
            guard range.contains(t.count) else {
                let want = range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)"
                throw HybridError("expects \(want) operands, got \(t.count)")
            }
        }
        func rank(_ i: Int, _ r: Int, _ what: String) throws {
            guard t[i].rank == r else { throw HybridError("\(what) must have rank \(r), got \(t[i])") }
        }
        func axis(_ key: String, rank r: Int) throws -> Int {
            let v = try a.int(key)
            guard v >= 0 && v < r else { throw HybridError("\(key) \(v) is out of range for rank \(r)") }
            return v
        }
        let elem = t.first?.elementType ?? .f32

        switch op.kind {
        case .weight:
            _ = try a.string("name")
            guard t.isEmpty else { throw HybridError("expects no operands") }
            guard let declared = op.type else { throw HybridError("a weight needs its type written out") }
            return declared

        case .transformerBlock, .ssmBlock:
            guard !t.isEmpty else { throw HybridError("expects the block input as its first operand") }
            try rank(0, 4, "input")
            let c = t[0].shape[1]
            if op.kind == .transformerBlock {
                let heads = try a.int("heads")
                guard heads > 0 && c % heads == 0 else {
                    throw HybridError("\(c) channels are not divisible by \(heads) heads")
                }
            } else {
                let squeeze = try a.int("squeeze_factor")
                guard squeeze > 0 && c / squeeze >= 1 else {
                    throw HybridError("\(c) channels leave no channel for the channel attention (C // \(squeeze) = 0)")
                }
                guard try a.int("compress_ratio") > 0 && c / (try a.int("compress_ratio")) >= 1 else {
                    throw HybridError("compress_ratio leaves no channels")
                }
            }
            let params = try BlockParameters.of(op, channels: c)
            guard t.count == params.count + 1 else {
                throw HybridError("expects \(params.count + 1) operands (input and \(params.count) weights), got \(t.count)")
            }
            for (i, p) in params.enumerated() where t[i + 1].shape != p.shape {
                throw HybridError("weight operand \(i + 1) (\(p.key)) must have shape \(p.shape), got \(t[i + 1].shape)")
            }
            return t[0]

        case .downsample, .upsample:
            try expectOperands(2...2)
            try rank(0, 4, "input")
            try rank(1, 4, "weight")
            let (x, w) = (t[0].shape, t[1].shape)
            guard w[1] == x[1], w[2] == 3, w[3] == 3 else {
                throw HybridError("weight \(w) must be [out, \(x[1]), 3, 3]")
            }
            if op.kind == .downsample {
                guard x[2] % 2 == 0, x[3] % 2 == 0 else { throw HybridError("height and width \(x[2])x\(x[3]) must be even") }
                return TensorType(elem, [x[0], w[0] * 4, x[2] / 2, x[3] / 2])
            }
            guard w[0] % 4 == 0 else { throw HybridError("output channels \(w[0]) must be divisible by 4") }
            return TensorType(elem, [x[0], w[0] / 4, x[2] * 2, x[3] * 2])

        case .conv2d:
            let fusedResidual = try Epilogue.convResidual(a)
            let norm = try FoldedNorm.of(a)
            let extra = (fusedResidual.residual ? 1 : 0) + (fusedResidual.scaled ? 1 : 0) + (norm?.operandCount ?? 0)
            try expectOperands((2 + extra)...(3 + extra))
            try rank(0, 4, "input")
            try rank(1, 4, "weight")
            let (x, w) = (t[0].shape, t[1].shape)
            let groups = try a.int("groups"), padding = try a.int("padding"), stride = try a.int("stride", default: 1)
            guard groups > 0, x[1] % groups == 0, w[0] % groups == 0 else {
                throw HybridError("groups \(groups) must divide input channels \(x[1]) and output channels \(w[0])")
            }
            guard w[1] == x[1] / groups else {
                throw HybridError("weight \(w) must have \(x[1] / groups) input channels per group")
            }
            guard padding >= 0, stride > 0 else { throw HybridError("padding must be >= 0 and stride > 0") }
            if t.count - extra == 3 {
                guard t[2].shape == [w[0]] else { throw HybridError("bias must have shape [\(w[0])], got \(t[2].shape)") }
            }
            _ = try Epilogue.activation(a)
            // A folded channel LayerNorm (fold-layer-norm) normalises each input pixel: 1x1 projections only. An
            // unfolded one (norm_affine: γ and β are operands after the bias) suits any dense convolution.
            if let norm {
                if norm.affine {
                    guard groups == 1 else { throw HybridError("a layer norm with its γ and β needs a dense convolution (groups 1)") }
                    let first = Epilogue.convNormStart(a, operandCount: t.count)
                    let affineEnd = first + norm.operandCount - (norm.gated ? 1 : 0)
                    for i in first..<affineEnd where t[i].shape != [x[1]] {
                        throw HybridError("norm \(i == first ? "weight" : "bias") must have shape [\(x[1])], got \(t[i].shape)")
                    }
                    // A gated norm (fuse-gated-norm): z, the input's shape, after γ (and β); a 1x1 projection only.
                    if norm.gated {
                        guard w[2] == 1, w[3] == 1, padding == 0, stride == 1 else {
                            throw HybridError("a gated layer norm needs a 1x1 convolution (groups 1, padding 0, stride 1)")
                        }
                        guard t[affineEnd] == t[0] else {
                            throw HybridError("norm gate must have the input's type \(t[0]), got \(t[affineEnd])")
                        }
                    }
                } else {
                    guard w[2] == 1, w[3] == 1, groups == 1, padding == 0, stride == 1 else {
                        throw HybridError("a folded layer norm needs a 1x1 convolution (groups 1, padding 0, stride 1)")
                    }
                }
            }
            let ho = (x[2] + 2 * padding - w[2]) / stride + 1, wo = (x[3] + 2 * padding - w[3]) / stride + 1
            guard ho > 0, wo > 0 else { throw HybridError("kernel \(w[2])x\(w[3]) does not fit input \(x[2])x\(x[3])") }
            let result = TensorType(elem, [x[0], w[0], ho, wo])
            // A fused residual (fuse-elementwise) is added in the GEMM epilogue: groups 1, no activation, no norm but
            // a gated one (out_proj after fuse-gated-norm).
            if fusedResidual.residual {
                guard groups == 1, try Epilogue.activation(a) == nil, norm == nil || norm?.gated == true else {
                    throw HybridError("a fused residual needs a conv2d with groups 1, no activation and no folded norm but a gated one")
                }
                let r = t[t.count - (fusedResidual.scaled ? 2 : 1)]
                guard r == result else { throw HybridError("residual must have the output's type \(result), got \(r)") }
                if fusedResidual.scaled, t[t.count - 1].shape != [1, w[0], 1, 1] {
                    throw HybridError("residual scale must have shape [1, \(w[0]), 1, 1], got \(t[t.count - 1].shape)")
                }
            }
            return result

        case .matmul:
            try expectOperands(2...2)
            guard t[0].rank >= 2, t[1].rank >= 2 else { throw HybridError("operands must have rank >= 2") }
            if try a.bool("transpose_a", default: false) {
                // Aᵀ·B of two matrices (K, M) and (K, N): what `choose-layouts` writes for a GEMM whose output it
                // stores token-major.
                guard t[0].rank == 2, t[1].rank == 2, t[0].shape[0] == t[1].shape[0] else {
                    throw HybridError("transpose_a takes matrices (K, M) and (K, N), got \(t[0]) and \(t[1])")
                }
                return TensorType(elem, [t[0].shape[1], t[1].shape[1]])
            }
            let (l, r) = (t[0].shape, t[1].shape)
            guard l[l.count - 1] == r[r.count - 2] else {
                throw HybridError("inner dimensions do not match: \(t[0]) @ \(t[1])")
            }
            let batch = try broadcast(Array(l.dropLast(2)), Array(r.dropLast(2)))
            return TensorType(elem, batch + [l[l.count - 2], r[r.count - 1]])

        case .layerNorm:
            // With a `gate` ("silu"), the last operand z gates the result: LN(x)·silu(z) (SS2D's out_norm).
            let gated = try layerNormGate(a) != nil
            try expectOperands(gated ? 3...4 : 2...3)
            let ax = try axis("axis", rank: t[0].rank)
            _ = try a.float("eps")
            _ = try a.bool("centered")
            let n = t[0].shape[ax]
            for i in 1..<(gated ? t.count - 1 : t.count) where t[i].shape != [n] {
                throw HybridError("\(i == 1 ? "weight" : "bias") must have shape [\(n)], got \(t[i].shape)")
            }
            if gated, t[t.count - 1].shape != t[0].shape {
                throw HybridError("gate operand must have the input's shape \(t[0].shape), got \(t[t.count - 1].shape)")
            }
            return t[0]

        case .softmax, .l2Normalize:
            try expectOperands(1...1)
            _ = try axis("axis", rank: t[0].rank)
            if op.kind == .l2Normalize { _ = try a.float("eps") }
            return t[0]

        case .gelu, .silu, .sigmoid, .softplus, .relu, .exp, .neg:
            try expectOperands(1...1)
            return t[0]

        case .add, .sub, .mul, .div:
            // An add with `scaled` operands (fuse-elementwise) computes a·sa + b·sb; the scales broadcast.
            let scaled = op.kind == .add ? try Epilogue.scaled(a) : (lhs: false, rhs: false)
            if op.kind != .add, a["scaled"] != nil { throw HybridError("only add takes scaled operands") }
            let extra = (scaled.lhs ? 1 : 0) + (scaled.rhs ? 1 : 0)
            try expectOperands((2 + extra)...(2 + extra))
            let lhs = scaled.lhs ? try broadcast(t[0].shape, t[2].shape) : t[0].shape
            let rhs = scaled.rhs ? try broadcast(t[1].shape, t[t.count - 1].shape) : t[1].shape
            return TensorType(elem, try broadcast(lhs, rhs))

        case .concat:
            guard t.count >= 1 else { throw HybridError("expects at least one operand") }
            let ax = try axis("axis", rank: t[0].rank)
            var shape = t[0].shape
            for other in t.dropFirst() {
                guard other.rank == shape.count,
                      (0..<shape.count).allSatisfy({ $0 == ax || other.shape[$0] == shape[$0] }) else {
                    throw HybridError("operands \(t[0]) and \(other) differ outside axis \(ax)")
                }
                shape[ax] += other.shape[ax]
            }
            return TensorType(elem, shape)

        case .slice:
            try expectOperands(1...1)
            let ax = try axis("axis", rank: t[0].rank)
            let start = try a.int("start"), size = try a.int("size")
            guard start >= 0, size >= 1, start + size <= t[0].shape[ax] else {
                throw HybridError("slice [\(start), \(start + size)) is outside axis \(ax) of size \(t[0].shape[ax])")
            }
            var shape = t[0].shape
            shape[ax] = size
            return TensorType(elem, shape)

        case .reshape:
            try expectOperands(1...1)
            let shape = try a.ints("shape")
            guard shape.allSatisfy({ $0 > 0 }), shape.reduce(1, *) == t[0].elementCount else {
                throw HybridError("cannot reshape \(t[0]) to \(shape)")
            }
            return TensorType(elem, shape)

        case .transpose:
            try expectOperands(1...1)
            let perm = try a.ints("perm")
            guard perm.sorted() == Array(0..<t[0].rank) else {
                throw HybridError("perm \(perm) is not a permutation of 0..<\(t[0].rank)")
            }
            return TensorType(elem, perm.map { t[0].shape[$0] })

        case .flip:
            try expectOperands(1...1)
            _ = try axis("axis", rank: t[0].rank)
            return t[0]

        case .pixelShuffle, .pixelUnshuffle:
            try expectOperands(1...1)
            try rank(0, 4, "input")
            let r = try a.int("factor")
            guard r >= 1 else { throw HybridError("factor must be >= 1") }
            let s = t[0].shape
            if op.kind == .pixelShuffle {
                guard s[1] % (r * r) == 0 else { throw HybridError("channels \(s[1]) are not divisible by \(r * r)") }
                return TensorType(elem, [s[0], s[1] / (r * r), s[2] * r, s[3] * r])
            }
            guard s[2] % r == 0, s[3] % r == 0 else {
                throw HybridError("height and width \(s[2])x\(s[3]) are not divisible by \(r)")
            }
            return TensorType(elem, [s[0], s[1] * r * r, s[2] / r, s[3] / r])

        case .reduceMean:
            try expectOperands(1...1)
            let axes = try a.ints("axes")
            var shape = t[0].shape
            for ax in axes {
                guard ax >= 0 && ax < shape.count else { throw HybridError("axis \(ax) is out of range for \(t[0])") }
                shape[ax] = 1
            }
            return TensorType(elem, shape)

        case .selectiveScan:
            return try selectiveScanType(op, t)

        case .fusedAttention:
            return try fusedAttentionType(op, t)
        case .chunkedSelectiveScan:
            _ = try chunkedScanParameters(a)
            return try selectiveScanType(op, t)
        case .fusedFeedForward:
            return try fusedFeedForwardType(op, t)
        case .fusedPointwiseDepthwise:
            return try fusedPointwiseDepthwiseType(op, t)
        case .ss2dScan:
            return try ss2dScanType(op, t)
        }
    }

    /// Operand roles of `ss2d_scan` in order.
    public static let ss2dScanRoles = ["xs", "x_dbl", "dt_projs_weight", "A", "Ds", "dt_projs_bias"]

    /// The layouts `ss2d_scan` reads x_dbl in: "planar" (1, K·(R+2N), H, W), feature rows over pixels, or
    /// "token_major" (H·W, K·(R+2N)), one row of every direction's dt_raw, B and C per pixel.
    public static let ss2dLayouts = ["planar", "token_major"]

    /// The sizes of an `ss2d_scan` from its operand shapes, checked: channels E, height H, width W, directions K,
    /// dt rank R, d_state N, and whether x_dbl is token-major.
    public struct SS2DSizes: Equatable {
        public var e, h, w, k, r, n: Int
        public var tokenMajor: Bool
        /// R + 2N: the rows of x_dbl per direction (dt_raw, B, C in that order).
        public var rows: Int { r + 2 * n }
        public var length: Int { h * w }
    }

    public static func ss2dSizes(_ a: Attributes, _ s: [[Int]]) throws -> SS2DSizes {
        let directions = try a.int("directions"), layout = try a.string("x_dbl_layout")
        guard directions == 4 else { throw HybridError("SS2D scans 4 directions, got directions = \(directions)") }
        guard ss2dLayouts.contains(layout) else {
            throw HybridError("x_dbl_layout must be one of \(ss2dLayouts.joined(separator: ", ")), got '\(layout)'")
        }
        guard s.count == ss2dScanRoles.count else {
            throw HybridError("expects \(ss2dScanRoles.count) operands (\(ss2dScanRoles.joined(separator: ", "))), got \(s.count)")
        }
        guard s[0].count == 4, s[0][0] == 1 else { throw HybridError("xs must be (1, E, H, W), got \(s[0])") }
        let (e, h, w) = (s[0][1], s[0][2], s[0][3])
        guard s[2].count == 3, s[2][0] == directions, s[2][1] == e, s[2][2] > 0 else {
            throw HybridError("dt_projs_weight must be (\(directions), \(e), R), got \(s[2])")
        }
        let r = s[2][2]
        guard s[3].count == 2, s[3][0] == directions * e, s[3][1] > 0 else {
            throw HybridError("A must be (\(directions * e), N), got \(s[3])")
        }
        let sizes = SS2DSizes(e: e, h: h, w: w, k: directions, r: r, n: s[3][1], tokenMajor: layout == "token_major")
        let features = directions * sizes.rows
        let want = sizes.tokenMajor ? [h * w, features] : [1, features, h, w]
        guard s[1] == want else { throw HybridError("x_dbl (\(layout)) must be \(want), got \(s[1])") }
        for i in 4...5 where s[i] != [directions * e] {
            throw HybridError("\(ss2dScanRoles[i]) must have shape [\(directions * e)], got \(s[i])")
        }
        return sizes
    }

    /// `ss2d_scan`: xs (1, E, H, W), x_dbl, dt_projs_weight (K, E, R), A (K·E, N), Ds (K·E), dt_projs_bias (K·E)
    /// with attributes directions, x_dbl_layout, chunk, form and fuses -> (1, E, H, W).
    private static func ss2dScanType(_ op: Operation, _ t: [TensorType]) throws -> TensorType {
        _ = try chunkedScanParameters(op.attributes)
        _ = try op.attributes.string("fuses")
        _ = try ss2dSizes(op.attributes, t.map(\.shape))
        return t[0]
    }

    /// The gate of a `layer_norm` ("silu"), nil when it has none.
    public static func layerNormGate(_ a: Attributes) throws -> String? {
        guard a["gate"] != nil else { return nil }
        let gate = try a.string("gate")
        guard gate == "silu" else { throw HybridError("gate must be \"silu\", got '\(gate)'") }
        return gate
    }

    /// Operand roles of `fused_attention` in order; the three biases only when the `bias` attribute is true, and
    /// the qkv bias also when a WithBias layer norm is folded into qkv (its bias b + W·β).
    public static func fusedAttentionRoles(_ a: Attributes) throws -> [String] {
        let bias = try a.bool("bias"), qkvBias = try bias || FoldedNorm.of(a)?.centered == true
        return ["x", "qkv.weight"] + (qkvBias ? ["qkv.bias"] : []) + ["qkv_dwconv.weight"] + (bias ? ["qkv_dwconv.bias"] : [])
            + ["temperature", "project_out.weight"] + (bias ? ["project_out.bias"] : []) + (try residual(a) ? ["residual"] : [])
    }

    /// Operand roles of `fused_feed_forward` in order: biases when `bias` is true, and the project_in bias also
    /// when a WithBias layer norm is folded into project_in.
    public static func fusedFeedForwardRoles(_ a: Attributes) throws -> [String] {
        let bias = try a.bool("bias"), inBias = try bias || FoldedNorm.of(a)?.centered == true
        return ["x", "project_in"] + (inBias ? ["project_in bias"] : []) + ["dwconv"] + (bias ? ["dwconv bias"] : [])
            + ["project_out"] + (bias ? ["project_out bias"] : []) + (try residual(a) ? ["residual"] : [])
    }

    /// Operand roles of `fused_pointwise_depthwise` in order: the projection's bias when `in_bias` is true, the
    /// depthwise conv's when `bias` is.
    public static func fusedPointwiseDepthwiseRoles(_ a: Attributes) throws -> [String] {
        ["x", "project_in"] + (try a.bool("in_bias") ? ["project_in bias"] : []) + ["dwconv"]
            + (try a.bool("bias") ? ["dwconv bias"] : [])
    }

    /// `fused_pointwise_depthwise`: x (N, C, H, W), project_in (E, C, 1, 1), [bias (E)], dwconv (E, 1, 3, 3),
    /// [bias (E)] -> (N, E, H, W), E = `hidden`; an optional `activation` (Epilogue.activations) on the result.
    private static func fusedPointwiseDepthwiseType(_ op: Operation, _ t: [TensorType]) throws -> TensorType {
        let a = op.attributes
        let hidden = try a.int("hidden"), rowTile = try a.int("row_tile")
        _ = try a.string("fuses")
        _ = try Epilogue.activation(a)
        guard hidden > 0, rowTile > 0 else { throw HybridError("hidden and row_tile must be positive") }
        let roles = try fusedPointwiseDepthwiseRoles(a)
        guard t.count == roles.count else {
            throw HybridError("expects \(roles.count) operands (\(roles.joined(separator: ", "))), got \(t.count)")
        }
        guard t[0].rank == 4 else { throw HybridError("x must have rank 4, got \(t[0])") }
        let want: [String: [Int]] = ["project_in": [hidden, t[0].shape[1], 1, 1], "project_in bias": [hidden],
                                     "dwconv": [hidden, 1, 3, 3], "dwconv bias": [hidden]]
        for (i, role) in roles.enumerated().dropFirst() where t[i].shape != want[role]! {
            throw HybridError("\(role) must have shape \(want[role]!), got \(t[i].shape)")
        }
        return TensorType(t[0].elementType, [t[0].shape[0], hidden, t[0].shape[2], t[0].shape[3]])
    }

    /// Whether a fused op adds a residual operand (its last) to its result (`residual = true`, fuse-elementwise).
    public static func residual(_ a: Attributes) throws -> Bool {
        try a.bool("residual", default: false)
    }

    private static func fusedAttentionType(_ op: Operation, _ t: [TensorType]) throws -> TensorType {
        let roles = try fusedAttentionRoles(op.attributes)
        _ = try op.attributes.string("fuses")
        _ = try op.attributes.float("eps")
        guard t.count == roles.count else {
            throw HybridError("expects \(roles.count) operands (\(roles.joined(separator: ", "))), got \(t.count)")
        }
        guard t[0].rank == 4, t[0].shape[0] == 1 else { throw HybridError("x must be (1, C, H, W), got \(t[0])") }
        let c = t[0].shape[1], heads = try op.attributes.int("heads")
        guard heads > 0, c % heads == 0 else { throw HybridError("\(c) channels are not divisible by \(heads) heads") }
        let want: [String: [Int]] = ["qkv.weight": [3 * c, c, 1, 1], "qkv.bias": [3 * c], "qkv_dwconv.weight": [3 * c, 1, 3, 3],
                                     "qkv_dwconv.bias": [3 * c], "project_out.weight": [c, c, 1, 1], "project_out.bias": [c]]
        for (i, role) in roles.enumerated().dropFirst() {
            if role == "residual" {
                guard t[i] == t[0] else { throw HybridError("residual must have the output's type \(t[0]), got \(t[i])") }
                continue
            }
            if role == "temperature" {
                guard t[i].elementCount == heads, t[i].shape.filter({ $0 != 1 }).count <= 1 else {
                    throw HybridError("temperature must hold one value per head (\(heads)), got \(t[i])")
                }
                continue
            }
            guard t[i].shape == want[role] else {
                throw HybridError("\(role) must have shape \(want[role]!), got \(t[i].shape)")
            }
        }
        return t[0]
    }

    /// `fused_feed_forward` (GDFN, ARCHITECTURES.md 1.3): x (N, C, H, W), project_in (2h, C, 1, 1), [bias (2h)],
    /// dwconv (2h, 1, 3, 3), [bias (2h)], project_out (CO, h, 1, 1), [bias (CO)] -> (N, CO, H, W).
    private static func fusedFeedForwardType(_ op: Operation, _ t: [TensorType]) throws -> TensorType {
        let a = op.attributes
        let hidden = try a.int("hidden"), rowTile = try a.int("row_tile")
        _ = try a.string("fuses")
        guard hidden > 0, rowTile > 0 else { throw HybridError("hidden and row_tile must be positive") }
        let roles = try fusedFeedForwardRoles(a)
        guard t.count == roles.count else {
            throw HybridError("expects \(roles.count) operands (\(roles.joined(separator: ", "))), got \(t.count)")
        }
        guard t[0].rank == 4 else { throw HybridError("x must have rank 4, got \(t[0])") }
        let c = t[0].shape[1]
        let co = t[roles.firstIndex(of: "project_out")!].shape.first ?? 0
        let want: [String: [Int]] = ["project_in": [2 * hidden, c, 1, 1], "project_in bias": [2 * hidden],
                                     "dwconv": [2 * hidden, 1, 3, 3], "dwconv bias": [2 * hidden],
                                     "project_out": [co, hidden, 1, 1], "project_out bias": [co]]
        let out = [t[0].shape[0], co, t[0].shape[2], t[0].shape[3]]
        for (i, role) in roles.enumerated().dropFirst() where t[i].shape != (role == "residual" ? out : want[role]!) {
            throw HybridError("\(role) must have shape \(role == "residual" ? out : want[role]!), got \(t[i].shape)")
        }
        guard co > 0 else { throw HybridError("project_out has no output channels") }
        return TensorType(t[0].elementType, [t[0].shape[0], co, t[0].shape[2], t[0].shape[3]])
    }

    /// Operand roles of `selective_scan` in order: u, delta, A, B, C, then the optional D, z, delta_bias.
    public static func selectiveScanRoles(_ a: Attributes) throws -> [String] {
        var roles = ["u", "delta", "A", "B", "C"]
        if try a.bool("has_D") { roles.append("D") }
        if try a.bool("has_z") { roles.append("z") }
        if try a.bool("has_delta_bias") { roles.append("delta_bias") }
        return roles
    }

    /// The forms of `chunked_selective_scan`.
    public static let chunkedScanForms = ["recurrent", "carry"]

    /// `chunk` (steps per chunk, at least 1) and `form` of a `chunked_selective_scan`, checked.
    public static func chunkedScanParameters(_ a: Attributes) throws -> (chunk: Int, form: String) {
        let chunk = try a.int("chunk"), form = try a.string("form")
        guard chunk >= 1 else { throw HybridError("chunk must be at least 1, got \(chunk)") }
        guard chunkedScanForms.contains(form) else {
            throw HybridError("form must be one of \(chunkedScanForms.joined(separator: ", ")), got '\(form)'")
        }
        return (chunk, form)
    }

    private static func selectiveScanType(_ op: Operation, _ t: [TensorType]) throws -> TensorType {
        let roles = try selectiveScanRoles(op.attributes)
        _ = try op.attributes.bool("delta_softplus")
        guard t.count == roles.count else {
            throw HybridError("expects \(roles.count) operands (\(roles.joined(separator: ", "))), got \(t.count)")
        }
        guard t[0].rank == 3 else { throw HybridError("u must be (batch, channels, length), got \(t[0])") }
        let (b, d, l) = (t[0].shape[0], t[0].shape[1], t[0].shape[2])
        guard t[1].shape == t[0].shape else { throw HybridError("delta must match u \(t[0].shape), got \(t[1].shape)") }
        guard t[2].rank == 2, t[2].shape[0] == d else { throw HybridError("A must be (\(d), N), got \(t[2])") }
        let n = t[2].shape[1]
        for (i, name) in [(3, "B"), (4, "C")] {
            let s = t[i].shape
            let ok = s == [d, n] || s == [b, n, l] || (s.count == 4 && s[0] == b && s[1] > 0 && d % s[1] == 0 && s[2] == n && s[3] == l)
            guard ok else {
                throw HybridError("\(name) must be (\(d), \(n)), (\(b), \(n), \(l)) or (\(b), G, \(n), \(l)) with G dividing \(d), got \(s)")
            }
        }
        for (i, role) in roles.enumerated().dropFirst(5) {
            let want = role == "z" ? [b, d, l] : [d]
            guard t[i].shape == want else { throw HybridError("\(role) must have shape \(want), got \(t[i].shape)") }
        }
        return t[0]
    }

    /// NumPy broadcasting of two shapes.
    public static func broadcast(_ x: [Int], _ y: [Int]) throws -> [Int] {
        let n = max(x.count, y.count)
        let px = [Int](repeating: 1, count: n - x.count) + x
        let py = [Int](repeating: 1, count: n - y.count) + y
        return try (0..<n).map { i in
            if px[i] == py[i] || py[i] == 1 { return px[i] }
            if px[i] == 1 { return py[i] }
            throw HybridError("shapes \(x) and \(y) do not broadcast")
        }
    }
}
