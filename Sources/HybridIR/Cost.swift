/// Analytic operation counts (ARCHITECTURES.md section 4): multiply-accumulates of convolutions and matmuls,
/// and FLOP = 2·MAC + an elementwise estimate per op.
public struct Cost: Equatable {
    public var macs: Int = 0
    public var elementwiseFlops: Int = 0

    public init(macs: Int = 0, elementwiseFlops: Int = 0) {
        self.macs = macs
        self.elementwiseFlops = elementwiseFlops
    }

    public var flops: Int { 2 * macs + elementwiseFlops }

    public static func + (l: Cost, r: Cost) -> Cost {
        Cost(macs: l.macs + r.macs, elementwiseFlops: l.elementwiseFlops + r.elementwiseFlops)
    }

    public static func += (l: inout Cost, r: Cost) { l = l + r }

    /// FLOP per output element of elementwise-style ops (the estimate of section 4).
    public static func flopsPerElement(_ op: Operation) -> Int {
        switch op.kind {
        case .layerNorm:
            // A gated norm (LN(x)·silu(z)) adds the SiLU and the product.
            let gated = op.attributes["gate"] != nil
            return (op.operands.count == (gated ? 4 : 3) ? 8 : 6) + (gated ? 6 : 0)
        case .l2Normalize: return 3
        case .gelu: return 9
        case .silu, .softplus, .softmax: return 5
        case .sigmoid: return 4
        case .add:
            // Each scaled operand adds its product (the mul it replaced).
            let scaled = (try? Epilogue.scaled(op.attributes)) ?? (lhs: false, rhs: false)
            return 1 + (scaled.lhs ? 1 : 0) + (scaled.rhs ? 1 : 0)
        case .relu, .exp, .neg, .sub, .mul, .div: return 1
        default: return 0
        }
    }

    /// The cost of one typed primitive op given its operand types.
    public static func of(_ op: Operation, operands t: [TensorType]) -> Cost {
        guard let out = op.type else { return Cost() }
        // A folded layer norm still normalises every input element (the estimate of the layer_norm it replaced; a
        // gated one adds the SiLU and the product, as the gated layer_norm did).
        let norm = Cost(elementwiseFlops: (try? FoldedNorm.of(op.attributes)).flatMap { $0 }.map {
            t[0].elementCount * (($0.centered ? 8 : 6) + ($0.gated ? 6 : 0))
        } ?? 0)
        // A fused residual (fuse-elementwise) costs the add it replaced.
        let residual = Cost(elementwiseFlops: op.attributes["residual"] == .bool(true) ? out.elementCount : 0)
        switch op.kind {
        case .conv2d:
            let w = t[1].shape
            // A fused activation costs what the separate op did.
            let activation = ((try? Epilogue.activation(op.attributes)) ?? nil).map {
                Cost(elementwiseFlops: out.elementCount * flopsPerElement(Operation(kind: $0, operands: [], result: 0)))
            } ?? Cost()
            // A fused residual costs the add (and the skip-scale mul) it replaced.
            let fusedResidual = (try? Epilogue.convResidual(op.attributes)) ?? (residual: false, scaled: false)
            let addition = Cost(elementwiseFlops: fusedResidual.residual ? out.elementCount * (fusedResidual.scaled ? 2 : 1) : 0)
            return Cost(macs: out.elementCount * w[1] * w[2] * w[3]) + norm + activation + addition
        case .matmul:
            // The reduced dimension K: B is (..., K, N) with or without transpose_a.
            return Cost(macs: out.elementCount * t[1].shape[t[1].rank - 2])
        case .reduceMean:
            return Cost(elementwiseFlops: t[0].elementCount)
        case .selectiveScan, .chunkedSelectiveScan:
            let n = t[2].shape[1]
            return Cost(elementwiseFlops: out.elementCount * (7 * n + 8))
        case .fusedAttention:
            // The sum of the ops it replaced: qkv 1x1, depthwise 3x3, q·kᵀ and attn·v over pixels, project_out;
            // L2 norms of q and k, temperature and softmax on the heads·d·d attention matrix.
            let (c, p) = (out.shape[1], out.shape[2] * out.shape[3])
            let heads = (try? op.attributes.int("heads")) ?? 1
            let d = c / heads
            return Cost(macs: 3 * c * c * p + 3 * c * 9 * p + 2 * c * d * p + c * c * p,
                        elementwiseFlops: 2 * c * p * 3 + heads * d * d * (1 + 5)) + norm + residual
        case .fusedFeedForward:
            // The unfused ops' MACs (project_in, depthwise 3x3, project_out) plus GELU (9) and the gate (1) per
            // hidden channel and pixel.
            let (c, pixels) = (t[0].shape[1], t[0].shape[0] * t[0].shape[2] * t[0].shape[3])
            let hidden = (try? op.attributes.int("hidden")) ?? 0
            return Cost(macs: pixels * (2 * hidden * c + 2 * hidden * 9 + out.shape[1] * hidden),
                        elementwiseFlops: pixels * hidden * 10) + norm + residual
        case .fusedPointwiseDepthwise:
            // The unfused ops: the 1x1 projection and the depthwise 3x3, plus the activation per output element.
            let (c, pixels) = (t[0].shape[1], t[0].shape[0] * t[0].shape[2] * t[0].shape[3])
            let activation = ((try? Epilogue.activation(op.attributes)) ?? nil).map {
                flopsPerElement(Operation(kind: $0, operands: [], result: 0))
            } ?? 0
            return Cost(macs: pixels * out.shape[1] * (c + 9), elementwiseFlops: out.elementCount * activation) + norm
        case .ss2dScan:
            // The ops it replaced: dt_proj (R MACs per direction, channel and pixel), the selective scan over
            // K·E channels, and the three adds of the merge; x_proj stays a GEMM of its own.
            guard let z = try? ShapeRules.ss2dSizes(op.attributes, t.map(\.shape)) else { return Cost() }
            let scanned = z.k * z.e * z.length
            return Cost(macs: scanned * z.r, elementwiseFlops: scanned * (7 * z.n + 8) + (z.k - 1) * z.e * z.length)
        default:
            return Cost(elementwiseFlops: out.elementCount * flopsPerElement(op))
        }
    }

    /// Per-op costs of a typed graph. Ops computed from weights alone (such as A = −exp(A_log)) cost nothing:
    /// they happen once, at compile time.
    public static func perOp(_ graph: Graph) -> [(op: Operation, cost: Cost)] {
        let types = graph.valueTypes()
        var constant = Set<ValueID>()
        var result: [(Operation, Cost)] = []
        for op in graph.ops {
            if op.kind == .weight || (!op.operands.isEmpty && op.operands.allSatisfy(constant.contains)) {
                constant.insert(op.result)
                continue
            }
            let operandTypes = op.operands.compactMap { types[$0] }
            guard operandTypes.count == op.operands.count else { continue }
            result.append((op, of(op, operands: operandTypes)))
        }
        return result
    }
}
