/// The interpreter's `ss2d_scan`: SS2D's four directional scans (ARCHITECTURES.md 2.1 steps 3-7) read in place
/// through index maps, evaluated chunk by chunk from the op's own attributes and operands.
import Foundation

/// The index maps of SS2D's four scan directions over an H×W image (ARCHITECTURES.md 2.1 step 3).
public enum SS2DDirections {
    /// The order in which the directions' outputs are added into y, as the merge of step 7 adds them:
    /// y0 + rev(y2) + T(y1) + T(rev(y3)).
    public static let mergeOrder = [0, 2, 1, 3]

    /// The row-major pixel (h·W + w) that direction k reads at sequence step t: k = 0 row-major (t itself),
    /// k = 1 column-major (t = w·H + h), k = 2 and 3 the reverses of 0 and 1.
    public static func pixel(direction k: Int, step t: Int, height: Int, width: Int) -> Int {
        let s = k >= 2 ? height * width - 1 - t : t
        return k % 2 == 0 ? s : (s % height) * width + s / height
    }
}

extension Interpreter {
    /// `ss2d_scan`: for each direction k and channel e, the scan of channel k·E + e with u_t = xs[e, p_k(t)],
    /// dt_t = softplus(⟨dt_projs_weight[k, e, :], dt_raw_k(p_k(t))⟩ + dt_projs_bias[k·E + e]), B_t and C_t read from
    /// x_dbl at pixel p_k(t), A = A[k·E + e, :], plus Ds[k·E + e]·u_t; y[e, p_k(t)] sums the four directions.
    static func ss2dScan(_ x: [Tensor], _ attributes: Attributes) throws -> Tensor {
        let (chunk, form) = try ShapeRules.chunkedScanParameters(attributes)
        let z = try ShapeRules.ss2dSizes(attributes, x.map(\.shape))
        let (xs, xDbl, dtW, a, dSkip, bias) = (x[0], x[1], x[2], x[3], x[4], x[5])
        let (e, r, n, l) = (z.e, z.r, z.n, z.length)
        let features = z.k * z.rows
        /// Row j of direction k's x_dbl block at pixel p.
        func dbl(_ k: Int, _ j: Int, _ p: Int) -> Double {
            Double(xDbl.data[z.tokenMajor ? p * features + k * z.rows + j : (k * z.rows + j) * l + p])
        }

        var sum = [Double](repeating: 0, count: e * l)
        for k in SS2DDirections.mergeOrder {
            let pixels = (0..<l).map { SS2DDirections.pixel(direction: k, step: $0, height: z.h, width: z.w) }
            for ch in 0..<e {
                let d = k * e + ch
                let weights = (0..<r).map { Double(dtW.data[d * r + $0]) }
                let u = { (t: Int) in Double(xs.data[ch * l + pixels[t]]) }
                chunkedChannelScan(length: l, chunk: chunk, form: form, a: (0..<n).map { Double(a.data[d * n + $0]) },
                                   dt: { t in
                                       var v = Double(bias.data[d])
                                       for j in 0..<r { v += weights[j] * dbl(k, j, pixels[t]) }
                                       return softplus(v)
                                   },
                                   u: u, b: { s, t in dbl(k, r + s, pixels[t]) },
                                   c: { s, t in dbl(k, r + n + s, pixels[t]) }) { t, y in
                    sum[ch * l + pixels[t]] += y + u(t) * Double(dSkip.data[d])
                }
            }
        }
        return Tensor(shape: xs.shape, data: sum.map { Float($0) })
    }
}
