/// The interpreter's `fused_attention` (Restormer MDTA), computed from the op's own weights in the fused order.
import Foundation

extension Interpreter {
    /// MDTA as `fuse-attention` leaves it (ARCHITECTURES.md 1.2), with its own loops rather than the primitive ops:
    ///  1. t = depthwise 3x3 (zero padded) of the qkv 1x1 conv, 3C channels; q, k, v = t[0:C], t[C:2C], t[2C:3C].
    ///     With a folded layer norm (`norm`), the 1x1 conv reads the normalised pixels (FoldedNorm).
    ///  2. Per head, the Gram matrix G[i][j] = Σ_p q_i[p]·k_j[p] and the norms ‖q_i‖, ‖k_j‖ over pixels.
    ///  3. A = softmax_j(G[i][j] / (max(‖q_i‖, eps)·max(‖k_j‖, eps)) · temperature[head]).
    ///  4. M = W_out · blockdiag(A_0, …, A_{heads-1}), a C×C matrix; out = M·v + b_out.
    /// Everything accumulates in fp64; only the output is rounded to fp32.
    static func fusedAttention(_ x: [Tensor], _ a: Attributes) throws -> Tensor {
        let roles = try ShapeRules.fusedAttentionRoles(a)
        var operand: [String: Tensor] = [:]
        for (role, t) in Swift.zip(roles, x) { operand[role] = t }
        let input = x[0]
        let (c, h, w) = (input.shape[1], input.shape[2], input.shape[3])
        let p = h * w
        let heads = try a.int("heads"), eps = try a.float("eps")
        let d = c / heads
        let wqkv = operand["qkv.weight"]!.data, wdw = operand["qkv_dwconv.weight"]!.data
        let wout = operand["project_out.weight"]!.data, temperature = operand["temperature"]!.data
        let bqkv = operand["qkv.bias"]?.data, bdw = operand["qkv_dwconv.bias"]?.data, bout = operand["project_out.bias"]?.data

        // 1. qkv: 1x1 (with its folded layer norm, if any) then depthwise 3x3, per channel.
        let norm = try FoldedNorm.of(a)
        let (source, after) = norm.map { foldedNormInput(input, $0) } ?? (input.data.map(Double.init), nil)
        var t = [Double](repeating: 0, count: 3 * c * p)
        var plane = [Double](repeating: 0, count: p)
        for ch in 0..<(3 * c) {
            let bv = bqkv.map { Double($0[ch]) } ?? 0
            for i in 0..<p { plane[i] = after == nil ? bv : 0 }
            for ci in 0..<c {
                let wv = Double(wqkv[ch * c + ci])
                for i in 0..<p { plane[i] += wv * source[ci * p + i] }
            }
            if let after { for i in 0..<p { plane[i] = plane[i] * after[i] + bv } }
            for y in 0..<h {
                for xx in 0..<w {
                    var sum = bdw.map { Double($0[ch]) } ?? 0
                    for ky in 0..<3 {
                        let iy = y + ky - 1
                        if iy < 0 || iy >= h { continue }
                        for kx in 0..<3 {
                            let ix = xx + kx - 1
                            if ix < 0 || ix >= w { continue }
                            sum += Double(wdw[ch * 9 + ky * 3 + kx]) * plane[iy * w + ix]
                        }
                    }
                    t[ch * p + y * w + xx] = sum
                }
            }
        }
        let (qBase, kBase, vBase) = (0, c * p, 2 * c * p)

        // 2-4. Per head: Gram, norms, softmax, and its block of columns of M.
        var m = [Double](repeating: 0, count: c * c)
        var norms = [Double](repeating: 0, count: 2 * c)
        for ch in 0..<(2 * c) {
            var sum = 0.0
            for i in 0..<p { sum += t[ch * p + i] * t[ch * p + i] }
            norms[ch] = max(sum.squareRoot(), eps)
        }
        var attn = [Double](repeating: 0, count: d * d)
        for head in 0..<heads {
            let scale = Double(temperature[head])
            for i in 0..<d {
                let qi = qBase + (head * d + i) * p
                for j in 0..<d {
                    let kj = kBase + (head * d + j) * p
                    var g = 0.0
                    for pix in 0..<p { g += t[qi + pix] * t[kj + pix] }
                    attn[i * d + j] = g / (norms[head * d + i] * norms[c + head * d + j]) * scale
                }
                var top = -Double.infinity
                for j in 0..<d { top = max(top, attn[i * d + j]) }
                var sum = 0.0
                for j in 0..<d { attn[i * d + j] = Foundation.exp(attn[i * d + j] - top); sum += attn[i * d + j] }
                for j in 0..<d { attn[i * d + j] /= sum }
            }
            for o in 0..<c {
                for j in 0..<d {
                    var sum = 0.0
                    for i in 0..<d { sum += Double(wout[o * c + head * d + i]) * attn[i * d + j] }
                    m[o * c + head * d + j] = sum
                }
            }
        }
        var out = [Float](repeating: 0, count: c * p)
        for o in 0..<c {
            for i in 0..<p { plane[i] = bout.map { Double($0[o]) } ?? 0 }
            for ch in 0..<c {
                let mv = m[o * c + ch]
                for i in 0..<p { plane[i] += mv * t[vBase + ch * p + i] }
            }
            for i in 0..<p { out[o * p + i] = Float(plane[i]) }
            // A fused residual is added to the stored output, as the separate add did.
            if let r = operand["residual"] { for i in 0..<p { out[o * p + i] = Float(Double(out[o * p + i]) + Double(r.data[o * p + i])) } }
        }
        return Tensor(shape: input.shape, data: out)
    }
}
