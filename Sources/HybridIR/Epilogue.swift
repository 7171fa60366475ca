/// The elementwise work `fuse-elementwise` moves into the kernel that produces its input: an `activation` applied
/// to a `conv2d`'s result, and per-operand scales of an `add` (y = a·sa + b·sb, the skip-scaled residuals).
import Foundation

public enum Epilogue {
    /// Activations a conv2d can apply to its result (its `activation` attribute).
    public static let activations: [OpKind] = [.gelu, .silu, .relu, .sigmoid]

    /// The activation of a `conv2d`, nil when it has none.
    public static func activation(_ a: Attributes) throws -> OpKind? {
        guard a["activation"] != nil else { return nil }
        let name = try a.string("activation")
        guard let kind = OpKind(rawValue: name), activations.contains(kind) else {
            throw HybridError("activation must be one of \(activations.map(\.name).joined(separator: ", ")), got '\(name)'")
        }
        return kind
    }

    /// Which operands of an `add` carry a scale (`scaled` = "lhs", "rhs" or "both"); the scales follow a and b
    /// as operands 2 (and 3), in that order.
    public static func scaled(_ a: Attributes) throws -> (lhs: Bool, rhs: Bool) {
        guard a["scaled"] != nil else { return (false, false) }
        switch try a.string("scaled") {
        case "lhs": return (true, false)
        case "rhs": return (false, true)
        case "both": return (true, true)
        case let other: throw HybridError("scaled must be \"lhs\", \"rhs\" or \"both\", got '\(other)'")
        }
    }

    /// The `scaled` attribute value for the given sides (nil for neither).
    public static func scaledName(lhs: Bool, rhs: Bool) -> String? {
        lhs && rhs ? "both" : lhs ? "lhs" : rhs ? "rhs" : nil
    }

    /// The activation's value at v, as the interpreter computes the op of that kind.
    public static func apply(_ kind: OpKind, _ v: Double) -> Double {
        switch kind {
        case .gelu: return 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
        case .silu: return v / (1 + Foundation.exp(-v))
        case .sigmoid: return 1 / (1 + Foundation.exp(-v))
        default: return max(v, 0)
        }
    }
}
