/// Dimensions that depend on the image size at run time: coefficient · h8^a · w8^b, with h8 = H/8 and w8 = W/8
/// of the padded input (every spatial size of the U-Net is a whole multiple of the H/8 level).
import HybridIR

public struct Dim: Hashable, CustomStringConvertible {
    public var coefficient: Int
    public var timesH: Bool
    public var timesW: Bool

    public init(_ coefficient: Int, h: Bool = false, w: Bool = false) {
        self.coefficient = coefficient
        timesH = h
        timesW = w
    }

    public var isConstant: Bool { !timesH && !timesW }

    /// The product of `dims` when it is one dimension (at most one factor of h8 and one of w8), else nil.
    public static func product<S: Sequence>(_ dims: S) -> Dim? where S.Element == Dim {
        var p = Dim(1)
        for d in dims {
            if d.timesH && p.timesH || d.timesW && p.timesW { return nil }
            p = Dim(p.coefficient * d.coefficient, h: p.timesH || d.timesH, w: p.timesW || d.timesW)
        }
        return p
    }

    public func value(h8: Int, w8: Int) -> Int { coefficient * (timesH ? h8 : 1) * (timesW ? w8 : 1) }

    /// The C expression (h8 and w8 are variables in every kernel).
    public var c: String {
        var factors: [String] = []
        if coefficient != 1 || isConstant { factors.append("\(coefficient)") }
        if timesH { factors.append("h8") }
        if timesW { factors.append("w8") }
        return factors.count == 1 ? factors[0] : "(" + factors.joined(separator: "*") + ")"
    }

    /// For comments: 48, 8h, 8w, 2hw ...
    public var description: String {
        if isConstant { return "\(coefficient)" }
        let sym = (timesH ? "h" : "") + (timesW ? "w" : "")
        return coefficient == 1 ? sym : "\(coefficient)\(sym)"
    }
}

public typealias SymbolicShape = [Dim]

public enum SymbolicShapes {
    /// Every value's shape as a function of (h8, w8), found by comparing the same graph built at three sizes:
    /// (h8, w8), (h8+1, w8) and (h8, w8+1). All three must have the same ops in the same order.
    public static func derive(base: Graph, tallerByEight: Graph, widerByEight: Graph, h8: Int, w8: Int) throws -> [ValueID: SymbolicShape] {
        guard base.ops.count == tallerByEight.ops.count, base.ops.count == widerByEight.ops.count,
              base.inputs.count == tallerByEight.inputs.count else {
            throw HybridError("the graph's structure depends on the image size; it cannot be compiled for a range of sizes")
        }
        var result: [ValueID: SymbolicShape] = [:]
        func fit(_ a: [Int], _ b: [Int], _ c: [Int], _ what: String) throws -> SymbolicShape {
            guard a.count == b.count, a.count == c.count else { throw HybridError("\(what) changes rank with the image size") }
            return try (0..<a.count).map { i in
                let dh = b[i] != a[i], dw = c[i] != a[i]
                let scale = (dh ? h8 : 1) * (dw ? w8 : 1)
                guard a[i] % scale == 0 else { throw HybridError("\(what) has a dimension \(a[i]) that does not scale with the image") }
                let d = Dim(a[i] / scale, h: dh, w: dw)
                guard d.value(h8: h8 + 1, w8: w8) == b[i], d.value(h8: h8, w8: w8 + 1) == c[i] else {
                    throw HybridError("\(what) has a dimension that is not proportional to the image size")
                }
                return d
            }
        }
        for (i, input) in base.inputs.enumerated() {
            result[input.id] = try fit(input.type.shape, tallerByEight.inputs[i].type.shape, widerByEight.inputs[i].type.shape, "input \(i)")
        }
        for (i, op) in base.ops.enumerated() {
            guard let a = op.type?.shape, let b = tallerByEight.ops[i].type?.shape, let c = widerByEight.ops[i].type?.shape,
                  op.kind == tallerByEight.ops[i].kind, op.kind == widerByEight.ops[i].kind else {
                throw HybridError("the graph's structure depends on the image size", at: op.label)
            }
            result[op.result] = try fit(a, b, c, op.label)
        }
        return result
    }

    /// Shapes that do not depend on the image (tensor-mode graphs such as kernel tests).
    public static func constant(_ graph: Graph) -> [ValueID: SymbolicShape] {
        graph.valueTypes().mapValues { $0.shape.map { Dim($0) } }
    }
}
