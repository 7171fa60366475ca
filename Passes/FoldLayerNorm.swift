/// Moves each channel LayerNorm into the kernels that consume it, so that its normalised tensor is never written.
///
/// Name: `fold-layer-norm`. Requires: a typed graph of primitive ops with bound weights, after `fold-constants`
/// (so that reshaped Linear weights are weights). Produces: 1x1 `conv2d`s with a `norm` ("with_bias" or
/// "bias_free") and `norm_eps`, reading the norm's input and new folded weights; dense `conv2d`s with a `norm`,
/// `norm_eps` and `norm_affine = true`, reading the norm's input and taking γ (and β) as operands; `layer_norm`s
/// with a `gate`.
///
/// Algorithm:
///  1. Count the users of every value (graph outputs count as users); find each `layer_norm` over axis 1 of a
///     (N, C, H, W) tensor whose γ (and β) are bound weights.
///  2. Fold: if every user is a 1x1 `conv2d` (groups 1, padding 0, stride 1, no norm yet) reading the norm as its
///     input and having bound weights, rewrite each of them (ARCHITECTURES.md 1.1):
///     - WithBias (centred): W' = W·diag(γ), b' = b + W·β (fp64 sums); the conv normalises each pixel,
///       (x − μ)/σ, as a prologue of its GEMM.
///     - BiasFree (uncentred numerator, centred variance): W' = W·diag(γ), the bias stays b; the per-pixel 1/σ
///       commutes with the projection and is applied to the GEMM's sums as an epilogue, y = (W'·x)/σ + b. It is
///       never the WithBias form with β = 0, which would subtract the mean.
///     The folded weights are computed now and stored in the context as `<W>.ln_folded` and `<W>.ln_folded_bias`,
///     new `weight` ops placed before the conv; the conv reads the norm's input x. Statistics are recomputed per
///     pixel in each kernel by two passes (mean, then the variance around it), never as μ·rowsum(W) subtracted
///     after the GEMM, which cancels catastrophically when the channels share a large offset. A norm with several
///     1x1 consumers folds into each (each recomputes the statistics instead of reading a written tensor).
///  3. Dense consumers: if every user is a dense `conv2d` (groups 1, stride 1 or 2, zero padding, any kernel size
///     but not a foldable 1x1; no norm or residual yet) reading the norm as its input only (CAB's `ln_2` before its
///     first 3x3), the norm is attached to each conv unfolded: folding β through a zero-padded conv is wrong at the
///     border (the padding is zero after the norm, W·β would add there), so the weights stay as they are and γ
///     (and β) become the conv's last operands, with `norm_affine = true` (FoldedNorm). The conv's implicit GEMM
///     normalises what it packs, (x − μ)·r·γ + β (WithBias) or x·r·γ (BiasFree) at taps inside the image and 0 at
///     taps in the padding, from per-pixel statistics computed once per panel of output pixels (two passes over
///     the channels of the input rows the panel reads). Only WithBias norms with β and BiasFree norms without
///     one take this form.
///  4. Gate: if the norm's only user is `mul(norm, silu(z))` and the silu has no other user (SS2D's out_norm),
///     replace the three ops by one `layer_norm` with `gate = "silu"` and z as its last operand: LN(y)·silu(z)
///     in one kernel, nothing folded (the gate is not linear).
///  5. Anything else (a user that is not a conv, grouped or depthwise convs, mixed 1x1 and dense users, a norm
///     that is a graph output) is left as it is: one `layer_norm` kernel and its C·P write.
///  6. Record the norms folded, the convs that received one, the norms moved into dense convs and those convs,
///     the gated norms, the norms left, and the bytes of normalised (and silu) tensors no longer written.
import HybridIR

public struct FoldLayerNorm: Pass {
    public static let name = "fold-layer-norm"
    public static let summary = "fold channel LayerNorms into the 1x1 convs they feed (γ, β into W, b), normalise in dense convs; fuse gated norms"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        let users = graph.readers()
        let definer = graph.definers()
        /// The bound tensor and key of a value defined by a `weight` op.
        func weight(_ v: ValueID) -> (key: String, tensor: Tensor)? {
            guard let i = definer[v], graph.ops[i].kind == .weight, let key = try? graph.ops[i].attributes.string("name"),
                  let t = context.weights[key] else { return nil }
            return (key, t)
        }

