/// The reference interpreter: executes primitive and fused ops with plain loops, in fp32 storage with fp64 arithmetic.
///
/// It is the oracle for every pass and kernel, so every op is written the obvious way, straight from its
/// definition in ARCHITECTURES.md; speed matters only as far as the tests need.
import Foundation

public enum Interpreter {
    /// Runs `graph` on `inputs` (one tensor per graph input), reading weights by name from `weights`.
    public static func run(_ graph: Graph, inputs: [Tensor], weights: WeightStore) throws -> [Tensor] {
        guard inputs.count == graph.inputs.count else {
            throw HybridError("graph @\(graph.name) takes \(graph.inputs.count) inputs, got \(inputs.count)")
        }
        var values: [ValueID: Tensor] = [:]
        for (input, tensor) in Swift.zip(graph.inputs, inputs) {
            guard input.type.shape == tensor.shape else {
                throw HybridError("input %\(input.id) must have shape \(input.type.shape), got \(tensor.shape)")
            }
            values[input.id] = tensor
        }
        // Free every intermediate after its last use so that full-size models fit in memory.
        var lastUse: [ValueID: Int] = [:]
        for (i, op) in graph.ops.enumerated() { for v in op.operands { lastUse[v] = i } }
        for v in graph.outputs { lastUse[v] = Int.max }

        for (i, op) in graph.ops.enumerated() {
            let args = try op.operands.map { v -> Tensor in
                guard let t = values[v] else { throw HybridError("operand %\(v) has no value", at: op.label) }
                return t
            }
            let result: Tensor
            do {
                result = try evaluate(op, args, weights: weights)
            } catch let e as HybridError {
                throw e.location.isEmpty ? HybridError(e.message, at: op.label) : e
            }
            if let t = op.type, t.shape != result.shape {
                throw HybridError("computed shape \(result.shape) differs from the declared \(t)", at: op.label)
            }
            values[op.result] = result
            for v in op.operands where lastUse[v] == i { values[v] = nil }
        }
        return try graph.outputs.map { v in
            guard let t = values[v] else { throw HybridError("output %\(v) was not computed") }
            return t
        }
    }

