/// Rewrites block ops (transformer_block, ssm_block, downsample, upsample) into the primitive ops they stand for.
///
/// Name: `expand-blocks`. Requires: a typed graph (run `infer-shapes` first). Produces: primitive ops only.
///
/// Algorithm:
///  1. Rebuild the graph op by op, copying primitive ops and weights unchanged.
///  2. Replace each `downsample` / `upsample` with its 3x3 conv and pixel (un)shuffle (ARCHITECTURES.md 1.5).
///  3. Replace each `transformer_block` with LayerNorm, MDTA and GDFN as written in ARCHITECTURES.md 1.1-1.4:
///     heads-major channel split, L2 norms over pixels, q·kᵀ, temperature, softmax, attn·v, residual adds.
///  4. Replace each `ssm_block` with the VSSBlock of ARCHITECTURES.md 2.1-2.3, in NCHW: the four scan directions
///     are built with reshape / transpose / flip, x_proj and dt_proj are batched matmuls over the directions,
///     one `selective_scan` covers all K·E channels (B and C grouped by direction), and the merge undoes the
///     flips and transposes.
///  5. Scopes of the new ops extend the block's scope with the PyTorch module name (`.attn.qkv`).
import HybridIR

public struct ExpandBlocks: Pass {
    public static let name = "expand-blocks"
    public static let summary = "expand block ops (transformer, SSM, down/upsample) into primitive ops"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        var b = Builder(name: graph.name)
        var map: [ValueID: ValueID] = [:]
        for input in graph.inputs { map[input.id] = b.input(input.type) }
        var expanded = 0
        for op in graph.ops {
            let operands = op.operands.map { map[$0]! }
            b.scope = op.scope
            switch op.kind {
            case .transformerBlock:
                map[op.result] = try transformer(&b, op, operands)
                expanded += 1
            case .ssmBlock:
                map[op.result] = try ssm(&b, op, operands)
                expanded += 1
            case .downsample, .upsample:
                let conv = try b.add(.conv2d, operands, ["groups": .int(1), "padding": .int(1)], scope: "body.0")
                let shuffle: OpKind = op.kind == .downsample ? .pixelUnshuffle : .pixelShuffle
                map[op.result] = try b.add(shuffle, [conv], ["factor": .int(2)], scope: "body.1")
                expanded += 1
            default:
                guard op.type != nil || op.kind != .weight else {
                    throw HybridError("weight has no type", at: op.label)
                }
                map[op.result] = try b.add(op.kind, operands, op.attributes,
                                           type: op.kind == .weight ? op.type : nil)
            }
        }
        var result = b.graph
        result.outputs = graph.outputs.map { map[$0]! }
        graph = result
        context.record("blocks expanded", expanded)
    }

    /// The block's weight operands by key.
    private func weights(_ op: Operation, _ operands: [ValueID], channels: Int) throws -> [String: ValueID] {
        let params = try BlockParameters.of(op, channels: channels)
        var byKey: [String: ValueID] = [:]
        for (p, v) in zip(params, operands.dropFirst()) { byKey[p.key] = v }
        return byKey
    }

    private func transformer(_ b: inout Builder, _ op: Operation, _ operands: [ValueID]) throws -> ValueID {
        let x = operands[0]
        let s = b.shape(of: x)
        let (c, h, w) = (s[1], s[2], s[3])
        let heads = try op.attributes.int("heads"), hidden = try op.attributes.int("hidden")
        let biasFree = try op.attributes.string("layer_norm") == "BiasFree"
        let p = try weights(op, operands, channels: c)
        let perHead = c / heads

        func norm(_ v: ValueID, _ module: String) throws -> ValueID {
            var args = [v, p["\(module).body.weight"]!]
            if let bias = p["\(module).body.bias"] { args.append(bias) }
            return try b.add(.layerNorm, args, ["axis": .int(1), "eps": .float(1e-5), "centered": .bool(!biasFree)],
                             scope: module)
        }
        func conv(_ v: ValueID, _ module: String, groups: Int = 1, padding: Int = 0) throws -> ValueID {
            var args = [v, p["\(module).weight"]!]
            if let bias = p["\(module).bias"] { args.append(bias) }
            return try b.add(.conv2d, args, ["groups": .int(groups), "padding": .int(padding)], scope: module)
        }

        // MDTA.
        var t = try conv(try norm(x, "norm1"), "attn.qkv")
        t = try conv(t, "attn.qkv_dwconv", groups: 3 * c, padding: 1)
        func head(_ index: Int) throws -> ValueID {
            let part = try b.add(.slice, [t], ["axis": .int(1), "start": .int(index * c), "size": .int(c)], scope: "attn")
            return try b.add(.reshape, [part], ["shape": .ints([1, heads, perHead, h * w])], scope: "attn")
        }
        let l2: Attributes = ["axis": .int(3), "eps": .float(1e-12)]
        let q = try b.add(.l2Normalize, [try head(0)], l2, scope: "attn")
        let k = try b.add(.l2Normalize, [try head(1)], l2, scope: "attn")
        let v = try head(2)
        let kt = try b.add(.transpose, [k], ["perm": .ints([0, 1, 3, 2])], scope: "attn")
        var attn = try b.add(.matmul, [q, kt], scope: "attn")
        let temperature = try b.add(.reshape, [p["attn.temperature"]!], ["shape": .ints([1, heads, 1, 1])], scope: "attn")
        attn = try b.add(.mul, [attn, temperature], scope: "attn")
        attn = try b.add(.softmax, [attn], ["axis": .int(3)], scope: "attn")
        var o = try b.add(.matmul, [attn, v], scope: "attn")
        o = try b.add(.reshape, [o], ["shape": .ints([1, c, h, w])], scope: "attn")
        o = try conv(o, "attn.project_out")
        let x1 = try b.add(.add, [x, o])

        // GDFN.
        var u = try conv(try norm(x1, "norm2"), "ffn.project_in")
        u = try conv(u, "ffn.dwconv", groups: 2 * hidden, padding: 1)
        let x1Half = try b.add(.slice, [u], ["axis": .int(1), "start": .int(0), "size": .int(hidden)], scope: "ffn")
        let x2Half = try b.add(.slice, [u], ["axis": .int(1), "start": .int(hidden), "size": .int(hidden)], scope: "ffn")
        let gated = try b.add(.mul, [try b.add(.gelu, [x1Half], scope: "ffn"), x2Half], scope: "ffn")
        let f = try conv(gated, "ffn.project_out")
        return try b.add(.add, [x1, f])
    }

    private func ssm(_ b: inout Builder, _ op: Operation, _ operands: [ValueID]) throws -> ValueID {
        let x = operands[0]
        let s = b.shape(of: x)
        let c = s[1]
        let e = try op.attributes.int("inner")
        let p = try weights(op, operands, channels: c)

        func reshape(_ v: ValueID, _ shape: [Int], _ scope: String) throws -> ValueID {
            try b.add(.reshape, [v], ["shape": .ints(shape)], scope: scope)
        }
        func layerNorm(_ v: ValueID, _ module: String) throws -> ValueID {
            try b.add(.layerNorm, [v, p["\(module).weight"]!, p["\(module).bias"]!],
                      ["axis": .int(1), "eps": .float(1e-5), "centered": .bool(true)], scope: module)
        }
        func conv(_ v: ValueID, _ module: String, padding: Int, groups: Int = 1, bias: Bool = true) throws -> ValueID {
            var args = [v, p["\(module).weight"]!]
            if bias { args.append(p["\(module).bias"]!) }
            return try b.add(.conv2d, args, ["groups": .int(groups), "padding": .int(padding)], scope: module)
        }
        /// A Linear layer over channels, as a 1x1 convolution of its (out, in) weight.
        func linear(_ v: ValueID, _ module: String) throws -> ValueID {
            let weight = p["\(module).weight"]!
            let ws = b.shape(of: weight)
            let w4 = try reshape(weight, [ws[0], ws[1], 1, 1], module)
            return try b.add(.conv2d, [v, w4], ["groups": .int(1), "padding": .int(0)], scope: module)
        }
        func slice(_ v: ValueID, axis: Int, _ start: Int, _ size: Int, _ scope: String) throws -> ValueID {
            try b.add(.slice, [v], ["axis": .int(axis), "start": .int(start), "size": .int(size)], scope: scope)
        }
        let sa = "self_attention"

        // SS2D: in_proj, split, depthwise conv + SiLU.
        let xz = try linear(try layerNorm(x, "ln_1"), "\(sa).in_proj")
        var xs = try slice(xz, axis: 1, 0, e, sa)
        let z = try slice(xz, axis: 1, e, e, sa)
        xs = try b.add(.silu, [try conv(xs, "\(sa).conv2d", padding: 1, groups: e)], scope: sa)

        var y = try Self.ss2dDirections(&b, xs: xs, weights: p, scope: sa)

        // out_norm, gate by silu(z), out_proj; residual with skip_scale.
        y = try layerNorm(y, "\(sa).out_norm")
        y = try b.add(.mul, [y, try b.add(.silu, [z], scope: sa)], scope: sa)
        let attended = try linear(y, "\(sa).out_proj")
        let skip1 = try reshape(p["skip_scale"]!, [1, c, 1, 1], "")
        let t = try b.add(.add, [try b.add(.mul, [x, skip1]), attended])

        // CAB: conv3x3, GELU, conv3x3, channel attention; residual with skip_scale2.
        var cab = try conv(try layerNorm(t, "ln_2"), "conv_blk.cab.0", padding: 1)
        cab = try b.add(.gelu, [cab], scope: "conv_blk.cab.1")
        cab = try conv(cab, "conv_blk.cab.2", padding: 1)
        let ca = "conv_blk.cab.3.attention"
        var weights = try b.add(.reduceMean, [cab], ["axes": .ints([2, 3])], scope: "\(ca).0")
        weights = try conv(weights, "\(ca).1", padding: 0)
        weights = try b.add(.relu, [weights], scope: "\(ca).2")
        weights = try conv(weights, "\(ca).3", padding: 0)
        weights = try b.add(.sigmoid, [weights], scope: "\(ca).4")
        cab = try b.add(.mul, [cab, weights], scope: "conv_blk.cab.3")
        let skip2 = try reshape(p["skip_scale2"]!, [1, c, 1, 1], "")
        return try b.add(.add, [try b.add(.mul, [t, skip2]), cab])
    }

    /// SS2D steps 3-7 (ARCHITECTURES.md 2.1) from xs (1, E, H, W), as primitive ops: the four scan orders stacked
    /// (1, K, E, L) by reshape / transpose / flip, x_proj and dt_proj as batched matmuls, one `selective_scan` over
    /// all K·E channels, and the merge y0 + rev(y2) + T(y1) + T(rev(y3)). `weights` holds the SS2D parameters by
    /// their keys relative to the block (`<scope>.x_proj_weight`, ...); returns y (1, E, H, W).
    public static func ss2dDirections(_ b: inout Builder, xs: ValueID, weights p: [String: ValueID],
                                      scope sa: String) throws -> ValueID {
        let s = b.shape(of: xs), xp = b.shape(of: p["\(sa).x_proj_weight"]!), an = b.shape(of: p["\(sa).A_logs"]!)
        let (e, h, w, k) = (s[1], s[2], s[3], 4)
        let l = h * w, n = an[1], r = xp[1] - 2 * an[1]
        func reshape(_ v: ValueID, _ shape: [Int], _ scope: String) throws -> ValueID {
            try b.add(.reshape, [v], ["shape": .ints(shape)], scope: scope)
        }
        func slice(_ v: ValueID, axis: Int, _ start: Int, _ size: Int, _ scope: String) throws -> ValueID {
            try b.add(.slice, [v], ["axis": .int(axis), "start": .int(start), "size": .int(size)], scope: scope)
        }
        // The four scan orders: row-major, column-major, and both reversed, stacked as (1, K, E, L).
        let rowMajor = try reshape(xs, [1, e, l], sa)
        let colMajor = try reshape(try b.add(.transpose, [xs], ["perm": .ints([0, 1, 3, 2])], scope: sa), [1, e, l], sa)
        let orders = [rowMajor, colMajor,
                      try b.add(.flip, [rowMajor], ["axis": .int(2)], scope: sa),
                      try b.add(.flip, [colMajor], ["axis": .int(2)], scope: sa)]
        let stacked = try b.add(.concat, try orders.map { try reshape($0, [1, 1, e, l], sa) }, ["axis": .int(1)], scope: sa)

        // x_proj per direction, split into dt (R), B (N), C (N); dt_proj per direction.
        let xDbl = try b.add(.matmul, [p["\(sa).x_proj_weight"]!, stacked], scope: "\(sa).x_proj")
        let dtRaw = try slice(xDbl, axis: 2, 0, r, sa)
        let bs = try slice(xDbl, axis: 2, r, n, sa)
        let cs = try slice(xDbl, axis: 2, r + n, n, sa)
        let dt = try b.add(.matmul, [p["\(sa).dt_projs_weight"]!, dtRaw], scope: "\(sa).dt_projs")

        // The selective scan over all K·E channels, A = −exp(A_logs).
        let aMatrix = try b.add(.neg, [try b.add(.exp, [p["\(sa).A_logs"]!], scope: sa)], scope: sa)
        let deltaBias = try reshape(p["\(sa).dt_projs_bias"]!, [k * e], sa)
        let scanned = try b.add(.selectiveScan,
                                [try reshape(stacked, [1, k * e, l], sa), try reshape(dt, [1, k * e, l], sa),
                                 aMatrix, bs, cs, p["\(sa).Ds"]!, deltaBias],
                                ["has_D": .bool(true), "has_z": .bool(false), "has_delta_bias": .bool(true),
                                 "delta_softplus": .bool(true)], scope: "\(sa).selective_scan")
        let ys = try reshape(scanned, [1, k, e, l], sa)

        // Merge: y0 + rev(y2) + T(y1) + T(rev(y3)), back in row-major (1, E, H, W).
        func direction(_ i: Int, reversed: Bool, transposed: Bool) throws -> ValueID {
            var y = try reshape(try slice(ys, axis: 1, i, 1, sa), [1, e, l], sa)
            if reversed { y = try b.add(.flip, [y], ["axis": .int(2)], scope: sa) }
            if transposed {
                y = try reshape(y, [1, e, w, h], sa)
                return try b.add(.transpose, [y], ["perm": .ints([0, 1, 3, 2])], scope: sa)
            }
            return try reshape(y, [1, e, h, w], sa)
        }
        let y = try b.add(.add, [try direction(0, reversed: false, transposed: false),
                                 try direction(2, reversed: true, transposed: false)], scope: sa)
        let y1 = try b.add(.add, [y, try direction(1, reversed: false, transposed: true)], scope: sa)
        return try b.add(.add, [y1, try direction(3, reversed: true, transposed: true)], scope: sa)

    }
}
