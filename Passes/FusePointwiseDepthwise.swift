/// Fuses a 1x1 conv followed by a depthwise 3x3 conv (with its fused activation) into one
/// `fused_pointwise_depthwise` op, which runs GDFN's row-tiled machinery (FusedFeedForwardKernel.swift,
/// FeedForwardTiles) with one projection and no project_out: the projection lives only in per-thread scratch and
/// the kernel writes nothing but the activated depthwise output. In an S block this is SS2D's in_proj x half (once
/// `split-sliced-projections` has split in_proj) → conv2d → SiLU, whose output x_proj and the scan read.
///
/// Name: `fuse-pointwise-depthwise`. Requires: a typed graph after `split-sliced-projections` (the x half must be a
/// conv of its own) and `fuse-elementwise` (the SiLU is the depthwise conv's `activation`). Produces: the same graph
/// with each matched pair replaced by one `fused_pointwise_depthwise` op; anything that does not match exactly is
/// left alone.
///
/// Algorithm:
///  1. Count the users of every value (graph outputs count as users).
///  2. For each 1x1 conv2d P (groups 1, padding 0, stride 1, weight (E, C, 1, 1), optional bias, no activation or
///     residual; a folded layer norm — per pixel, `norm` without `norm_affine` — is allowed) whose only user is a
///     conv2d D reading it as its input, D being a depthwise 3x3 (groups E, padding 1, stride 1, weight
///     (E, 1, 3, 3), optional bias, an optional activation, no norm or residual).
///  3. Replace D with one `fused_pointwise_depthwise` (same result value) taking x, P's weight and bias and D's
///     weight and bias, with attributes hidden = E, in_bias, bias, row_tile, activation (D's), P's norm and fuses;
///     drop P.
///  4. Record the pairs fused and the bytes of projections no longer written.
import HybridIR

public struct FusePointwiseDepthwise: Pass {
    public static let name = "fuse-pointwise-depthwise"
    public static let summary = "fuse a 1x1 conv → depthwise 3x3 (+ activation) into one row-tiled op (SS2D's in_proj x half)"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        let types = graph.valueTypes()
        let users = graph.readers()

        var removed = Set<Int>()
        var replacement: [Int: Operation] = [:]
        var fused = 0, bytes = 0
        for i in graph.ops.indices where !removed.contains(i) && replacement[i] == nil {
            guard let (d, op) = match(at: i, graph, types, users), replacement[d] == nil else { continue }
            removed.insert(i)
            replacement[d] = op
            fused += 1
            bytes += types[graph.ops[i].result]?.byteSize ?? 0
        }
        context.record("pointwise-depthwise pairs fused", fused)
        guard fused > 0 else { return }
        graph.ops = graph.ops.enumerated().compactMap { i, op in
            removed.contains(i) ? nil : (replacement[i] ?? op)
        }
        context.record("intermediate bytes not written", bytes)
    }

    /// The pair whose projection is op `i`: the index of the depthwise conv and the fused op replacing it.
    func match(at i: Int, _ graph: Graph, _ types: [ValueID: TensorType], _ users: [ValueID: [Int]]) -> (Int, Operation)? {
        let ops = graph.ops
        func shape(_ v: ValueID) -> [Int]? { types[v]?.shape }
        func int(_ op: Operation, _ key: String, _ fallback: Int? = nil) -> Int? {
            if let v = try? op.attributes.int(key) { return v }
            return op.attributes[key] == nil ? fallback : nil
        }
        func plainConv(_ op: Operation, groups: Int, padding: Int, kernel: Int) -> Bool {
            guard op.kind == .conv2d, int(op, "groups") == groups, int(op, "padding") == padding,
                  int(op, "stride", 1) == 1, op.attributes["residual"] == nil, op.attributes["residual_scaled"] == nil,
                  op.operands.count == 2 || op.operands.count == 3,
                  let w = shape(op.operands[1]), w.count == 4 else { return false }
            return w[2] == kernel && w[3] == kernel
        }

        // The projection: 1x1, E output channels, no activation; a folded (per-pixel) norm only.
        let p = ops[i]
        guard plainConv(p, groups: 1, padding: 0, kernel: 1), p.attributes["activation"] == nil,
              let x = shape(p.operands[0]), x.count == 4, let wIn = shape(p.operands[1]), wIn[1] == x[1],
              let norm = Optional(try? FoldedNorm.of(p.attributes)), (norm != nil) == (p.attributes["norm"] != nil),
              norm?.affine != true else { return nil }
        let e = wIn[0]

        // The depthwise 3x3 over its E channels: the projection's only user, reading it as its input.
        guard let u = users[p.result], u.count == 1, u[0] >= 0 else { return nil }
        let d = ops[u[0]]
        guard plainConv(d, groups: e, padding: 1, kernel: 3), d.operands[0] == p.result, d.attributes["norm"] == nil,
              shape(d.operands[1]) == [e, 1, 3, 3], !d.operands.dropFirst().contains(p.result),
              (try? Epilogue.activation(d.attributes)) != nil || d.attributes["activation"] == nil else { return nil }
        let activation = (try? Epilogue.activation(d.attributes)) ?? nil

        let inBias = p.operands.count == 3, bias = d.operands.count == 3
        var attributes: Attributes = ["hidden": .int(e), "in_bias": .bool(inBias), "bias": .bool(bias),
                                      "row_tile": .int(FuseFeedForward.defaultRowTile)]
        let pf = (try? p.attributes.string("fuses")) ?? "conv2d", df = (try? d.attributes.string("fuses")) ?? "conv2d"
        attributes["fuses"] = .string((norm == nil ? "" : "layer_norm+") + pf + "+" + df)
        if let activation { attributes["activation"] = .string(activation.name) }
        for (k, v) in norm?.attributes ?? [:] { attributes[k] = v }
        let operands = Array(p.operands) + Array(d.operands.dropFirst())
        return (u[0], Operation(kind: .fusedPointwiseDepthwise, operands: operands, attributes: attributes,
                                result: d.result, type: d.type, scope: d.scope))
    }
}
