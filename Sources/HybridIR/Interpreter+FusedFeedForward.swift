/// The interpreter's `fused_feed_forward` (GDFN, ARCHITECTURES.md 1.3) and `fused_pointwise_depthwise` (a 1x1 conv,
/// a depthwise 3x3 and an activation: SS2D's in_proj x half), evaluated pixel by pixel from the op's own attributes
/// and weights, on one shared walk (the projection at each pixel's 3x3 neighbourhood, then its depthwise conv).
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
        let wDw = operand["dwconv"]!, wOut = operand["project_out"]!
        let bDw = operand["dwconv bias"], bOut = operand["project_out bias"]
        let (n, h, w) = (input.shape[0], input.shape[2], input.shape[3])
        let co = wOut.shape[0], plane = h * w

        var out = [Float](repeating: 0, count: n * co * plane)
        var gate = [Float](repeating: 0, count: hidden)
        try projectedNeighbourhoods(input, operand["project_in"]!, operand["project_in bias"], try FoldedNorm.of(a),
                                    channels: 2 * hidden) { b, py, px, projection, inside in
            // Depthwise 3x3 of both halves, then gate = gelu(u1) · u2 with the exact (erf) GELU.
            for j in 0..<hidden {
                let u1 = Double(depthwise(projection, inside, wDw, bDw, j))
                let u2 = Double(depthwise(projection, inside, wDw, bDw, j + hidden))
                let g = Float(0.5 * u1 * (1 + erf(u1 / 2.0.squareRoot())))
                gate[j] = Float(Double(g) * u2)
            }
            // project_out.
            for o in 0..<co {
                var acc = bOut.map { Double($0.data[o]) } ?? 0
                for j in 0..<hidden { acc += Double(wOut.data[o * hidden + j]) * Double(gate[j]) }
                let at = (b * co + o) * plane + py * w + px
                out[at] = Float(acc)
                // A fused residual is added to the stored output, as the separate add did.
                if let r = operand["residual"] { out[at] = Float(Double(out[at]) + Double(r.data[at])) }
            }
        }
        return Tensor(shape: [n, co, h, w], data: out)
    }

    /// `fused_pointwise_depthwise`: y = act(dwconv(project_in(x))), the activation applied to the stored (fp32)
    /// depthwise output, as the conv with a fused activation did.
    static func fusedPointwiseDepthwise(_ x: [Tensor], _ a: Attributes) throws -> Tensor {
        let hidden = try a.int("hidden")
        var operand: [String: Tensor] = [:]
        for (role, t) in Swift.zip(try ShapeRules.fusedPointwiseDepthwiseRoles(a), x) { operand[role] = t }
        let input = x[0]
        let wDw = operand["dwconv"]!, bDw = operand["dwconv bias"]
        let activation = try Epilogue.activation(a)
        let (n, h, w) = (input.shape[0], input.shape[2], input.shape[3])
        let plane = h * w
        var out = [Float](repeating: 0, count: n * hidden * plane)
        try projectedNeighbourhoods(input, operand["project_in"]!, operand["project_in bias"], try FoldedNorm.of(a),
                                    channels: hidden) { b, py, px, projection, inside in
            for ch in 0..<hidden {
                let v = depthwise(projection, inside, wDw, bDw, ch)
                out[(b * hidden + ch) * plane + py * w + px] = activation.map { Float(Epilogue.apply($0, Double(v))) } ?? v
            }
        }
        return Tensor(shape: [n, hidden, h, w], data: out)
    }

    /// For every pixel (b, py, px): `projection[oc·9 + k]`, the 1x1 projection (weights `wIn` of `channels` rows,
    /// bias `bIn`, through a folded norm) rounded to fp32 at neighbour k = 3·(dy+1) + (dx+1), and `inside[k]`,
    /// whether that neighbour is in the image; then `body`. Neighbours outside are the depthwise conv's zero
    /// padding of the projection (not its bias), so they are skipped.
    static func projectedNeighbourhoods(_ input: Tensor, _ wIn: Tensor, _ bIn: Tensor?, _ norm: FoldedNorm?, channels c2: Int,
                                        _ body: (_ b: Int, _ py: Int, _ px: Int, _ projection: [Float], _ inside: [Bool]) -> Void) throws {
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        // A folded layer norm: project_in reads the normalised pixels, or scales its sums by 1/σ (FoldedNorm).
        let (source, after) = norm.map { foldedNormInput(input, $0) } ?? (input.data.map(Double.init), nil)
        let plane = h * w
        var projection = [Float](repeating: 0, count: c2 * 9)
        var inside = [Bool](repeating: false, count: 9)
        for b in 0..<n {
            let image = b * c * plane
            for py in 0..<h {
                for px in 0..<w {
                    for k in 0..<9 {
                        let iy = py + k / 3 - 1, ix = px + k % 3 - 1
                        inside[k] = iy >= 0 && iy < h && ix >= 0 && ix < w
                        guard inside[k] else { continue }
                        let at = image + iy * w + ix
                        for oc in 0..<c2 {
                            let bv = bIn.map { Double($0.data[oc]) } ?? 0
                            // As the unfused 1x1 conv sums: from the bias without a norm, else the bias last
                            // (normalizedPointwise).
                            var acc = norm == nil ? bv : 0
                            for ic in 0..<c { acc += Double(wIn.data[oc * c + ic]) * source[at + ic * plane] }
                            if norm != nil { acc = acc * (after?[b * plane + iy * w + ix] ?? 1) + bv }
                            projection[oc * 9 + k] = Float(acc)
                        }
                    }
                    body(b, py, px, projection, inside)
                }
            }
        }
    }

    /// The depthwise 3x3 of channel `ch` at the pixel whose neighbourhood `projection` holds, rounded to fp32.
    static func depthwise(_ projection: [Float], _ inside: [Bool], _ wDw: Tensor, _ bDw: Tensor?, _ ch: Int) -> Float {
        var acc = bDw.map { Double($0.data[ch]) } ?? 0
        for k in 0..<9 where inside[k] { acc += Double(wDw.data[ch * 9 + k]) * Double(projection[ch * 9 + k]) }
        return Float(acc)
    }
}
