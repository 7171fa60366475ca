/// The interpreter's `fused_feed_forward`: GDFN (ARCHITECTURES.md 1.3) evaluated pixel by pixel from the op's own
/// attributes and weights.
///
/// Like every op of the interpreter it stores fp32 and computes in fp64: each value the unfused graph would store
/// (the projection, the depthwise output, gelu, the gate) is rounded to fp32 where that graph rounds it, and every
/// sum runs in the order of the unfused convolution, so the fused op gives exactly the unfused ops' result.
import Foundation

extension Interpreter {
    static func fusedFeedForward(_ x: [Tensor], _ a: Attributes) throws -> Tensor {
        let hidden = try a.int("hidden")
        var operand: [String: Tensor] = [:]
        for (role, t) in Swift.zip(try ShapeRules.fusedFeedForwardRoles(a), x) { operand[role] = t }
        let input = x[0]
        let wIn = operand["project_in"]!, wDw = operand["dwconv"]!, wOut = operand["project_out"]!
        let bIn = operand["project_in bias"], bDw = operand["dwconv bias"], bOut = operand["project_out bias"]
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        // A folded layer norm: project_in reads the normalised pixels, or scales its sums by 1/σ (FoldedNorm).
        let norm = try FoldedNorm.of(a)
        let (source, after) = norm.map { foldedNormInput(input, $0) } ?? (input.data.map(Double.init), nil)
        let co = wOut.shape[0], c2 = 2 * hidden, plane = h * w

        var out = [Float](repeating: 0, count: n * co * plane)
        // project_in at the 3x3 neighbourhood of the pixel: tap k = 3·(dy+1) + (dx+1), channel-major.
        var projection = [Float](repeating: 0, count: c2 * 9)
        var inside = [Bool](repeating: false, count: 9)
        var gate = [Float](repeating: 0, count: hidden)
        for b in 0..<n {
            let image = b * c * plane
            for py in 0..<h {
                for px in 0..<w {
                    // 1. The 1x1 projection at every neighbour inside the image. Neighbours outside are the
                    //    depthwise conv's zero padding of the projection (not its bias), so they are skipped.
                    for k in 0..<9 {
                        let iy = py + k / 3 - 1, ix = px + k % 3 - 1
                        inside[k] = iy >= 0 && iy < h && ix >= 0 && ix < w
                        guard inside[k] else { continue }
                        let at = image + iy * w + ix
                        for oc in 0..<c2 {
                            let bv = bIn.map { Double($0.data[oc]) } ?? 0
                            var acc = after == nil ? bv : 0
                            for ic in 0..<c { acc += Double(wIn.data[oc * c + ic]) * source[at + ic * plane] }
                            if let after { acc = acc * after[b * plane + iy * w + ix] + bv }
                            projection[oc * 9 + k] = Float(acc)
                        }
                    }
                    // 2. Depthwise 3x3 of both halves, then gate = gelu(u1) · u2 with the exact (erf) GELU.
                    func depthwise(_ ch: Int) -> Float {
                        var acc = bDw.map { Double($0.data[ch]) } ?? 0
                        for k in 0..<9 where inside[k] {
                            acc += Double(wDw.data[ch * 9 + k]) * Double(projection[ch * 9 + k])
                        }
                        return Float(acc)
                    }
                    for j in 0..<hidden {
                        let u1 = Double(depthwise(j)), u2 = Double(depthwise(j + hidden))
                        let g = Float(0.5 * u1 * (1 + erf(u1 / 2.0.squareRoot())))
                        gate[j] = Float(Double(g) * u2)
                    }
                    // 3. project_out.
                    for o in 0..<co {
                        var acc = bOut.map { Double($0.data[o]) } ?? 0
                        for j in 0..<hidden { acc += Double(wOut.data[o * hidden + j]) * Double(gate[j]) }
                        let at = (b * co + o) * plane + py * w + px
                        out[at] = Float(acc)
                        // A fused residual is added to the stored output, as the separate add did.
                        if let r = operand["residual"] { out[at] = Float(Double(out[at]) + Double(r.data[at])) }
                    }
                }
            }
        }
        return Tensor(shape: [n, co, h, w], data: out)
    }
}
