/// Every op of the graph IR, grouped by level: graph values, block ops (expanded by a pass), primitive ops, and
/// fused ops (created by passes, each naming the primitive ops it replaced in its `fuses` attribute).
public enum OpKind: String, CaseIterable {
    // Graph values.
    case weight

    // Block ops: what the frontend emits; `expand-blocks` turns them into primitive ops.
    case transformerBlock = "transformer_block"
    case ssmBlock = "ssm_block"
    case downsample
    case upsample

    // Primitive ops: what the interpreter executes.
    case conv2d
    case matmul
    case layerNorm = "layer_norm"
    case softmax
    case l2Normalize = "l2_normalize"
    case gelu, silu, sigmoid, softplus, relu, exp, neg
    case add, sub, mul, div
    case concat
    case slice
    case reshape
    case transpose
    case flip
    case pixelShuffle = "pixel_shuffle"
    case pixelUnshuffle = "pixel_unshuffle"
    case reduceMean = "reduce_mean"
    case selectiveScan = "selective_scan"
    /// The selective scan cut into chunks of `chunk` steps (ARCHITECTURES.md 3.1), in the `form` "recurrent"
    /// (state carried from chunk to chunk) or "carry" (independent local chunk scans joined by a carry pass).
    case chunkedSelectiveScan = "chunked_selective_scan"

    // Fused ops: created by passes; each names the primitive ops it replaced in its `fuses` attribute.
    case fusedAttention = "fused_attention"
    // Fused ops: what optimisation passes create; the interpreter and the code generator run them directly.
    case fusedFeedForward = "fused_feed_forward"
    /// A 1x1 conv (with an optional folded layer norm) → depthwise 3x3 → activation, row-tiled with the projection
    /// in per-thread scratch (SS2D's in_proj x half and its conv2d + SiLU; the machinery of fused_feed_forward).
    case fusedPointwiseDepthwise = "fused_pointwise_depthwise"
    /// SS2D's four-direction selective scan (ARCHITECTURES.md 2.1 steps 3-7) read in place through index maps:
    /// dt_proj and softplus inside the scan, the directions summed into one (1, E, H, W) output.
    case ss2dScan = "ss2d_scan"

    public enum Level { case value, block, primitive, fused }

    public var level: Level {
        switch self {
        case .weight: return .value
        case .transformerBlock, .ssmBlock, .downsample, .upsample: return .block
        case .fusedAttention: return .fused
        case .fusedFeedForward, .fusedPointwiseDepthwise, .ss2dScan: return .fused
        default: return .primitive
        }
    }

    public var isUnaryElementwise: Bool {
        switch self {
        case .gelu, .silu, .sigmoid, .softplus, .relu, .exp, .neg: return true
        default: return false
        }
    }

    public var isBinaryElementwise: Bool {
        switch self {
        case .add, .sub, .mul, .div: return true
        default: return false
        }
    }

    /// The op's name in the text IR.
    public var name: String { rawValue }
}
