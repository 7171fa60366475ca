/// Seeded weights for every weight of a graph, for benchmarking and tests when no checkpoint is given.
import Foundation
import HybridIR

public enum RandomWeights {
    /// Each tensor depends only on the seed and its key, so adding a block does not change the others.
    /// Values follow the reference models' initialisations where they matter for numerics (norm scales 1,
    /// A = −(1..N), dt in [1e-3, 0.1], D = 1) and fan-in-scaled uniform values elsewhere.
    public static func generate(for graph: Graph, seed: UInt64) -> WeightStore {
        var store: WeightStore = [:]
        for op in graph.ops where op.kind == .weight {
            guard let name = try? op.attributes.string("name"), let type = op.type, store[name] == nil else { continue }
            store[name] = tensor(name: name, shape: type.shape, seed: seed)
        }
        return store
    }

    static func tensor(name: String, shape: [Int], seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed ^ fnv1a(name))
        let count = shape.reduce(1, *)
        func uniform(_ bound: Double) -> [Float] { (0..<count).map { _ in Float((rng.nextUnit() * 2 - 1) * bound) } }
        let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
        let key = name.split(separator: ".").suffix(2).joined(separator: ".")
        let data: [Float]
        if name.hasSuffix("A_logs") {
            let n = shape[1]
            data = (0..<count).map { Float(Foundation.log(Double($0 % n + 1))) }
        } else if name.hasSuffix("Ds") || name.hasSuffix("skip_scale") || name.hasSuffix("skip_scale2")
                    || name.hasSuffix("temperature") {
            data = [Float](repeating: 1, count: count)
        } else if name.hasSuffix("dt_projs_bias") {
            data = (0..<count).map { _ in
                let dt = max(Foundation.exp(Foundation.log(1e-3) + rng.nextUnit() * (Foundation.log(0.1) - Foundation.log(1e-3))), 1e-4)
                return Float(dt + Foundation.log(-Foundation.expm1(-dt)))
            }
        } else if name.hasSuffix("dt_projs_weight") {
            data = uniform(1 / Double(shape[2]).squareRoot())
        } else if key.hasPrefix("body.") || key.hasPrefix("ln_") || key.hasPrefix("out_norm.") {
            // LayerNorm scale and shift: identity plus a little noise so that the affine part is exercised.
            let base: Float = name.hasSuffix(".weight") ? 1 : 0
            data = uniform(0.1).map { base + $0 }
        } else if name.hasSuffix(".bias") {
            data = uniform(1 / Double(max(fanIn, 1)).squareRoot() * 0.5)
        } else {
            let inputs = shape.count == 4 ? shape[1] * shape[2] * shape[3] : (shape.count >= 2 ? shape[shape.count - 1] : 1)
            data = uniform(1 / Double(inputs).squareRoot())
        }
        return Tensor(shape: shape, data: data)
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in s.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return h
    }
}

/// A small, well-known deterministic generator (the same sequence on every platform).
public struct SplitMix64 {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
