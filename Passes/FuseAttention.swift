/// Replaces each Restormer MDTA (ARCHITECTURES.md 1.2), as `expand-blocks` writes it, with one `fused_attention` op.
///
/// Name: `fuse-attention`. Requires: a typed graph of primitive ops (after `expand-blocks`, `infer-shapes`).
/// Produces: `fused_attention` ops whose `fuses` attribute lists the primitive ops they replaced.
///
/// Algorithm:
///  1. Count the uses of every value (graph outputs count as uses).
///  2. For each 1x1 `conv2d` (the candidate `project_out`), walk its operands backwards and match the exact chain
///     reshape ← matmul(attn, v) ← softmax(axis 3) ← mul(·, temperature) ← matmul(q, kᵀ) ← transpose(k, [0,1,3,2])
///     ← l2_normalize(axis 3) of q and k ← reshape to (1, heads, C/heads, H·W) ← slice(axis 1) at 0, C, 2C
///     ← depthwise 3x3 conv (3C groups, padding 1) ← qkv 1x1 conv; every attribute, weight shape and bias is
///     checked, and every intermediate must have no user outside the chain (the depthwise output exactly its three
///     slices) and must not be a graph output. The qkv conv may carry a layer norm folded by `fold-layer-norm`
///     (and then, WithBias, a bias of its own); the fused op takes over its `norm` and `norm_eps`.
///  3. Replace the match by one `fused_attention` op in the place of `project_out`, keeping its result id, with
///     operands x, the conv weights and biases, and the temperature value; delete the matched ops.
///  4. Record the blocks fused and the bytes the fused op no longer writes: the unfused ops' results (reshapes
///     are views and write nothing) against the fused op's v scratch and output (its q and k never leave
///     per-thread row buffers: FusedAttentionKernel.swift); note the same per MDTA with its scope.
import HybridIR

public struct FuseAttention: Pass {
    public static let name = "fuse-attention"
    public static let summary = "fuse Restormer MDTA (qkv convs, L2 norms, q·kᵀ, softmax, attn·v, project_out) into one op"

    public init() {}

    /// The ops of one matched MDTA, in graph order of the pattern, and the operands of the fused op.
    struct Match {
        var ops: [ValueID]
        var operands: [ValueID]
        var heads: Int
        var bias: Bool
        var eps: Double
        /// The layer norm folded into qkv, carried into the fused op's qkv GEMM.
        var norm: FoldedNorm?
    }

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        var uses: [ValueID: Int] = [:]
        for op in graph.ops { for v in op.operands { uses[v, default: 0] += 1 } }
        for v in graph.outputs { uses[v, default: 0] += 1 }
        let index = graph.definers()
        let types = graph.valueTypes()