        let typeOf = graph.valueTypes()

        var nextID = graph.maxValueID + 1
        var removed = Set<Int>()
        var replacement: [Int: Operation] = [:]
        var inserted: [Int: [Operation]] = [:]
        var folded = 0, convs = 0, gated = 0, left = 0, bytes = 0, attached = 0, unfolded = 0
        for (i, ln) in graph.ops.enumerated() where ln.kind == .layerNorm && ln.attributes["gate"] == nil {
            guard (try? ln.attributes.int("axis")) == 1, let type = ln.type, type.rank == 4,
                  let eps = try? ln.attributes.float("eps"), let centered = try? ln.attributes.bool("centered"),
                  let gamma = weight(ln.operands[1]) else { left += 1; continue }
            let beta = ln.operands.count > 2 ? weight(ln.operands[2]) : nil
            guard ln.operands.count == 2 || beta != nil else { left += 1; continue }
            let lnUsers = users[ln.result] ?? []

            // 2. Every user a 1x1 projection of the normalised tensor.
            let projections = lnUsers.compactMap { u -> (Int, Tensor, (key: String, tensor: Tensor)?)? in
                guard u >= 0 else { return nil }
                let conv = graph.ops[u]
                guard conv.kind == .conv2d, conv.operands[0] == ln.result, !conv.operands.dropFirst().contains(ln.result),
                      conv.attributes["norm"] == nil, (try? conv.attributes.int("groups")) == 1,
                      (try? conv.attributes.int("padding")) == 0, (try? conv.attributes.int("stride", default: 1)) == 1,
                      let w = weight(conv.operands[1]), w.tensor.shape.count == 4, w.tensor.shape[2] == 1,
                      w.tensor.shape[3] == 1 else { return nil }
                let b = conv.operands.count > 2 ? weight(conv.operands[2]) : nil
                guard conv.operands.count == 2 || b != nil else { return nil }
                return (u, w.tensor, b)
            }
            // 3. Every user a dense convolution of the normalised tensor that cannot take a fold (KxK with zero
            //    padding, or strided): it takes the norm itself, γ and β as operands (see below).
            let dense = lnUsers.filter { u in
                guard u >= 0 else { return false }
                let conv = graph.ops[u]
                guard conv.kind == .conv2d, conv.operands[0] == ln.result, !conv.operands.dropFirst().contains(ln.result),
                      conv.attributes["norm"] == nil, conv.attributes["residual"] == nil,
                      (try? conv.attributes.int("groups")) == 1, let padding = try? conv.attributes.int("padding"), padding >= 0,
                      let stride = try? conv.attributes.int("stride", default: 1), stride == 1 || stride == 2,
                      conv.operands.count <= 3, let w = conv.operands.count > 1 ? conv.operands[1] : nil,
                      let wt = typeOf[w], wt.rank == 4 else { return false }
                return !(wt.shape[2] == 1 && wt.shape[3] == 1 && padding == 0 && stride == 1)
            }
            // WithBias with its β, or BiasFree without one: the two forms the conv's normalise knows.
            let attachable = centered ? beta != nil : ln.operands.count == 2
            if !lnUsers.isEmpty && dense.count == lnUsers.count && attachable {
                let norm = FoldedNorm(centered: centered, eps: eps, affine: true)
                for u in dense {
                    var rewritten = graph.ops[u]
                    rewritten.operands = [ln.operands[0]] + rewritten.operands.dropFirst() + ln.operands.dropFirst()
                    for (k, v) in norm.attributes { rewritten.attributes[k] = v }
                    replacement[u] = rewritten
                    unfolded += 1
                }
                removed.insert(i)
                attached += 1
                bytes += type.byteSize
                continue
            }

            if !lnUsers.isEmpty && projections.count == lnUsers.count {
                let norm = FoldedNorm(centered: centered, eps: eps)
                for (u, w, b) in projections {
                    let conv = graph.ops[u]
                    let wKey = weight(conv.operands[1])!.key
                    let (wFolded, bFolded) = fold(w, bias: b?.tensor, gamma: gamma.tensor, beta: beta?.tensor)
                    var operands = [ln.operands[0]]
                    var newWeights: [Operation] = []
                    func add(_ t: Tensor, _ key: String) {
                        let name = uniqueName(key, t, context)
                        context.weights[name] = t
                        newWeights.append(Operation(kind: .weight, operands: [], attributes: ["name": .string(name)],
                                                    result: nextID, type: TensorType(.f32, t.shape), scope: conv.scope))
                        operands.append(nextID)
                        nextID += 1
                    }
                    add(wFolded, "\(wKey).ln_folded")
                    if beta != nil, let bFolded {
                        add(bFolded, "\(wKey).ln_folded_bias")
                    } else if conv.operands.count > 2 {
                        operands.append(conv.operands[2])  // no β (BiasFree): the conv keeps its own bias
                    }
                    var rewritten = conv
                    rewritten.operands = operands
                    for (k, v) in norm.attributes { rewritten.attributes[k] = v }
                    replacement[u] = rewritten
                    inserted[u] = newWeights
                    convs += 1
                }
                removed.insert(i)
                folded += 1
                bytes += type.byteSize
                continue
            }

            // 4. The gate of SS2D's out_norm: mul(norm, silu(z)).
            if lnUsers.count == 1, lnUsers[0] >= 0, graph.ops[lnUsers[0]].kind == .mul, replacement[lnUsers[0]] == nil {
                let m = lnUsers[0]
                let mul = graph.ops[m]
                let other = mul.operands[0] == ln.result ? mul.operands[1] : mul.operands[0]
                if mul.operands.contains(ln.result), other != ln.result, let s = definer[other], graph.ops[s].kind == .silu,
                   users[other] == [m], let z = graph.ops[s].type, z.shape == type.shape, mul.type?.shape == type.shape {
                    var gatedOp = ln
                    gatedOp.operands.append(graph.ops[s].operands[0])
                    gatedOp.attributes["gate"] = .string("silu")
                    gatedOp.result = mul.result
                    gatedOp.type = mul.type
                    replacement[m] = gatedOp
                    removed.formUnion([i, s])
                    gated += 1
                    bytes += type.byteSize + z.byteSize
                    continue
                }
            }
            left += 1
        }

