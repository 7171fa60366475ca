/// Fuses each Restormer GDFN (project_in, depthwise 3x3, exact-GELU gate, project_out) into one
/// `fused_feed_forward` op, whose kernel is tiled over rows with a halo and writes only its output.
///
/// Name: `fuse-feed-forward`. Requires: a typed graph of primitive ops (after `expand-blocks`, `infer-shapes`).
/// Produces: the same graph with every matched GDFN replaced by one `fused_feed_forward` op; anything that does
/// not match exactly is left alone.
///
/// Algorithm:
///  1. Count the users of every value (graph outputs count as users).
///  2. For each 1x1 conv2d (groups 1, padding 0, stride 1, 2h output channels) find the chain
///     depthwise 3x3 conv2d (groups 2h, padding 1, stride 1) → slice [0, h) and slice [h, 2h) on axis 1 →
///     gelu of the first → mul with the second → 1x1 conv2d (h input channels): every op, attribute and weight
///     shape must be exactly that, all three convs have a bias or none has, and each intermediate's only
///     users are the next ops of the chain. project_in may carry a layer norm folded by `fold-layer-norm` (then,
///     WithBias, with a bias of its own); the fused op takes over its `norm` and `norm_eps`.
///  3. Replace the final conv with one `fused_feed_forward` op (same result value, so users need no rewrite)
///     taking x and the three convs' weights and biases, with attributes hidden, bias, row_tile and fuses;
///     drop the six other ops.
///  4. Record the feed-forwards fused and the bytes of intermediates no longer written.
import HybridIR

public struct FuseFeedForward: Pass {
    public static let name = "fuse-feed-forward"
    public static let summary = "fuse GDFN (project_in, depthwise 3x3, gelu gate, project_out) into one row-tiled op"

    /// Output rows per tile of the fused kernel until `schedule-kernels` retunes it from the target: the halo
    /// recomputes (rows + 2) / rows of project_in, 25% at 8 rows, while the tile's scratch 2h·10·W floats stays
    /// within a phone core's L2 at the widths of the deeper levels.
    public static let defaultRowTile = 8

    static let fusedNames = "conv2d+conv2d+slice+slice+gelu+mul+conv2d"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        let types = graph.valueTypes()
        let users = graph.readers()
        let definer = graph.definers()

