/// The channel LayerNorm that `fold-layer-norm` moves into the projection (or fused op, or dense convolution) it
/// feeds: which form it has and its eps, read from the op's `norm` and `norm_eps` attributes (ARCHITECTURES.md 1.1),
/// and whether γ and β are the op's own operands (`norm_affine`).
///
/// Folded (1x1 projections, `norm_affine` absent): the op's weights are already folded at compile time,
/// W' = W·diag(γ), so at run time it only needs the statistics of each pixel, mean μ and r = 1/sqrt(var + eps) over
/// the channels (two passes: the variance around the mean):
///  - `with_bias` (centred): the GEMM reads x̂ = (x − μ)·r (a prologue), and its bias is b' = b + W·β;
///  - `bias_free` (uncentred): r commutes with the projection, y = (W'·x)·r + b (an epilogue); the bias is b.
///
/// Unfolded (`norm_affine = true`, a dense KxK `conv2d` with groups 1, whose zero padding forbids folding β into
/// the weights: W·β would be added where the taps read padding): the weights are the conv's own, and γ (and, for
/// `with_bias`, β) follow the conv's weight and optional bias as operands. The conv reads
/// x̂ = (x − μ)·r·γ + β (`with_bias`) or x·r·γ (`bias_free`) at every tap inside the image and 0 in the padding,
/// exactly the `layer_norm` it replaced followed by the zero-padded conv.
public struct FoldedNorm: Equatable {
    public static let forms = ["with_bias", "bias_free"]

    /// True for `with_bias` (x − μ in the numerator), false for `bias_free`.
    public var centered: Bool
    public var eps: Double
    /// γ (and β when centred) are operands of the op, not folded into its weights.
    public var affine: Bool

    public init(centered: Bool, eps: Double, affine: Bool = false) {
        self.centered = centered
        self.eps = eps
        self.affine = affine
    }

    /// The attribute value: "with_bias" or "bias_free".
    public var form: String { centered ? "with_bias" : "bias_free" }

    /// The operands the norm adds to its op: γ and β (with_bias) or γ (bias_free) when affine, none when folded.
    public var operandCount: Int { affine ? (centered ? 2 : 1) : 0 }

    /// The attributes that describe it on an op.
    public var attributes: [String: Attribute] {
        var a: [String: Attribute] = ["norm": .string(form), "norm_eps": .float(eps)]
        if affine { a["norm_affine"] = .bool(true) }
        return a
    }

    /// The folded norm described by `a`, nil when the op has none; throws on a malformed description.
    public static func of(_ a: Attributes) throws -> FoldedNorm? {
        guard a["norm"] != nil else {
            guard a["norm_eps"] == nil, a["norm_affine"] == nil else { throw HybridError("norm_eps or norm_affine without norm") }
            return nil
        }
        let form = try a.string("norm"), eps = try a.float("norm_eps"), affine = try a.bool("norm_affine", default: false)
        guard forms.contains(form) else {
            throw HybridError("norm must be one of \(forms.joined(separator: ", ")), got '\(form)'")
        }
        guard eps > 0 else { throw HybridError("norm_eps must be positive, got \(eps)") }
        return FoldedNorm(centered: form == "with_bias", eps: eps, affine: affine)
    }
}
