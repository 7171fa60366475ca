/// The weight operands of block ops, in operand order, with the PyTorch key suffixes and shapes checkpoints use.
public struct BlockParameter: Equatable {
    /// Key relative to the block, e.g. `attn.qkv.weight`.
    public var key: String
    public var shape: [Int]
}

public enum BlockParameters {
    /// Restormer TransformerBlock (ARCHITECTURES.md 1.4): operands after `x`.
    public static func transformer(channels c: Int, heads: Int, hidden: Int, bias: Bool,
                                   biasFree: Bool) -> [BlockParameter] {
        var p: [BlockParameter] = []
        func add(_ key: String, _ shape: [Int]) { p.append(BlockParameter(key: key, shape: shape)) }
        add("norm1.body.weight", [c])
        if !biasFree { add("norm1.body.bias", [c]) }
        add("attn.temperature", [heads, 1, 1])
        add("attn.qkv.weight", [3 * c, c, 1, 1])
        if bias { add("attn.qkv.bias", [3 * c]) }
        add("attn.qkv_dwconv.weight", [3 * c, 1, 3, 3])
        if bias { add("attn.qkv_dwconv.bias", [3 * c]) }
        add("attn.project_out.weight", [c, c, 1, 1])
        if bias { add("attn.project_out.bias", [c]) }
        add("norm2.body.weight", [c])
        if !biasFree { add("norm2.body.bias", [c]) }
        add("ffn.project_in.weight", [2 * hidden, c, 1, 1])
        if bias { add("ffn.project_in.bias", [2 * hidden]) }
        add("ffn.dwconv.weight", [2 * hidden, 1, 3, 3])
        if bias { add("ffn.dwconv.bias", [2 * hidden]) }
        add("ffn.project_out.weight", [c, hidden, 1, 1])
        if bias { add("ffn.project_out.bias", [c]) }
        return p
    }

    /// MambaIR VSSBlock (ARCHITECTURES.md 2.1-2.3) with K = 4 scan directions: operands after `x`.
    public static func ssm(channels c: Int, inner e: Int, dState n: Int, dtRank r: Int,
                           compressRatio: Int, squeezeFactor: Int) -> [BlockParameter] {
        let k = 4
        let squeezed = c / squeezeFactor
        let compressed = c / compressRatio
        return [
            BlockParameter(key: "ln_1.weight", shape: [c]),
            BlockParameter(key: "ln_1.bias", shape: [c]),
            BlockParameter(key: "self_attention.in_proj.weight", shape: [2 * e, c]),
            BlockParameter(key: "self_attention.conv2d.weight", shape: [e, 1, 3, 3]),
            BlockParameter(key: "self_attention.conv2d.bias", shape: [e]),
            BlockParameter(key: "self_attention.x_proj_weight", shape: [k, r + 2 * n, e]),
            BlockParameter(key: "self_attention.dt_projs_weight", shape: [k, e, r]),
            BlockParameter(key: "self_attention.dt_projs_bias", shape: [k, e]),
            BlockParameter(key: "self_attention.A_logs", shape: [k * e, n]),
            BlockParameter(key: "self_attention.Ds", shape: [k * e]),
            BlockParameter(key: "self_attention.out_norm.weight", shape: [e]),
            BlockParameter(key: "self_attention.out_norm.bias", shape: [e]),
            BlockParameter(key: "self_attention.out_proj.weight", shape: [c, e]),
            BlockParameter(key: "skip_scale", shape: [c]),
            BlockParameter(key: "conv_blk.cab.0.weight", shape: [compressed, c, 3, 3]),
            BlockParameter(key: "conv_blk.cab.0.bias", shape: [compressed]),
            BlockParameter(key: "conv_blk.cab.2.weight", shape: [c, compressed, 3, 3]),
            BlockParameter(key: "conv_blk.cab.2.bias", shape: [c]),
            BlockParameter(key: "conv_blk.cab.3.attention.1.weight", shape: [squeezed, c, 1, 1]),
            BlockParameter(key: "conv_blk.cab.3.attention.1.bias", shape: [squeezed]),
            BlockParameter(key: "conv_blk.cab.3.attention.3.weight", shape: [c, squeezed, 1, 1]),
            BlockParameter(key: "conv_blk.cab.3.attention.3.bias", shape: [c]),
            BlockParameter(key: "ln_2.weight", shape: [c]),
            BlockParameter(key: "ln_2.bias", shape: [c]),
            BlockParameter(key: "skip_scale2", shape: [c]),
        ]
    }

    /// The parameter list of a block op from its attributes and input channels.
    public static func of(_ op: Operation, channels c: Int) throws -> [BlockParameter] {
        let a = op.attributes
        switch op.kind {
        case .transformerBlock:
            let norm = try a.string("layer_norm")
            guard norm == "WithBias" || norm == "BiasFree" else {
                throw HybridError("layer_norm must be \"WithBias\" or \"BiasFree\", not \"\(norm)\"")
            }
            return transformer(channels: c, heads: try a.int("heads"), hidden: try a.int("hidden"),
                               bias: try a.bool("bias"), biasFree: norm == "BiasFree")
        case .ssmBlock:
            return ssm(channels: c, inner: try a.int("inner"), dState: try a.int("d_state"),
                       dtRank: try a.int("dt_rank"), compressRatio: try a.int("compress_ratio"),
                       squeezeFactor: try a.int("squeeze_factor"))
        default:
            return []
        }
    }
}