        var removed = Set<Int>()
        var replacement: [Int: Operation] = [:]
        var fused = 0, bytes = 0
        for i in graph.ops.indices where !removed.contains(i) {
            guard let match = match(at: i, graph, types, users, definer) else { continue }
            removed.formUnion(match.intermediates)
            replacement[match.projectOut] = match.fused
            fused += 1
            bytes += match.intermediates.map { types[graph.ops[$0].result]!.byteSize }.reduce(0, +)
        }
        guard fused > 0 else {
            context.record("feed-forwards fused", 0)
            return
        }
        graph.ops = graph.ops.enumerated().compactMap { i, op in
            removed.contains(i) ? nil : (replacement[i] ?? op)
        }
        context.record("feed-forwards fused", fused)
        context.record("intermediate bytes not written", bytes)
    }

    struct Match {
        /// Indices of project_in, dwconv, both slices, gelu and mul (all removed).
        var intermediates: [Int]
        var projectOut: Int
        var fused: Operation
    }

    /// The GDFN whose project_in is op `i`, if every op of the chain is exactly as `expand-blocks` writes it.
    func match(at i: Int, _ graph: Graph, _ types: [ValueID: TensorType], _ users: [ValueID: [Int]],
               _ definer: [ValueID: Int]) -> Match? {
        let ops = graph.ops
        func shape(_ v: ValueID) -> [Int]? { types[v]?.shape }
        func int(_ op: Operation, _ key: String, _ fallback: Int? = nil) -> Int? {
            if let v = try? op.attributes.int(key) { return v }
            return op.attributes[key] == nil ? fallback : nil
        }
        /// The op that is the only user of `v` (and uses it once).
        func soleUser(_ v: ValueID) -> Int? {
            guard let u = users[v], u.count == 1, u[0] >= 0 else { return nil }
            return u[0]
        }
        func isConv(_ op: Operation, groups: Int, padding: Int, kernel: Int) -> Bool {
            guard op.kind == .conv2d, int(op, "groups") == groups, int(op, "padding") == padding,
                  int(op, "stride", 1) == 1, let w = shape(op.operands[1]) else { return false }
            return w[2] == kernel && w[3] == kernel
        }

        // project_in: 1x1, 2h output channels.
        let pin = ops[i]
        guard isConv(pin, groups: 1, padding: 0, kernel: 1), let x = shape(pin.operands[0]), x.count == 4,
              let wIn = shape(pin.operands[1]), wIn[0] % 2 == 0 else { return nil }
        let c2 = wIn[0], hidden = c2 / 2

        // dwconv: depthwise 3x3 over all 2h channels, the only user of project_in.
        guard let d = soleUser(pin.result), ops[d].operands[0] == pin.result,
              isConv(ops[d], groups: c2, padding: 1, kernel: 3), shape(ops[d].operands[1]) == [c2, 1, 3, 3] else { return nil }
        let dw = ops[d]

        // Its only users: slice [0, h) and slice [h, 2h) of the channels.
        guard let du = users[dw.result], du.count == 2, du.allSatisfy({ $0 >= 0 }) else { return nil }
        func slice(_ j: Int, start: Int) -> Bool {
            let s = ops[j]
            return s.kind == .slice && int(s, "axis") == 1 && int(s, "start") == start && int(s, "size") == hidden
        }
        guard let s1 = du.first(where: { slice($0, start: 0) }), let s2 = du.first(where: { slice($0, start: hidden) }),
              s1 != s2 else { return nil }

        // gelu of the first half, multiplied by the second half.
        guard let g = soleUser(ops[s1].result), ops[g].kind == .gelu,
              let m = soleUser(ops[g].result), ops[m].kind == .mul,
              soleUser(ops[s2].result) == m,
              Set(ops[m].operands) == [ops[g].result, ops[s2].result] else { return nil }

        // project_out: 1x1 from h channels, the only user of the gate.
        guard let o = soleUser(ops[m].result), ops[o].operands[0] == ops[m].result,
              isConv(ops[o], groups: 1, padding: 0, kernel: 1),
              let wOut = shape(ops[o].operands[1]), wOut[1] == hidden else { return nil }
        let pout = ops[o]

        // All three convs have a bias or none has; a WithBias layer norm folded into project_in gives it a bias
        // of its own (b + W·β).
        guard let norm = Optional(try? FoldedNorm.of(pin.attributes)), (norm != nil) == (pin.attributes["norm"] != nil),
              norm?.affine != true else { return nil }
        let biased = [dw, pout].map { $0.operands.count == 3 }
        guard biased[0] == biased[1], (pin.operands.count == 3) == (biased[0] || norm?.centered == true) else { return nil }
        let operands = [pin.operands[0]] + pin.operands.dropFirst() + dw.operands.dropFirst() + pout.operands.dropFirst()
        // The weights must be defined before the fused op, which takes project_out's place.
        guard operands.allSatisfy({ definer[$0].map { $0 < o } ?? true }) else { return nil }

        var attributes: Attributes = ["hidden": .int(hidden), "bias": .bool(biased[0]), "row_tile": .int(Self.defaultRowTile),
                                      "fuses": .string((norm == nil ? "" : "layer_norm+") + Self.fusedNames)]
        for (k, v) in norm?.attributes ?? [:] { attributes[k] = v }
        let fusedOp = Operation(kind: .fusedFeedForward, operands: operands, attributes: attributes,
                                result: pout.result, type: pout.type, scope: ops[m].scope)
        return Match(intermediates: [i, d, s1, s2, g, m], projectOut: o, fused: fusedOp)
    }
}
