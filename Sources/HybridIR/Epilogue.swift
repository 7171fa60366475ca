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

    /// A `conv2d`'s fused residual (fuse-elementwise: an S block's x·skip_scale + out_proj(y)): `residual = true`
    /// appends the residual r (the output's type) after the weight and optional bias, and `residual_scaled = true`
    /// a per-channel scale s ([1, C, 1, 1]) after it; the result is conv(x) + r·s, rounded as the separate mul
    /// and add were. Returns the number of extra operands (0, 1 or 2).
    public static func convResidual(_ a: Attributes) throws -> (residual: Bool, scaled: Bool) {
        let residual = try a.bool("residual", default: false), scaled = try a.bool("residual_scaled", default: false)
        if scaled && !residual { throw HybridError("residual_scaled needs residual = true") }
        return (residual, scaled)
    }

    /// Whether a `conv2d` with `operandCount` operands has a bias (operand 2), given its residual operands and the
    /// γ (and β) of an unfolded norm (`norm_affine`, FoldedNorm), which follow the bias.
    public static func convHasBias(_ a: Attributes, operandCount: Int) -> Bool {
        let r = (try? convResidual(a)) ?? (residual: false, scaled: false)
        let norm = ((try? FoldedNorm.of(a)) ?? nil)?.operandCount ?? 0
        return operandCount - (r.residual ? 1 : 0) - (r.scaled ? 1 : 0) - norm == 3
    }

    /// The index of a `conv2d`'s first norm operand (γ of an unfolded norm): after the weight and optional bias.
    /// The operands are x, W, [bias], [γ, [β], [z]], [residual, [scale]].
    public static func convNormStart(_ a: Attributes, operandCount: Int) -> Int {
        convHasBias(a, operandCount: operandCount) ? 3 : 2
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
