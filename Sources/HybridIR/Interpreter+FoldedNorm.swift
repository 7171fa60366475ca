/// The interpreter's folded layer norms: 1x1 convolutions (and the projections inside fused ops) that carry a
/// channel LayerNorm whose γ and β `fold-layer-norm` already folded into their weights (see FoldedNorm).
import Foundation

extension Interpreter {
    /// Per-pixel statistics over the channels of x (N, C, H, W), indexed n·H·W + p: the mean, and
    /// r = 1/sqrt(var + eps) with the population variance taken around the mean (a second pass, so that a large
    /// common offset of the channels does not cancel).
    static func channelStatistics(_ x: Tensor, eps: Double) -> (mean: [Double], rstd: [Double]) {
        let (n, c, p) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        var mean = [Double](repeating: 0, count: n * p), rstd = [Double](repeating: 0, count: n * p)
        for b in 0..<n {
            for i in 0..<p {
                var sum = 0.0
                for ch in 0..<c { sum += Double(x.data[(b * c + ch) * p + i]) }
                let mu = sum / Double(c)
                var sq = 0.0
                for ch in 0..<c { let d = Double(x.data[(b * c + ch) * p + i]) - mu; sq += d * d }
                mean[b * p + i] = mu
                rstd[b * p + i] = 1 / (sq / Double(c) + eps).squareRoot()
            }
        }
        return (mean, rstd)
    }

    /// The input of a projection with a folded norm, per channel and pixel (fp64), and the per-pixel factor to
    /// apply after it: for `with_bias` the normalised (x − μ)·r and no factor, for `bias_free` x itself and r.
    static func foldedNormInput(_ x: Tensor, _ norm: FoldedNorm) -> (values: [Double], after: [Double]?) {
        let (n, c, p) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let (mean, rstd) = channelStatistics(x, eps: norm.eps)
        guard norm.centered else { return (x.data.map(Double.init), rstd) }
        var values = [Double](repeating: 0, count: x.count)
        for b in 0..<n {
            for ch in 0..<c {
                for i in 0..<p {
                    let at = (b * c + ch) * p + i
                    values[at] = (Double(x.data[at]) - mean[b * p + i]) * rstd[b * p + i]
                }
            }
        }
        return (values, nil)
    }

    /// A 1x1 convolution (groups 1) with a folded norm: y = W'·x̂ + b' (with_bias) or (W'·x)·r + b (bias_free).
    static func normalizedPointwise(_ x: Tensor, _ w: Tensor, bias: Tensor?, _ norm: FoldedNorm) -> Tensor {
        let (n, ci, p) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let co = w.shape[0]
        let (values, after) = foldedNormInput(x, norm)
        var out = [Float](repeating: 0, count: n * co * p)
        var acc = [Double](repeating: 0, count: p)
        for b in 0..<n {
            for o in 0..<co {
                for i in 0..<p { acc[i] = 0 }
                for c in 0..<ci {
                    let wv = Double(w.data[o * ci + c])
                    let base = (b * ci + c) * p
                    for i in 0..<p { acc[i] += wv * values[base + i] }
                }
                let bv = bias.map { Double($0.data[o]) } ?? 0
                for i in 0..<p { out[(b * co + o) * p + i] = Float(acc[i] * (after?[b * p + i] ?? 1) + bv) }
            }
        }
        return Tensor(shape: [n, co, x.shape[2], x.shape[3]], data: out)
    }

    /// A dense convolution with an unfolded norm (`norm_affine`): its input normalised over the channels per
    /// pixel, (x − μ)·r·γ + β (with_bias) or x·r·γ (bias_free), stored as the layer_norm it replaced stored it,
    /// then zero-padded and convolved, so the padding stays 0 whatever β is. γ (and β) are the last operands.
    static func normalizedConv2d(_ x: [Tensor], bias: Tensor?, _ norm: FoldedNorm, groups: Int, padding: Int,
                                 stride: Int) throws -> Tensor {
        let first = x.count - norm.operandCount
        guard norm.affine, first >= 2 else { throw HybridError("a conv2d with norm_affine needs γ (and β) operands") }
        let normalized = layerNorm(x[0], weight: x[first], bias: norm.centered ? x[first + 1] : nil, axis: 1,
                                   eps: norm.eps, centered: norm.centered)
        return conv2d(normalized, x[1], bias: bias, groups: groups, padding: padding, stride: stride)
    }

    /// LN(x)·silu(z) in one op (a `layer_norm` with `gate = "silu"`), rounded once.
    static func gatedLayerNorm(_ x: Tensor, weight: Tensor, bias: Tensor?, gate z: Tensor, axis: Int, eps: Double,
                               centered: Bool) -> Tensor {
        let (outer, n, inner) = around(x.shape, axis)
        var out = x.data
        for o in 0..<outer {
            for j in 0..<inner {
                let at = { (i: Int) in (o * n + i) * inner + j }
                var mean = 0.0
                for i in 0..<n { mean += Double(x.data[at(i)]) }
                mean /= Double(n)
                var variance = 0.0
                for i in 0..<n { let d = Double(x.data[at(i)]) - mean; variance += d * d }
                let scale = 1 / (variance / Double(n) + eps).squareRoot()
                for i in 0..<n {
                    let v = Double(x.data[at(i)])
                    var y = (centered ? v - mean : v) * scale * Double(weight.data[i])
                    if let bias { y += Double(bias.data[i]) }
                    let g = Double(z.data[at(i)])
                    out[at(i)] = Float(y * (g / (1 + Foundation.exp(-g))))
                }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }
}
