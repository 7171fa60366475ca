/// The channel LayerNorm that `fold-layer-norm` moves into the 1x1 projection (or fused op) it feeds: which form it
/// has and its eps, read from the op's `norm` and `norm_eps` attributes (ARCHITECTURES.md 1.1).
///
/// The op's weights are already folded at compile time, W' = W·diag(γ), so at run time it only needs the statistics
/// of each pixel, mean μ and r = 1/sqrt(var + eps) over the channels (two passes: the variance around the mean):
///  - `with_bias` (centred): the GEMM reads x̂ = (x − μ)·r (a prologue), and its bias is b' = b + W·β;
///  - `bias_free` (uncentred): r commutes with the projection, y = (W'·x)·r + b (an epilogue); the bias is b.
public struct FoldedNorm: Equatable {
    public static let forms = ["with_bias", "bias_free"]

    /// True for `with_bias` (x − μ in the numerator), false for `bias_free`.
    public var centered: Bool
    public var eps: Double

    public init(centered: Bool, eps: Double) {
        self.centered = centered
        self.eps = eps
    }

    /// The attribute value: "with_bias" or "bias_free".
    public var form: String { centered ? "with_bias" : "bias_free" }

    /// The attributes that describe it on an op.
    public var attributes: [String: Attribute] { ["norm": .string(form), "norm_eps": .float(eps)] }

    /// The folded norm described by `a`, nil when the op has none; throws on a malformed description.
    public static func of(_ a: Attributes) throws -> FoldedNorm? {
        guard a["norm"] != nil else {
            guard a["norm_eps"] == nil else { throw HybridError("norm_eps without norm") }
            return nil
        }
        let form = try a.string("norm"), eps = try a.float("norm_eps")
        guard forms.contains(form) else {
            throw HybridError("norm must be one of \(forms.joined(separator: ", ")), got '\(form)'")
        }
        guard eps > 0 else { throw HybridError("norm_eps must be positive, got \(eps)") }
        return FoldedNorm(centered: form == "with_bias", eps: eps)
    }
}
