/// The interpreter's convolution, matmul, normalisation and data-movement ops.
import Foundation

extension Interpreter {
    /// Cross-correlation with zero padding, as PyTorch's Conv2d. Each output plane is accumulated in fp64.
    static func conv2d(_ x: Tensor, _ w: Tensor, bias: Tensor?, groups: Int, padding: Int, stride: Int) -> Tensor {
        let (n, ci, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (co, cig, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let ho = (h + 2 * padding - kh) / stride + 1, wo = (wd + 2 * padding - kw) / stride + 1
        let cog = co / groups
        var out = [Float](repeating: 0, count: n * co * ho * wo)
        var acc = [Double](repeating: 0, count: ho * wo)
        for b in 0..<n {
            for oc in 0..<co {
                for i in 0..<acc.count { acc[i] = bias.map { Double($0.data[oc]) } ?? 0 }
                let g = oc / cog
                for icg in 0..<cig {
                    let ic = g * cig + icg
                    let plane = (b * ci + ic) * h * wd
                    for ky in 0..<kh {
                        for kx in 0..<kw {
                            let weight = Double(w.data[((oc * cig + icg) * kh + ky) * kw + kx])
                            for oy in 0..<ho {
                                let iy = oy * stride + ky - padding
                                if iy < 0 || iy >= h { continue }
                                for ox in 0..<wo {
                                    let ix = ox * stride + kx - padding
                                    if ix < 0 || ix >= wd { continue }
                                    acc[oy * wo + ox] += weight * Double(x.data[plane + iy * wd + ix])
                                }
                            }
                        }
                    }
                }
                let base = (b * co + oc) * ho * wo
                for i in 0..<acc.count { out[base + i] = Float(acc[i]) }
            }
        }
        return Tensor(shape: [n, co, ho, wo], data: out)
    }

    /// Batched (…, m, k) @ (…, k, n) with broadcast batch dimensions.
    static func matmul(_ l: Tensor, _ r: Tensor) throws -> Tensor {
        let (m, k, n) = (l.shape[l.rank - 2], l.shape[l.rank - 1], r.shape[r.rank - 1])
        let lb = Array(l.shape.dropLast(2)), rb = Array(r.shape.dropLast(2))
        let batch = try ShapeRules.broadcast(lb, rb)
        let ls = broadcastStrides(lb, to: batch), rs = broadcastStrides(rb, to: batch)
        var out = [Float](repeating: 0, count: batch.reduce(1, *) * m * n)
        var row = [Double](repeating: 0, count: n)
        forEachIndex(batch) { bi, index in
            var lo = 0, ro = 0
            for d in 0..<index.count { lo += index[d] * ls[d]; ro += index[d] * rs[d] }
            lo *= m * k
            ro *= k * n
            for i in 0..<m {
                for j in 0..<n { row[j] = 0 }
                for p in 0..<k {
                    let lv = Double(l.data[lo + i * k + p])
                    let rbase = ro + p * n
                    for j in 0..<n { row[j] += lv * Double(r.data[rbase + j]) }
                }
                let obase = (bi * m + i) * n
                for j in 0..<n { out[obase + j] = Float(row[j]) }
            }
        }
        return Tensor(shape: batch + [m, n], data: out)
    }

    /// Aᵀ·B for A (K, M) and B (K, N): y[i, j] = Σ_p A[p, i]·B[p, j], summed over p in order.
    static func matmulTransposedA(_ l: Tensor, _ r: Tensor) -> Tensor {
        let (k, m, n) = (l.shape[0], l.shape[1], r.shape[1])
        var out = [Float](repeating: 0, count: m * n)
        var row = [Double](repeating: 0, count: n)
        for i in 0..<m {
            for j in 0..<n { row[j] = 0 }
            for p in 0..<k {
                let lv = Double(l.data[p * m + i])
                for j in 0..<n { row[j] += lv * Double(r.data[p * n + j]) }
            }
            for j in 0..<n { out[i * n + j] = Float(row[j]) }
        }
        return Tensor(shape: [m, n], data: out)
    }

    /// LayerNorm over one axis: (x − mean) / sqrt(var + eps) · weight + bias, with the population variance.
    /// With `centered` false (Restormer's BiasFree) the numerator is x itself, the variance still centred.
    static func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor?, axis: Int, eps: Double, centered: Bool) -> Tensor {
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
                variance /= Double(n)
                let scale = 1 / (variance + eps).squareRoot()
                for i in 0..<n {
                    let v = Double(x.data[at(i)])
                    var y = (centered ? v - mean : v) * scale * Double(weight.data[i])
                    if let bias { y += Double(bias.data[i]) }
                    out[at(i)] = Float(y)
                }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    static func softmax(_ x: Tensor, axis: Int) -> Tensor {
        let (outer, n, inner) = around(x.shape, axis)
        var out = x.data
        for o in 0..<outer {
            for j in 0..<inner {
                let at = { (i: Int) in (o * n + i) * inner + j }
                var top = -Double.infinity
                for i in 0..<n { top = max(top, Double(x.data[at(i)])) }
                var sum = 0.0
                for i in 0..<n { sum += Foundation.exp(Double(x.data[at(i)]) - top) }
                for i in 0..<n { out[at(i)] = Float(Foundation.exp(Double(x.data[at(i)]) - top) / sum) }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    /// x / max(‖x‖₂, eps) along `axis` (PyTorch's F.normalize).
    static func l2Normalize(_ x: Tensor, axis: Int, eps: Double) -> Tensor {
        let (outer, n, inner) = around(x.shape, axis)
        var out = x.data
        for o in 0..<outer {
            for j in 0..<inner {
                let at = { (i: Int) in (o * n + i) * inner + j }
                var sum = 0.0
                for i in 0..<n { let v = Double(x.data[at(i)]); sum += v * v }
                let norm = max(sum.squareRoot(), eps)
                for i in 0..<n { out[at(i)] = Float(Double(x.data[at(i)]) / norm) }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    static func concat(_ xs: [Tensor], axis: Int) -> Tensor {
        var shape = xs[0].shape
        shape[axis] = xs.map { $0.shape[axis] }.reduce(0, +)
        let (outer, n, inner) = around(shape, axis)
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        var offset = 0
        for x in xs {
            let m = x.shape[axis]
            for o in 0..<outer {
                for i in 0..<m * inner { out[(o * n + offset) * inner + i] = x.data[o * m * inner + i] }
            }
            offset += m
        }
        return Tensor(shape: shape, data: out)
    }

    static func slice(_ x: Tensor, axis: Int, start: Int, size: Int) -> Tensor {
        let (outer, n, inner) = around(x.shape, axis)
        var shape = x.shape
        shape[axis] = size
        var out: [Float] = []
        out.reserveCapacity(outer * size * inner)
        for o in 0..<outer { out += x.data[((o * n + start) * inner)..<((o * n + start + size) * inner)] }
        return Tensor(shape: shape, data: out)
    }

    /// Output axis d is input axis perm[d].
    static func transpose(_ x: Tensor, perm: [Int]) -> Tensor {
        let shape = perm.map { x.shape[$0] }
        let inStrides = Tensor.strides(of: x.shape)
        let strides = perm.map { inStrides[$0] }
        var out = [Float](repeating: 0, count: x.count)
        forEachIndex(shape) { linear, index in
            var src = 0
            for d in 0..<index.count { src += index[d] * strides[d] }
            out[linear] = x.data[src]
        }
        return Tensor(shape: shape, data: out)
    }

    static func flip(_ x: Tensor, axis: Int) -> Tensor {
        let (outer, n, inner) = around(x.shape, axis)
        var out = x.data
        for o in 0..<outer {
            for i in 0..<n {
                for j in 0..<inner { out[(o * n + i) * inner + j] = x.data[(o * n + (n - 1 - i)) * inner + j] }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    /// Input channel c·r² + i·r + j goes to output pixel (c, y·r + i, x·r + j).
    static func pixelShuffle(_ x: Tensor, factor r: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1] / (r * r), x.shape[2], x.shape[3])
        var out = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for ch in 0..<c { for i in 0..<r { for j in 0..<r {
            let src = b * c * r * r + ch * r * r + i * r + j
            for y in 0..<h { for xx in 0..<w {
                out[((b * c + ch) * h * r + y * r + i) * w * r + xx * r + j] = x.data[(src * h + y) * w + xx]
            } }
        } } } }
        return Tensor(shape: [n, c, h * r, w * r], data: out)
    }

    /// Output channel c·r² + i·r + j takes input pixel (c, y·r + i, x·r + j).
    static func pixelUnshuffle(_ x: Tensor, factor r: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2] / r, x.shape[3] / r)
        var out = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for ch in 0..<c { for i in 0..<r { for j in 0..<r {
            let dst = b * c * r * r + ch * r * r + i * r + j
            for y in 0..<h { for xx in 0..<w {
                out[(dst * h + y) * w + xx] = x.data[((b * c + ch) * h * r + y * r + i) * w * r + xx * r + j]
            } }
        } } } }
        return Tensor(shape: [n, c * r * r, h, w], data: out)
    }

    /// Mean over `axes`, keeping them as size 1.
    static func reduceMean(_ x: Tensor, axes: [Int]) -> Tensor {
        var shape = x.shape
        for ax in axes { shape[ax] = 1 }
        let outStrides = broadcastStrides(shape, to: x.shape)
        var sums = [Double](repeating: 0, count: shape.reduce(1, *))
        forEachIndex(x.shape) { linear, index in
            var dst = 0
            for d in 0..<index.count { dst += index[d] * outStrides[d] }
            sums[dst] += Double(x.data[linear])
        }
        let count = Double(x.count / sums.count)
        return Tensor(shape: shape, data: sums.map { Float($0 / count) })
    }
}
