/// The profile's cost model of each generated kernel: FLOPs per call (from `Cost`, the analytic counts of
/// ARCHITECTURES.md section 4, for the op the kernel computes) and bytes moved per call, both as functions of the
/// run's image size, so that the generated program can report GFLOP/s and GB/s for any H x W it is run at.
///
/// Bytes moved (a stated model, not a measurement): every operand read once and the result written once
/// (4 bytes a float, weights included), plus the op's shared workspace scratch (`ScratchNeeds.shared`) written once
/// and read once. Per-thread scratch (tiles sized for L1/L2) is not counted: it does not leave the caches. The
/// phases of `fused_attention` each count what they read and write of the operands and of the scratch blocks
/// V (C·P) and M (C·C), and split the op's FLOPs as `Cost` counts them (gram: the 1x1 qkv projection, whose rows
/// stay in a per-thread ring, depthwise 3x3, q·kᵀ and the L2 norms; mix: temperature and softmax; out: attn·v,
/// project_out, the residual and the folded norm).
///
/// Kernels are shape-symbolic in h8 = ⌈H/8⌉ and w8 = ⌈W/8⌉, so each count is emitted as the 9 coefficients of a
/// polynomial Σ c[3i+j]·h8^i·w8^j (i, j ≤ 2), interpolated from the exact counts at three sizes per axis chosen to
/// include the compiled maximum (exact there, and everywhere for counts that are such polynomials, which all
/// FLOP counts are; scratch sizes rounded up to whole tiles are exact at the interpolation sizes only).
import HybridIR

public struct SizePolynomial: Equatable {
    /// c[3i + j] multiplies h8^i · w8^j.
    public var coefficients: [Double]

    public func value(h8: Int, w8: Int) -> Double {
        let h = Double(h8), w = Double(w8)
        var s = 0.0
        for i in 0..<3 {
            for j in 0..<3 { s += coefficients[3 * i + j] * pow(h, i) * pow(w, j) }
        }
        return s
    }

    private func pow(_ x: Double, _ n: Int) -> Double { n == 0 ? 1 : n == 1 ? x : x * x }

    /// Tensor-product Lagrange interpolation of f on nodes × nodes (three distinct nodes per axis).
    public static func interpolate(hNodes: [Int], wNodes: [Int], _ f: (Int, Int) -> Double) -> SizePolynomial {
        // Monomial coefficients of the three Lagrange basis polynomials of each axis.
        func basis(_ nodes: [Int]) -> [[Double]] {
            let x = nodes.map(Double.init)
            return (0..<3).map { k in
                let others = (0..<3).filter { $0 != k }.map { x[$0] }
                let d = others.reduce(1.0) { $0 * (x[k] - $1) }
                // (t - a)(t - b) = t² - (a+b)t + ab
                return [others[0] * others[1] / d, -(others[0] + others[1]) / d, 1 / d]
            }
        }
        let bh = basis(hNodes), bw = basis(wNodes)
        var c = [Double](repeating: 0, count: 9)
        for a in 0..<3 {
            for b in 0..<3 {
                let v = f(hNodes[a], wNodes[b])
                if v == 0 { continue }
                for i in 0..<3 {
                    for j in 0..<3 { c[3 * i + j] += v * bh[a][i] * bw[b][j] }
                }
            }
        }
        return SizePolynomial(coefficients: c.map { abs($0) < 1e-9 ? 0 : $0 })
    }

    public static func constant(_ v: Double) -> SizePolynomial {
        SizePolynomial(coefficients: [v] + [Double](repeating: 0, count: 8))
    }
}

