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
///
/// Gated (`norm_gate = "silu"`, with `norm_affine`; a 1x1 `conv2d`, groups 1, padding 0, stride 1: SS2D's out_norm
/// and its gate folded into out_proj by `fuse-gated-norm`): one more operand z (the input's shape) follows γ (and β),
/// and the conv reads x̂ = ((x − μ)·r·γ + β)·silu(z) (`with_bias`) or x·r·γ·silu(z) (`bias_free`): the gated
/// `layer_norm` it replaced. γ and β cannot be folded into W because the gate multiplies after the affine.
public struct FoldedNorm: Equatable {
    public static let forms = ["with_bias", "bias_free"]

    /// True for `with_bias` (x − μ in the numerator), false for `bias_free`.
    public var centered: Bool
    public var eps: Double
    /// γ (and β when centred) are operands of the op, not folded into its weights.
    public var affine: Bool
    /// The normalised input is multiplied by silu(z), z the operand after γ (and β); only with `affine`.
    public var gated: Bool

    public init(centered: Bool, eps: Double, affine: Bool = false, gated: Bool = false) {
        self.centered = centered
        self.eps = eps
        self.affine = affine || gated
        self.gated = gated
    }

    /// The attribute value: "with_bias" or "bias_free".
    public var form: String { centered ? "with_bias" : "bias_free" }

    /// The operands the norm adds to its op: γ and β (with_bias) or γ (bias_free) when affine, then z when gated;
    /// none when folded.
    public var operandCount: Int { (affine ? (centered ? 2 : 1) : 0) + (gated ? 1 : 0) }

    /// The attributes that describe it on an op.
    public var attributes: [String: Attribute] {
        var a: [String: Attribute] = ["norm": .string(form), "norm_eps": .float(eps)]
        if affine { a["norm_affine"] = .bool(true) }
        if gated { a["norm_gate"] = .string("silu") }
        return a
    }

    /// The folded norm described by `a`, nil when the op has none; throws on a malformed description.
    public static func of(_ a: Attributes) throws -> FoldedNorm? {
        guard a["norm"] != nil else {
            guard a["norm_eps"] == nil, a["norm_affine"] == nil, a["norm_gate"] == nil else {
                throw HybridError("norm_eps, norm_affine or norm_gate without norm")
            }
            return nil
        }
        let form = try a.string("norm"), eps = try a.float("norm_eps"), affine = try a.bool("norm_affine", default: false)
        var gated = false
        if a["norm_gate"] != nil {
            let gate = try a.string("norm_gate")
            guard gate == "silu" else { throw HybridError("norm_gate must be \"silu\", got '\(gate)'") }
            guard affine else { throw HybridError("norm_gate needs norm_affine = true (γ and β cannot be folded under a gate)") }
            gated = true
        }
        guard forms.contains(form) else {
            throw HybridError("norm must be one of \(forms.joined(separator: ", ")), got '\(form)'")
        }
        guard eps > 0 else { throw HybridError("norm_eps must be positive, got \(eps)") }
        return FoldedNorm(centered: form == "with_bias", eps: eps, affine: affine, gated: gated)
    }
}
