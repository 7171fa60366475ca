/// Folds elementwise ops into the kernel that produces their input, so that their inputs are never written:
/// activations into the convolution before them, and the skip scales and channel-attention scaling of a residual
/// into the add that joins it.
///
/// Name: `fuse-elementwise`. Requires: a typed graph of primitive (and fused) ops; run after the block fusions and
/// the scan chunking, whose patterns it would otherwise hide. Produces: `conv2d`s with an `activation`, `add`s
/// with `scaled` operands (y = a·sa + b·sb), fused ops and `conv2d`s with a `residual`; each rewritten op names what it
/// absorbed in `fuses`.
///
/// Algorithm:
///  1. Count the users of every value (graph outputs count as users).
///  2. Activation: a gelu, silu, relu or sigmoid whose input is a `conv2d` with no activation yet and no other
///     user (CAB's 3x3 → GELU, SS2D's depthwise → SiLU, the channel attention's 1x1 → ReLU and → sigmoid)
///     becomes the conv's `activation`; the conv takes the activation's result value and the activation goes.
///  3. Scaled add: for each operand of an `add` that is a `mul` used only by that add, the add reads the mul's
///     operand of the add's shape (the other is the scale, which broadcasts) and takes the scale as an extra
///     operand: S blocks' x·skip_scale + out_proj(y) becomes one kernel, and t·skip_scale2 + cab·ca (the
///     channel attention applied on the fly) another.
///  4. Residual: an `add` of a `fused_attention` or `fused_feed_forward` result (used only there) and a value defined
///     before the fused op (the T block's x + attn(norm1(x)) and x + ffn(norm2(x))) becomes the fused op's
///     `residual` operand, added to each output tile as it is finished.
///  5. Record the ops fused and the bytes of their inputs no longer written.
///
///  4b. Residual of a plain convolution: an `add` of a `conv2d` result (groups 1, no activation or folded norm other
///     than a gated one (fuse-gated-norm's out_proj), used
///     only there) and r, or r·s with s per channel ([1, C, 1, 1]) from a `mul` used only there (the S block's
///     x·skip_scale + out_proj(y)), becomes the conv's `residual` (and `residual_scaled`) operands, added in the
///     GEMM epilogue; the conv moves to the add's place.
import HybridIR

public struct FuseElementwise: Pass {
    public static let name = "fuse-elementwise"
    public static let summary = "fold activations into convs and skip/channel scales into residual adds (epilogues)"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        let users = graph.readers()
        var definer = graph.definers()
        var removed = Set<Int>()
        var fused = 0, bytes = 0
        /// The op defining `v` if `user` is its only user.
        func soleProducer(_ v: ValueID, _ user: Int) -> Int? {
            guard let i = definer[v], users[v] == [user], !removed.contains(i) else { return nil }
            return i
        }
        func fuses(_ op: Operation, _ absorbed: [String]) -> Attribute {
            let own = (try? op.attributes.string("fuses")) ?? op.kind.name
            return .string(([own] + absorbed).joined(separator: "+"))
        }