        var removed = Set<ValueID>()
        var replacement: [ValueID: Operation] = [:]
        for op in graph.ops where op.kind == .conv2d && !removed.contains(op.result) {
            guard let m = match(op, graph, index, uses, types) else { continue }
            let chain = m.ops.map { graph.ops[index[$0]!] }
            var attributes: Attributes = ["heads": .int(m.heads), "bias": .bool(m.bias), "eps": .float(m.eps),
                                          "fuses": .string(((m.norm == nil ? [] : ["layer_norm"]) + chain.map(\.kind.name)).joined(separator: ","))]
            for (k, v) in m.norm?.attributes ?? [:] { attributes[k] = v }
            var fused = Operation(kind: .fusedAttention, operands: m.operands, attributes: attributes,
                                  result: op.result, type: op.type,
                                  scope: commonScope(chain.map(\.scope)))
            fused.type = try ShapeRules.resultType(of: fused, operands: fused.operands.map { types[$0]! })
            replacement[op.result] = fused
            for v in m.ops where v != op.result { removed.insert(v) }

            let written = chain.filter { $0.kind != .reshape }.map { $0.type!.byteSize }.reduce(0, +)
            let fusedWritten = 2 * op.type!.byteSize  // v scratch (C·P) and the output (C·P)
            context.record("attention blocks fused", 1)
            context.record("bytes written by unfused MDTA", written)
            context.record("bytes written by fused MDTA", fusedWritten)
            context.record("bytes no longer written", written - fusedWritten)
            context.note("MDTA at \(fused.scope.isEmpty ? "%\(op.result)" : fused.scope): bytes written unfused \(written), fused \(fusedWritten) (v and the output)")
        }
        graph.ops = graph.ops.compactMap { op in
            if removed.contains(op.result) { return nil }
            return replacement[op.result] ?? op
        }
    }

    /// The longest common dotted prefix of the scopes (`encoder_level1.0.attn`).
    private func commonScope(_ scopes: [String]) -> String {
        let parts = scopes.map { $0.split(separator: ".").map(String.init) }
        guard var prefix = parts.first else { return "" }
        for p in parts.dropFirst() {
            var n = 0
            while n < prefix.count && n < p.count && prefix[n] == p[n] { n += 1 }
            prefix = Array(prefix.prefix(n))
        }
        return prefix.joined(separator: ".")
    }

    private func match(_ projectOut: Operation, _ graph: Graph, _ index: [ValueID: Int], _ uses: [ValueID: Int],
                       _ types: [ValueID: TensorType]) -> Match? {
        var chain: [ValueID] = []
        /// The op defining `v` if it has `kind` and its value is used only once (by the chain).
        func producer(_ v: ValueID, _ kind: OpKind, uses expected: Int = 1) -> Operation? {
            guard let i = index[v], graph.ops[i].kind == kind, uses[v] == expected, !graph.outputs.contains(v) else { return nil }
            chain.append(v)
            return graph.ops[i]
        }
        func int(_ op: Operation, _ key: String) -> Int? { try? op.attributes.int(key) }
        func shape(_ v: ValueID) -> [Int]? { types[v]?.shape }
        /// A convolution with the given groups, kernel size and padding, stride 1.
        func isConv(_ op: Operation, groups: Int, kernel: Int, padding: Int) -> Bool {
            guard let w = shape(op.operands[1]) else { return false }
            return int(op, "groups") == groups && int(op, "padding") == padding
                && (try? op.attributes.int("stride", default: 1)) == 1 && w[2] == kernel && w[3] == kernel
        }

        // project_out: 1x1 over (1, C, H, W).
        guard let out = shape(projectOut.result), out.count == 4, out[0] == 1 else { return nil }
        let (c, h, w) = (out[1], out[2], out[3])
        guard isConv(projectOut, groups: 1, kernel: 1, padding: 0), shape(projectOut.operands[1]) == [c, c, 1, 1] else { return nil }
        chain.append(projectOut.result)
        guard let merged = producer(projectOut.operands[0], .reshape),
              let attnV = producer(merged.operands[0], .matmul),
              let soft = producer(attnV.operands[0], .softmax), int(soft, "axis") == 3,
              let scaled = producer(soft.operands[0], .mul),
              let gram = producer(scaled.operands[0], .matmul),
              let qn = producer(gram.operands[0], .l2Normalize), int(qn, "axis") == 3,
              let kt = producer(gram.operands[1], .transpose), (try? kt.attributes.ints("perm")) == [0, 1, 3, 2],
              let kn = producer(kt.operands[0], .l2Normalize), int(kn, "axis") == 3,
              let eps = try? qn.attributes.float("eps"), (try? kn.attributes.float("eps")) == eps,
              let qr = producer(qn.operands[0], .reshape), let kr = producer(kn.operands[0], .reshape),
              let vr = producer(attnV.operands[1], .reshape),
              let q = producer(qr.operands[0], .slice), let k = producer(kr.operands[0], .slice),
              let v = producer(vr.operands[0], .slice),
              q.operands[0] == k.operands[0], q.operands[0] == v.operands[0],
              let dw = producer(q.operands[0], .conv2d, uses: 3),
              let qkv = producer(dw.operands[0], .conv2d)
        else { return nil }

        // Heads from the reshape; the three slices are q, k, v in order along channels.
        guard let heads4 = try? qr.attributes.ints("shape"), heads4.count == 4 else { return nil }
        let heads = heads4[1]
        guard heads > 0, c % heads == 0, heads4 == [1, heads, c / heads, h * w] else { return nil }
        for r in [kr, vr] where (try? r.attributes.ints("shape")) != heads4 { return nil }
        for (i, s) in [q, k, v].enumerated() {
            guard int(s, "axis") == 1, int(s, "start") == i * c, int(s, "size") == c else { return nil }
        }
        guard (try? merged.attributes.ints("shape")) == [1, c, h, w] else { return nil }

        // Temperature: one value per head, broadcast as (1, heads, 1, 1).
        let temperature = scaled.operands[1]
        guard let ts = shape(temperature), ts.reduce(1, *) == heads,
              (try? ShapeRules.broadcast([1, heads, c / heads, c / heads], ts)) == [1, heads, c / heads, c / heads],
              heads == 1 || (ts.count >= 3 && ts[ts.count - 1] == 1 && ts[ts.count - 2] == 1)
        else { return nil }

        // The two convolutions and the biases: all three or none.
        guard isConv(dw, groups: 3 * c, kernel: 3, padding: 1), shape(dw.operands[1]) == [3 * c, 1, 3, 3],
              isConv(qkv, groups: 1, kernel: 1, padding: 0), shape(qkv.operands[1]) == [3 * c, c, 1, 1],
              shape(qkv.operands[0]) == [1, c, h, w]
        else { return nil }
        // A WithBias layer norm folded into qkv (fold-layer-norm) gives qkv a bias of its own, b + W·β.
        guard let norm = Optional(try? FoldedNorm.of(qkv.attributes)), (norm != nil) == (qkv.attributes["norm"] != nil),
              norm?.affine != true else { return nil }
        let biased = [dw, projectOut].map { $0.operands.count == 3 }
        guard biased[0] == biased[1] else { return nil }
        let bias = biased[0]
        guard (qkv.operands.count == 3) == (bias || norm?.centered == true) else { return nil }

        var operands = [qkv.operands[0], qkv.operands[1]]
        if qkv.operands.count == 3 { operands.append(qkv.operands[2]) }
        operands.append(dw.operands[1])
        if bias { operands.append(dw.operands[2]) }
        operands.append(temperature)
        operands.append(projectOut.operands[1])
        if bias { operands.append(projectOut.operands[2]) }
        // Graph order, so that `fuses` reads as the primitive ops did.
        let ordered = chain.sorted { index[$0]! < index[$1]! }
        return Match(ops: ordered, operands: operands, heads: heads, bias: bias, eps: eps, norm: norm)
    }
}
