/// Moves a gated channel LayerNorm (SS2D's out_norm and its gate, LN(y)·silu(z)) into the 1x1 projection it feeds
/// (out_proj), so that the gated tensor is never written: the projection's packing prologue normalises and gates
/// what it packs.
///
/// Name: `fuse-gated-norm`. Requires: a typed graph of primitive ops after `fold-layer-norm` (whose step 4 makes
/// the gated `layer_norm`s). Produces: 1x1 `conv2d`s with `norm`, `norm_eps`, `norm_affine = true` and
/// `norm_gate = "silu"` (FoldedNorm), reading the norm's input, with γ (and β) and z as operands after the conv's
/// weight and optional bias.
///
/// Algorithm:
///  1. Count the users of every value (graph outputs count as users).
///  2. For each `layer_norm` with `gate = "silu"` over axis 1 of a (N, C, H, W) tensor, in one of the two forms an
///     unfolded norm has (centred with β, or uncentred without one), whose only user is a 1x1 `conv2d` (groups 1,
///     padding 0, stride 1, no norm, residual or activation yet) reading it as its input and nowhere else:
///     the conv reads the norm's input x and takes γ (β) and z after its weight (and bias); the norm goes.
///     γ and β stay operands, not folded into W: the gate multiplies after the affine, so W·diag(γ) would need the
///     gate of each pixel inside the sum and W·β would become a per-pixel term. The statistics are recomputed per
///     pixel by the conv (two passes: the mean, then the variance around it), as for a folded norm.
///  3. Anything else (several users, a norm that is a graph output, a non-1x1 user) is left as it is.
///  4. Record the norms fused and the bytes of gated tensors no longer written.
import HybridIR

public struct FuseGatedNorm: Pass {
    public static let name = "fuse-gated-norm"
    public static let summary = "fuse gated LayerNorms (LN(y)·silu(z), SS2D's out_norm) into the 1x1 conv they feed"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        let users = graph.readers()
        let typeOf = graph.valueTypes()

        var removed = Set<Int>()
        var fused = 0, bytes = 0
        for (i, ln) in graph.ops.enumerated() where ln.kind == .layerNorm {
            guard (try? ShapeRules.layerNormGate(ln.attributes)) == "silu", (try? ln.attributes.int("axis")) == 1,
                  let type = ln.type, type.rank == 4, let eps = try? ln.attributes.float("eps"),
                  let centered = try? ln.attributes.bool("centered"),
                  // with_bias with its β (x, γ, β, z) or bias_free without one (x, γ, z).
                  ln.operands.count == (centered ? 4 : 3),
                  let lnUsers = users[ln.result], lnUsers.count == 1, lnUsers[0] >= 0 else { continue }
            let u = lnUsers[0]
            let conv = graph.ops[u]
            guard conv.kind == .conv2d, conv.operands[0] == ln.result, !conv.operands.dropFirst().contains(ln.result),
                  conv.attributes["norm"] == nil, conv.attributes["residual"] == nil, conv.attributes["activation"] == nil,
                  (try? conv.attributes.int("groups")) == 1, (try? conv.attributes.int("padding")) == 0,
                  (try? conv.attributes.int("stride", default: 1)) == 1, conv.operands.count <= 3,
                  let w = typeOf[conv.operands[1]], w.rank == 4, w.shape[1] == type.shape[1], w.shape[2] == 1, w.shape[3] == 1
            else { continue }
            let norm = FoldedNorm(centered: centered, eps: eps, affine: true, gated: true)
            var rewritten = conv
            rewritten.operands = [ln.operands[0]] + conv.operands.dropFirst() + ln.operands.dropFirst()
            for (k, v) in norm.attributes { rewritten.attributes[k] = v }
            graph.ops[u] = rewritten
            removed.insert(i)
            fused += 1
            bytes += type.byteSize
        }
        graph.ops = graph.ops.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        context.record("gated norms fused into projections", fused)
        context.record("bytes no longer written", bytes)
    }
}