        for i in graph.ops.indices {
            let op = graph.ops[i]
            // 2. conv2d → activation.
            if Epilogue.activations.contains(op.kind), let c = soleProducer(op.operands[0], i),
               graph.ops[c].kind == .conv2d, graph.ops[c].attributes["activation"] == nil {
                var conv = graph.ops[c]
                conv.attributes["activation"] = .string(op.kind.name)
                conv.attributes["fuses"] = fuses(conv, [op.kind.name])
                bytes += conv.type?.byteSize ?? 0
                conv.result = op.result
                conv.type = op.type
                graph.ops[c] = conv
                definer[op.result] = c
                removed.insert(i)
                fused += 1
                continue
            }
            // 4. A T-block residual: add(x, fused) → the fused op adds x to its output.
            if op.kind == .add, op.attributes["scaled"] == nil, let type = op.type {
                let residual = (0..<2).first { side in
                    guard let f = soleProducer(op.operands[side], i), [.fusedAttention, .fusedFeedForward].contains(graph.ops[f].kind),
                          graph.ops[f].attributes["residual"] == nil, graph.ops[f].type == type else { return false }
                    let other = op.operands[1 - side]
                    // The residual must exist before the fused op, which keeps its place.
                    return other != op.operands[side] && (definer[other].map { $0 < f } ?? true)
                }
                if let side = residual, let f = definer[op.operands[side]] {
                    var fusedOp = graph.ops[f]
                    fusedOp.operands.append(op.operands[1 - side])
                    fusedOp.attributes["residual"] = .bool(true)
                    fusedOp.attributes["fuses"] = fuses(fusedOp, ["add"])
                    bytes += fusedOp.type?.byteSize ?? 0
                    fusedOp.result = op.result
                    graph.ops[f] = fusedOp
                    definer[op.result] = f
                    removed.insert(i)
                    fused += 1
                    continue
                }
            }
            // 4b. A plain convolution's residual: add(r·s or r, conv) → conv2d(..., r[, s]) {residual}.
            if op.kind == .add, op.attributes["scaled"] == nil, let fusedConv = convResidual(i, op, graph, soleProducer) {
                var conv = graph.ops[fusedConv.conv]
                conv.operands += [fusedConv.residual] + (fusedConv.scale.map { [$0] } ?? [])
                conv.attributes["residual"] = .bool(true)
                if fusedConv.scale != nil { conv.attributes["residual_scaled"] = .bool(true) }
                conv.attributes["fuses"] = fuses(conv, (fusedConv.mul != nil ? ["mul"] : []) + ["add"])
                bytes += conv.type?.byteSize ?? 0
                if let m = fusedConv.mul {
                    bytes += graph.ops[m].type?.byteSize ?? 0
                    removed.insert(m)
                    fused += 1
                }
                // The fused conv takes the add's place: its residual and scale exist there, and nothing between
                // read the conv's own result.
                conv.result = op.result
                graph.ops[i] = conv
                definer[op.result] = i
                removed.insert(fusedConv.conv)
                fused += 1
                continue
            }
            // 3. add(mul(a, sa), mul(b, sb)) → add(a, b, sa, sb) {scaled}.
            guard op.kind == .add, op.attributes["scaled"] == nil, let shape = op.type?.shape else { continue }
            var operands = Array(op.operands)
            var scales: [ValueID] = []
            var sides: [Bool] = []
            var absorbed: [String] = []
            for side in 0..<2 {
                guard let m = soleProducer(op.operands[side], i), graph.ops[m].kind == .mul,
                      let full = graph.ops[m].operands.firstIndex(where: { definerShape($0, graph, definer) == shape })
                else { sides.append(false); continue }
                let mul = graph.ops[m]
                operands[side] = mul.operands[full]
                scales.append(mul.operands[1 - full])
                sides.append(true)
                absorbed.append("mul")
                removed.insert(m)
                bytes += mul.type?.byteSize ?? 0
                fused += 1
            }
            guard let scaled = Epilogue.scaledName(lhs: sides[0], rhs: sides[1]) else { continue }
            var add = op
            add.operands = operands + scales
            add.attributes["scaled"] = .string(scaled)
            add.attributes["fuses"] = .string((absorbed + ["add"]).joined(separator: "+"))
            graph.ops[i] = add
        }
        graph.ops = graph.ops.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        context.record("elementwise ops fused", fused)
        context.record("bytes no longer written", bytes)
    }

    /// For the add at `i`: a side that is a `conv2d` (groups 1, no activation, folded norm but a gated one
    /// (fuse-gated-norm's out_proj) or residual yet, the add's
    /// type, used only here) and the other side: the residual r itself, or a `mul` used only here of r (the add's
    /// shape) and a per-channel scale s ([1, C, 1, 1]).
    private func convResidual(_ i: Int, _ op: Operation, _ graph: Graph, _ soleProducer: (ValueID, Int) -> Int?)
        -> (conv: Int, residual: ValueID, scale: ValueID?, mul: Int?)? {
        guard let type = op.type, op.operands.count == 2, op.operands[0] != op.operands[1] else { return nil }
        var definer: [ValueID: Int] = [:]
        for (j, o) in graph.ops.enumerated() { definer[o.result] = j }
        for side in 0..<2 {
            guard let c = soleProducer(op.operands[side], i) else { continue }
            let conv = graph.ops[c]
            guard conv.kind == .conv2d, conv.type == type, (try? conv.attributes.int("groups")) == 1,
                  conv.attributes["activation"] == nil, conv.attributes["norm"] == nil || conv.attributes["norm_gate"] != nil,
                  conv.attributes["residual"] == nil, type.shape.count == 4 else { continue }
            let other = op.operands[1 - side]
            if let m = soleProducer(other, i), graph.ops[m].kind == .mul, graph.ops[m].operands.count == 2 {
                let mul = graph.ops[m]
                let channelScale = [1, type.shape[1], 1, 1]
                for full in 0..<2 where definerShape(mul.operands[full], graph, definer) == type.shape
                    && definerShape(mul.operands[1 - full], graph, definer) == channelScale {
                    return (c, mul.operands[full], mul.operands[1 - full], m)
                }
                continue
            }
            return (c, other, nil, nil)
        }
        return nil
    }

    /// The shape of value `v` (a graph input or an op result).
    private func definerShape(_ v: ValueID, _ graph: Graph, _ definer: [ValueID: Int]) -> [Int]? {
        if let i = definer[v] { return graph.ops[i].type?.shape }
        return graph.inputs.first { $0.id == v }?.type.shape
    }
}