        var ops: [Operation] = []
        for (i, op) in graph.ops.enumerated() where !removed.contains(i) {
            ops += inserted[i] ?? []
            ops.append(replacement[i] ?? op)
        }
        graph.ops = ops
        context.record("layer norms folded", folded)
        context.record("convs given a folded norm", convs)
        context.record("layer norms moved into dense convs", attached)
        context.record("dense convs given an unfolded norm", unfolded)
        context.record("layer norms fused with their gate", gated)
        context.record("layer norms left", left)
        context.record("bytes no longer written", bytes)
    }

    /// W' = W·diag(γ) and the bias: b + W·β when β is given (WithBias; the per-pixel 1/σ of an uncentred norm
    /// with a β would still apply before β), b otherwise (BiasFree keeps its bias).
    func fold(_ w: Tensor, bias: Tensor?, gamma: Tensor, beta: Tensor?) -> (Tensor, Tensor?) {
        let (co, ci) = (w.shape[0], w.shape[1])
        var folded = w.data
        for o in 0..<co { for i in 0..<ci { folded[o * ci + i] = Float(Double(w.data[o * ci + i]) * Double(gamma.data[i])) } }
        guard let beta else { return (Tensor(shape: w.shape, data: folded), bias) }
        let b = (0..<co).map { o -> Float in
            var sum = bias.map { Double($0.data[o]) } ?? 0
            for i in 0..<ci { sum += Double(w.data[o * ci + i]) * Double(beta.data[i]) }
            return Float(sum)
        }
        return (Tensor(shape: w.shape, data: folded), Tensor(shape: [co], data: b))
    }

    /// `key`, or `key2`, `key3`, ... when the context already holds a different tensor under it.
    func uniqueName(_ key: String, _ t: Tensor, _ context: PassContext) -> String {
        var name = key, n = 2
        while let existing = context.weights[name], existing != t {
            name = "\(key)\(n)"
            n += 1
        }
        return name
    }
}