    /// One op on concrete operands.
    public static func evaluate(_ op: Operation, _ x: [Tensor], weights: WeightStore) throws -> Tensor {
        let a = op.attributes
        switch op.kind {
        case .weight:
            let name = try a.string("name")
            guard let w = weights[name] else { throw HybridError("weight '\(name)' is not bound") }
            if let t = op.type, t.shape != w.shape {
                throw HybridError("weight '\(name)' has shape \(w.shape), the graph expects \(t.shape)")
            }
            return w
        case .transformerBlock, .ssmBlock, .downsample, .upsample:
            throw HybridError("the interpreter runs primitive ops only; run expand-blocks first")
        case .conv2d:
            let bias = Epilogue.convHasBias(a, operandCount: x.count) ? x[2] : nil
            if let norm = try FoldedNorm.of(a), norm.gated {
                // The gated norm (fuse-gated-norm) stored as the gated layer_norm stored it, then the 1x1 conv and
                // its fused residual, as the separate ops computed them.
                let g = Epilogue.convNormStart(a, operandCount: x.count)
                let normalized = gatedLayerNorm(x[0], weight: x[g], bias: norm.centered ? x[g + 1] : nil,
                                                gate: x[g + norm.operandCount - 1], axis: 1, eps: norm.eps, centered: norm.centered)
                let y = conv2d(normalized, x[1], bias: bias, groups: try a.int("groups"), padding: try a.int("padding"),
                               stride: try a.int("stride", default: 1))
                let fusedResidual = try Epilogue.convResidual(a)
                if fusedResidual.residual {
                    let r = x[x.count - (fusedResidual.scaled ? 2 : 1)]
                    return try elementwise(fusedResidual.scaled ? try elementwise(r, x[x.count - 1], *) : r, y, +)
                }
                return try Epilogue.activation(a).map { kind in map(y) { Epilogue.apply(kind, $0) } } ?? y
            }
            if let norm = try FoldedNorm.of(a), norm.affine {
                let y = try normalizedConv2d(x, bias: bias, norm, groups: try a.int("groups"), padding: try a.int("padding"),
                                             stride: try a.int("stride", default: 1))
                return try Epilogue.activation(a).map { kind in map(y) { Epilogue.apply(kind, $0) } } ?? y
            }
            if let norm = try FoldedNorm.of(a) {
                let y = normalizedPointwise(x[0], x[1], bias: bias, norm)
                return try Epilogue.activation(a).map { kind in map(y) { Epilogue.apply(kind, $0) } } ?? y
            }
            let y = conv2d(x[0], x[1], bias: bias, groups: try a.int("groups"),
                           padding: try a.int("padding"), stride: try a.int("stride", default: 1))
            // A fused residual: the stored convolution plus r·s (the product stored in fp32 first), as the separate
            // mul and add computed it.
            let fusedResidual = try Epilogue.convResidual(a)
            if fusedResidual.residual {
                let r = x[x.count - (fusedResidual.scaled ? 2 : 1)]
                let scaled = fusedResidual.scaled ? try elementwise(r, x[x.count - 1], *) : r
                return try elementwise(scaled, y, +)
            }
            // A fused activation applies to the stored (fp32) convolution, as the separate op did.
            return try Epilogue.activation(a).map { kind in map(y) { Epilogue.apply(kind, $0) } } ?? y
        case .matmul:
            if try a.bool("transpose_a", default: false) { return matmulTransposedA(x[0], x[1]) }
            return try matmul(x[0], x[1])
        case .layerNorm:
            if try ShapeRules.layerNormGate(a) != nil {
                return gatedLayerNorm(x[0], weight: x[1], bias: x.count > 3 ? x[2] : nil, gate: x[x.count - 1],
                                      axis: try a.int("axis"), eps: try a.float("eps"), centered: try a.bool("centered"))
            }
            return layerNorm(x[0], weight: x[1], bias: x.count > 2 ? x[2] : nil, axis: try a.int("axis"),
                             eps: try a.float("eps"), centered: try a.bool("centered"))
        case .softmax:
            return softmax(x[0], axis: try a.int("axis"))
        case .l2Normalize:
            return l2Normalize(x[0], axis: try a.int("axis"), eps: try a.float("eps"))
        case .gelu: return map(x[0]) { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
        case .silu: return map(x[0]) { $0 / (1 + Foundation.exp(-$0)) }
        case .sigmoid: return map(x[0]) { 1 / (1 + Foundation.exp(-$0)) }
        case .softplus: return map(x[0], softplus)
        case .relu: return map(x[0]) { max($0, 0) }
        case .exp: return map(x[0]) { Foundation.exp($0) }
        case .neg: return map(x[0]) { -$0 }
        case .add:
            // Scaled operands are multiplied (and stored in fp32) first, as the separate muls did.
            let scaled = try Epilogue.scaled(a)
            let lhs = scaled.lhs ? try elementwise(x[0], x[2], *) : x[0]
            let rhs = scaled.rhs ? try elementwise(x[1], x[x.count - 1], *) : x[1]
            return try elementwise(lhs, rhs, +)
        case .sub: return try elementwise(x[0], x[1], -)
        case .mul: return try elementwise(x[0], x[1], *)
        case .div: return try elementwise(x[0], x[1], /)
        case .concat: return concat(x, axis: try a.int("axis"))
        case .slice: return slice(x[0], axis: try a.int("axis"), start: try a.int("start"), size: try a.int("size"))
        case .reshape: return Tensor(shape: try a.ints("shape"), data: x[0].data)
        case .transpose: return transpose(x[0], perm: try a.ints("perm"))
        case .flip: return flip(x[0], axis: try a.int("axis"))
        case .pixelShuffle: return pixelShuffle(x[0], factor: try a.int("factor"))
        case .pixelUnshuffle: return pixelUnshuffle(x[0], factor: try a.int("factor"))
        case .reduceMean: return reduceMean(x[0], axes: try a.ints("axes"))
        case .selectiveScan: return try selectiveScan(x, a)
        case .fusedAttention: return try fusedAttention(x, a)
        case .chunkedSelectiveScan: return try chunkedSelectiveScan(x, a)
        case .fusedFeedForward: return try fusedFeedForward(x, a)
        case .fusedPointwiseDepthwise: return try fusedPointwiseDepthwise(x, a)
        case .ss2dScan: return try ss2dScan(x, a)
        }
    }

    /// PyTorch's softplus (beta 1, threshold 20: the identity above 20).
    public static func softplus(_ v: Double) -> Double { v > 20 ? v : Foundation.log1p(Foundation.exp(v)) }

    // MARK: elementwise

    static func map(_ t: Tensor, _ f: (Double) -> Double) -> Tensor {
        Tensor(shape: t.shape, data: t.data.map { Float(f(Double($0))) })
    }

    /// Binary op with NumPy broadcasting.
    static func elementwise(_ l: Tensor, _ r: Tensor, _ f: (Double, Double) -> Double) throws -> Tensor {
        let shape = try ShapeRules.broadcast(l.shape, r.shape)
        if l.shape == r.shape {
            return Tensor(shape: shape, data: (0..<l.count).map { Float(f(Double(l.data[$0]), Double(r.data[$0]))) })
        }
        let ls = broadcastStrides(l.shape, to: shape), rs = broadcastStrides(r.shape, to: shape)
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        forEachIndex(shape) { linear, index in
            var li = 0, ri = 0
            for d in 0..<index.count { li += index[d] * ls[d]; ri += index[d] * rs[d] }
            out[linear] = Float(f(Double(l.data[li]), Double(r.data[ri])))
        }
        return Tensor(shape: shape, data: out)
    }

    /// Strides of `shape` viewed as `target` under broadcasting (0 along broadcast axes).
    static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: target.count - shape.count) + shape
        let strides = Tensor.strides(of: padded)
        return (0..<target.count).map { padded[$0] == 1 ? 0 : strides[$0] }
    }

    /// Calls `body(linearIndex, multiIndex)` for every element of `shape` in row-major order.
    static func forEachIndex(_ shape: [Int], _ body: (Int, [Int]) -> Void) {
        let total = shape.reduce(1, *)
        guard total > 0 else { return }
        var index = [Int](repeating: 0, count: shape.count)
        for linear in 0..<total {
            body(linear, index)
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
    }

    /// Splits `shape` around `axis` into (outer, n, inner) so that element (o, i, j) is at (o*n + i)*inner + j.
    static func around(_ shape: [Int], _ axis: Int) -> (outer: Int, n: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }
}