public enum KernelCostModel {
    /// FLOPs and bytes of one call of `kernel` when the image is h8 x w8 (units of 8 pixels).
    public static func counts(_ kernel: Kernel, h8: Int, w8: Int) -> (flops: Double, bytes: Double) {
        let operandShapes = kernel.operands.map { $0.shape.map { $0.value(h8: h8, w8: w8) } }
        let resultShape = kernel.result.shape.map { $0.value(h8: h8, w8: w8) }
        var op = kernel.op
        op.type = TensorType(op.type?.elementType ?? .f32, resultShape)
        let types = operandShapes.map { TensorType(.f32, $0) }
        let cost = Cost.of(op, operands: types)
        let elements = { (s: [Int]) in Double(s.reduce(1, *)) }
        let operandFloats = operandShapes.map(elements)
        let resultFloats = elements(resultShape)

        if op.kind == .fusedAttention, let phase = kernel.phase, let x = operandShapes.first, x.count == 4 {
            let (c, p) = (Double(x[1]), Double(x[2] * x[3]))
            let heads = Double((try? op.attributes.int("heads")) ?? 1)
            let d = c / heads
            let total = Double(cost.flops)
            // FLOPs as Cost counts them (its fusedAttention case), split by where each part runs.
            let qkv = 2 * 3 * c * c * p
            let gram = 2 * (3 * c * 9 * p + c * d * p) + 2 * c * p * 3
            let softmax = heads * d * d * 6
            let out = total - qkv - gram - softmax // attn·v, project_out, the residual, and the folded norm if any
            // Bytes: gram reads x, the qkv and depthwise weights and writes V (the qkv rows stay in its per-thread
            // ring); softmax reads the Gram partials and writes attn (fp64); mix reads attn and W_out and writes M;
            // out reads M, V, the bias and the residual, and writes the result. The fold into M is not in Cost (it
            // stands for attn·v and project_out, which out counts), so mix has no FLOPs of its own.
            let tiles = (Double(x[2]) / Double(FusedAttentionTiles.rowsPerTile)).rounded(.up)
            switch phase {
            case "gram": return (qkv + gram, 4 * (c * p + 3 * c * c + 3 * c + 3 * c * 9 + c * p))
            case "softmax": return (softmax, 8 * (tiles * (c * d + 2 * c) + c * d))
            case "mix": return (0, 8 * c * d + 4 * (c * c + c * c))
            default: return (out, 4 * (c * c + c * p + c + (op.attributes["residual"] == .bool(true) ? c * p : 0) + resultFloats))
            }
        }
        let scratch = ScratchNeeds.of(op, operandShapes: operandShapes, resultShape: resultShape, schedule: kernel.schedule)
        let bytes = 4 * (operandFloats.reduce(0, +) + resultFloats + 2 * Double(scratch.shared))
        return (Double(cost.flops), bytes)
    }

    /// Interpolation sizes of one axis: three distinct sizes that include the compiled maximum.
    static func nodes(_ maximum: Int) -> [Int] {
        maximum >= 3 ? [1, max(2, maximum / 2), maximum] : [1, 2, 3]
    }

    /// The counts of `kernel` as polynomials in (h8, w8) (constants in tensor mode).
    public static func polynomials(_ kernel: Kernel, plan: KernelPlan) -> (flops: SizePolynomial, bytes: SizePolynomial) {
        guard plan.imageMode else {
            let c = counts(kernel, h8: 0, w8: 0)
            return (.constant(c.flops), .constant(c.bytes))
        }
        let hn = nodes(plan.maxH8), wn = nodes(plan.maxW8)
        return (SizePolynomial.interpolate(hNodes: hn, wNodes: wn) { counts(kernel, h8: $0, w8: $1).flops },
                SizePolynomial.interpolate(hNodes: hn, wNodes: wn) { counts(kernel, h8: $0, w8: $1).bytes })
    }

    /// Bytes of the copy-in / copy-out kernels: every element of the shape read once and written once.
    public static func copyBytes(_ shape: SymbolicShape, plan: KernelPlan) -> SizePolynomial {
        let f = { (h8: Int, w8: Int) in 8 * Double(shape.map { $0.value(h8: h8, w8: w8) }.reduce(1, *)) }
        guard plan.imageMode else { return .constant(f(0, 0)) }
        return SizePolynomial.interpolate(hNodes: nodes(plan.maxH8), wNodes: nodes(plan.maxW8), f)
    }
}
