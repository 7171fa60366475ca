/// Every kernel the code generator emits, compiled (-Wall -Werror) and run against the interpreter with a per-op
/// tolerance, at the odd sizes of the real networks: on this host, on this host under ASan and UBSan, and
/// cross-compiled for aarch64 under qemu.
///
/// All cases go into one graph (each op reads its own seeded operands and its flattened result is concatenated
/// into the output), so one build per target covers every op; each op's slice of the output is checked on its own.
import Codegen
import Driver
import Foundation
import Frontend
import HybridIR
import XCTest

final class KernelTests: XCTestCase {
    struct Case {
        var name: String
        var kind: OpKind
        var shapes: [[Int]]
        var attributes: Attributes = [:]
        /// Range of each operand's seeded values (default [-1, 1]).
        var ranges: [Int: ClosedRange<Double>] = [:]
        var tolerance: Float = 1e-5
        /// Operands computed at run time (the seeded weight negated by a kernel), not constants of the plan.
        var computed: Set<Int> = []
    }

    static let scanAttributes: Attributes = ["has_D": .bool(true), "has_z": .bool(false), "has_delta_bias": .bool(true),
                                             "delta_softplus": .bool(true)]

    static func feedForward(hidden: Int, bias: Bool, rowTile: Int = 8) -> Attributes {
        ["hidden": .int(hidden), "bias": .bool(bias), "row_tile": .int(rowTile),
         "fuses": .string("conv2d+conv2d+slice+slice+gelu+mul+conv2d")]
    }

    static func pointwiseDepthwise(hidden: Int, inBias: Bool, bias: Bool, rowTile: Int = 8,
                                   activation: String? = "silu") -> Attributes {
        var a: Attributes = ["hidden": .int(hidden), "in_bias": .bool(inBias), "bias": .bool(bias), "row_tile": .int(rowTile),
                             "fuses": .string("conv2d+conv2d" + (activation.map { "+" + $0 } ?? ""))]
        if let activation { a["activation"] = .string(activation) }
        return a
    }

    /// The ops and sizes the bundled networks use, plus edge cases of each kernel.
    static let cases: [Case] = [
        // conv2d 1x1 (pointwise GEMM): GDFN project_in 48 -> 2*127, project_out 127 -> 48, CAB squeeze to 1 and 3.
        Case(name: "pointwise 48->254 7x9", kind: .conv2d, shapes: [[1, 48, 7, 9], [254, 48, 1, 1]],
             attributes: ["groups": .int(1), "padding": .int(0)]),
        Case(name: "pointwise 127->48 bias 5x40", kind: .conv2d, shapes: [[1, 127, 5, 40], [48, 127, 1, 1], [48]],
             attributes: ["groups": .int(1), "padding": .int(0)]),
        Case(name: "pointwise CA squeeze 48->1", kind: .conv2d, shapes: [[1, 48, 1, 1], [1, 48, 1, 1], [1]],
             attributes: ["groups": .int(1), "padding": .int(0)]),
        Case(name: "pointwise CA excite 3->96", kind: .conv2d, shapes: [[1, 3, 1, 1], [96, 3, 1, 1], [96]],
             attributes: ["groups": .int(1), "padding": .int(0)]),
        // Depthwise 3x3: GDFN dwconv at 2*127 and 2*255 channels, SS2D conv2d with bias.
        Case(name: "depthwise 254 9x7", kind: .conv2d, shapes: [[1, 254, 9, 7], [254, 1, 3, 3]],
             attributes: ["groups": .int(254), "padding": .int(1)]),
        Case(name: "depthwise 510 bias 3x40", kind: .conv2d, shapes: [[1, 510, 3, 40], [510, 1, 3, 3], [510]],
             attributes: ["groups": .int(510), "padding": .int(1)]),
        // Dense 3x3: patch embed, downsample, CAB (C -> C/3 -> C), output.
        Case(name: "dense 3->48 11x13", kind: .conv2d, shapes: [[1, 3, 11, 13], [48, 3, 3, 3]],
             attributes: ["groups": .int(1), "padding": .int(1)]),
        Case(name: "dense CAB 96->32 bias 8x40", kind: .conv2d, shapes: [[1, 96, 8, 40], [32, 96, 3, 3], [32]],
             attributes: ["groups": .int(1), "padding": .int(1)]),
        Case(name: "dense 96->3 5x6", kind: .conv2d, shapes: [[1, 96, 5, 6], [3, 96, 3, 3]],
             attributes: ["groups": .int(1), "padding": .int(1)]),
        // Micro-kernel tails: K blocks (K > KC on every target), channels not a multiple of MR, pixels over several
        // NC panels and not a multiple of NR, two images; implicit GEMM with stride 2, odd sizes and no padding.
        Case(name: "pointwise K-blocked 700->13 bias 3x37", kind: .conv2d, shapes: [[1, 700, 3, 37], [13, 700, 1, 1], [13]],
             attributes: ["groups": .int(1), "padding": .int(0)]),
        Case(name: "pointwise 2 images 20->9 23x29", kind: .conv2d, shapes: [[2, 20, 23, 29], [9, 20, 1, 1]],
             attributes: ["groups": .int(1), "padding": .int(0)]),
        Case(name: "dense strided 5->7 s2 bias 9x11", kind: .conv2d, shapes: [[1, 5, 9, 11], [7, 5, 3, 3], [7]],
             attributes: ["groups": .int(1), "padding": .int(1), "stride": .int(2)]),
        Case(name: "dense 2 images 4->11 s2 4x4 unpadded 13x10", kind: .conv2d, shapes: [[2, 4, 13, 10], [11, 4, 4, 4]],
             attributes: ["groups": .int(1), "padding": .int(0), "stride": .int(2)]),
        Case(name: "dense 1x1 padded 6->5 3x7", kind: .conv2d, shapes: [[1, 6, 3, 7], [5, 6, 1, 1], [5]],
             attributes: ["groups": .int(1), "padding": .int(1)]),
        // Vector packing of stride-1 dense convs (runs longer than a vector, overlapping last vectors, slices split
        // inside a row, rows narrower than a vector), padding 2 with a 5x5 kernel, stride 2 next to it, Cout below
        // every vector width (the output conv, with its residual), and depthwise rows whose interior is not a
        // whole number of vectors (the last vector overlaps) or is exactly one vector.
        Case(name: "dense odd wide 5->6 bias 4x53", kind: .conv2d, shapes: [[1, 5, 4, 53], [6, 5, 3, 3], [6]],
             attributes: ["groups": .int(1), "padding": .int(1)]),
        Case(name: "dense 5x5 pad 2 4->7 6x37", kind: .conv2d, shapes: [[1, 4, 6, 37], [7, 4, 5, 5], [7]],
             attributes: ["groups": .int(1), "padding": .int(2)]),
        Case(name: "dense 5x5 pad 2 s2 4->7 7x37", kind: .conv2d, shapes: [[1, 4, 7, 37], [7, 4, 5, 5]],
             attributes: ["groups": .int(1), "padding": .int(2), "stride": .int(2)]),
        Case(name: "dense narrow 3->2 2 images 5x3", kind: .conv2d, shapes: [[2, 3, 5, 3], [2, 3, 3, 3], [2]],
             attributes: ["groups": .int(1), "padding": .int(1)]),
        Case(name: "dense output residual 20->3 bias 6x70", kind: .conv2d,
             shapes: [[1, 20, 6, 70], [3, 20, 3, 3], [3], [1, 3, 6, 70]],
             attributes: ["groups": .int(1), "padding": .int(1), "residual": .bool(true)], tolerance: 1e-4),
        Case(name: "depthwise silu 24 bias 5x37", kind: .conv2d, shapes: [[1, 24, 5, 37], [24, 1, 3, 3], [24]],
             attributes: ["groups": .int(24), "padding": .int(1), "activation": .string("silu")], ranges: [0: -4...4], tolerance: 1e-4),
        Case(name: "depthwise 8 wide 3x100", kind: .conv2d, shapes: [[1, 8, 3, 100], [8, 1, 3, 3]],
             attributes: ["groups": .int(8), "padding": .int(1)]),
        Case(name: "depthwise silu 6 bias 4x18", kind: .conv2d, shapes: [[1, 6, 4, 18], [6, 1, 3, 3], [6]],
             attributes: ["groups": .int(6), "padding": .int(1), "activation": .string("silu")], ranges: [0: -4...4], tolerance: 1e-4),
        Case(name: "grouped strided 8->6 g2 s2", kind: .conv2d, shapes: [[1, 8, 9, 11], [6, 4, 3, 3], [6]],
             attributes: ["groups": .int(2), "padding": .int(1), "stride": .int(2)]),
        // matmul: x_proj (rows R+2N = 11), dt_proj, q·kᵀ and attn·v of MDTA.
        Case(name: "x_proj 4x11x40", kind: .matmul, shapes: [[4, 11, 40], [1, 4, 40, 37]]),
        Case(name: "dt_proj 4x40x3", kind: .matmul, shapes: [[4, 40, 3], [1, 4, 3, 37]]),
        Case(name: "x_proj token-major (transpose_a) 13x35 -> 35x36", kind: .matmul, shapes: [[13, 35], [13, 36]],
             attributes: ["transpose_a": .bool(true)]),
        Case(name: "q k^T", kind: .matmul, shapes: [[1, 2, 24, 300], [1, 2, 300, 24]], tolerance: 1e-4),
        Case(name: "attn v", kind: .matmul, shapes: [[1, 2, 24, 24], [1, 2, 24, 63]]),
        // Norms and reductions.
        Case(name: "layer_norm WithBias 48", kind: .layerNorm, shapes: [[1, 48, 5, 7], [48], [48]],
             attributes: ["axis": .int(1), "eps": .float(1e-5), "centered": .bool(true)],
             ranges: [0: 2...6], tolerance: 1e-4),
        Case(name: "layer_norm BiasFree 40", kind: .layerNorm, shapes: [[1, 40, 3, 130], [40]],
             attributes: ["axis": .int(1), "eps": .float(1e-5), "centered": .bool(false)], tolerance: 1e-4),
        Case(name: "softmax", kind: .softmax, shapes: [[1, 2, 24, 24]], attributes: ["axis": .int(3)], ranges: [0: -10...10]),
        Case(name: "l2_normalize", kind: .l2Normalize, shapes: [[1, 2, 24, 301]], attributes: ["axis": .int(3), "eps": .float(1e-12)]),
        Case(name: "reduce_mean HW", kind: .reduceMean, shapes: [[1, 32, 9, 13]], attributes: ["axes": .ints([2, 3])]),
        Case(name: "reduce_mean HW 37x41 (blocks + tail)", kind: .reduceMean, shapes: [[1, 5, 37, 41]], attributes: ["axes": .ints([2, 3])],
             ranges: [0: 1...3]),
        Case(name: "reduce_mean last 1100", kind: .reduceMean, shapes: [[2, 3, 5, 1100]], attributes: ["axes": .ints([3])]),
        Case(name: "reduce_mean channels", kind: .reduceMean, shapes: [[2, 6, 5, 7]], attributes: ["axes": .ints([1])]),
        Case(name: "layer_norm WithBias batch 2 offset 100 37x3x45", kind: .layerNorm, shapes: [[2, 37, 3, 45], [37], [37]],
             attributes: ["axis": .int(1), "eps": .float(1e-5), "centered": .bool(true)],
             ranges: [0: 99...101], tolerance: 1e-4),
        Case(name: "layer_norm last axis 77", kind: .layerNorm, shapes: [[2, 5, 77], [77], [77]],
             attributes: ["axis": .int(2), "eps": .float(1e-5), "centered": .bool(true)], tolerance: 1e-4),
        // Elementwise (softplus across its threshold of 20).
        Case(name: "gelu", kind: .gelu, shapes: [[1, 127, 3, 5]], ranges: [0: -6...6]),
        Case(name: "silu", kind: .silu, shapes: [[1, 40, 3, 5]], ranges: [0: -30...30]),
        Case(name: "sigmoid", kind: .sigmoid, shapes: [[1, 3, 1, 1]], ranges: [0: -30...30]),
        Case(name: "softplus", kind: .softplus, shapes: [[1, 160, 7]], ranges: [0: -25...25]),
        Case(name: "relu", kind: .relu, shapes: [[1, 3, 1, 1]]),
        Case(name: "exp", kind: .exp, shapes: [[40, 4]], ranges: [0: -5...2]),
        Case(name: "neg", kind: .neg, shapes: [[40, 4]]),
        Case(name: "add residual", kind: .add, shapes: [[1, 48, 5, 7], [1, 48, 5, 7]]),
        Case(name: "mul skip scale", kind: .mul, shapes: [[1, 48, 5, 7], [1, 48, 1, 1]]),
        Case(name: "mul temperature", kind: .mul, shapes: [[1, 2, 24, 24], [1, 2, 1, 1]]),
        Case(name: "sub broadcast rows", kind: .sub, shapes: [[2, 3, 5], [3, 1]]),
        Case(name: "div", kind: .div, shapes: [[1, 3, 4, 5], [1, 3, 4, 5]], ranges: [1: 0.5...2]),
        // Data movement.
        Case(name: "concat skip", kind: .concat, shapes: [[1, 24, 4, 6], [1, 48, 4, 6]], attributes: ["axis": .int(1)]),
        Case(name: "concat directions", kind: .concat, shapes: [[1, 1, 40, 37], [1, 1, 40, 37], [1, 1, 40, 37], [1, 1, 40, 37]],
             attributes: ["axis": .int(1)]),
        Case(name: "slice channels", kind: .slice, shapes: [[1, 254, 3, 5]], attributes: ["axis": .int(1), "start": .int(127), "size": .int(127)]),
        Case(name: "slice rows", kind: .slice, shapes: [[1, 4, 11, 37]], attributes: ["axis": .int(2), "start": .int(3), "size": .int(4)]),
        Case(name: "transpose HW", kind: .transpose, shapes: [[1, 40, 5, 8]], attributes: ["perm": .ints([0, 1, 3, 2])]),
        Case(name: "transpose kT", kind: .transpose, shapes: [[1, 2, 24, 35]], attributes: ["perm": .ints([0, 1, 3, 2])]),
        Case(name: "transpose 3d", kind: .transpose, shapes: [[3, 5, 7]], attributes: ["perm": .ints([2, 0, 1])]),
        Case(name: "flip", kind: .flip, shapes: [[1, 40, 37]], attributes: ["axis": .int(2)]),
        Case(name: "pixel_shuffle", kind: .pixelShuffle, shapes: [[1, 96, 3, 5]], attributes: ["factor": .int(2)]),
        Case(name: "pixel_unshuffle", kind: .pixelUnshuffle, shapes: [[1, 24, 6, 10]], attributes: ["factor": .int(2)]),
        // The selective scan as SS2D uses it (K = 4 directions of E = 10, d_state 4, grouped B/C, D, delta bias,
        // softplus), and the other forms of section 3 (shared or fixed B/C, z gate, no softplus).
        Case(name: "selective_scan SS2D", kind: .selectiveScan,
             shapes: [[1, 40, 37], [1, 40, 37], [40, 4], [1, 4, 4, 37], [1, 4, 4, 37], [40], [40]],
             attributes: scanAttributes, ranges: [1: -4...1, 2: -4 ... -0.5], tolerance: 1e-4),
        Case(name: "selective_scan z shared B fixed C", kind: .selectiveScan,
             shapes: [[2, 6, 19], [2, 6, 19], [6, 3], [2, 3, 19], [6, 3], [2, 6, 19]],
             attributes: ["has_D": .bool(false), "has_z": .bool(true), "has_delta_bias": .bool(false), "delta_softplus": .bool(false)],
             ranges: [1: 0.01...1, 2: -3 ... -0.1], tolerance: 1e-4),
        // fused_attention (Restormer MDTA after fuse-attention): heads 1 and 2, odd widths, with and without biases,
        // and a height that leaves a partial row tile.
        Case(name: "fused_attention heads 2 7x9", kind: .fusedAttention,
             shapes: [[1, 8, 7, 9], [24, 8, 1, 1], [24, 1, 3, 3], [2, 1, 1], [8, 8, 1, 1]],
             attributes: fusedAttentionAttributes(heads: 2, bias: false), ranges: [3: 0.5...2], tolerance: 1e-4),
        Case(name: "fused_attention heads 1 bias 5x13", kind: .fusedAttention,
             shapes: [[1, 6, 5, 13], [18, 6, 1, 1], [18], [18, 1, 3, 3], [18], [1, 1, 1], [6, 6, 1, 1], [6]],
             attributes: fusedAttentionAttributes(heads: 1, bias: true), ranges: [5: 0.5...2], tolerance: 1e-4),
        Case(name: "fused_attention 48 heads 2 9x33", kind: .fusedAttention,
             shapes: [[1, 48, 9, 33], [144, 48, 1, 1], [144, 1, 3, 3], [1, 2, 1, 1], [48, 48, 1, 1]],
             attributes: fusedAttentionAttributes(heads: 2, bias: false), ranges: [3: 0.5...2], tolerance: 1e-4),
        // The chunked scan (section 3.1): the recurrent form over tiles of channels (40 is not a multiple of 8 lanes),
        // and the carry form in its three phases, with a tail chunk (37 = 4·8 + 5, 45 = 5·8 + 5), dt up to 5 and A
        // down to -32, and the z gate with shared B and fixed C.
        Case(name: "chunked_selective_scan recurrent SS2D", kind: .chunkedSelectiveScan,
             shapes: [[1, 40, 37], [1, 40, 37], [40, 4], [1, 4, 4, 37], [1, 4, 4, 37], [40], [40]],
             attributes: chunked(scanAttributes, 8, "recurrent"), ranges: [1: -4...1, 2: -4 ... -0.5], tolerance: 1e-4),
        Case(name: "chunked_selective_scan carry", kind: .chunkedSelectiveScan,
             shapes: [[1, 6, 45], [1, 6, 45], [6, 16], [1, 2, 16, 45], [1, 2, 16, 45], [6], [6]],
             attributes: chunked(scanAttributes, 8, "carry"), ranges: [1: -4...4.99, 2: -32 ... -0.1], tolerance: 1e-4),
        Case(name: "chunked_selective_scan carry slow decay", kind: .chunkedSelectiveScan,
             shapes: [[1, 6, 45], [1, 6, 45], [6, 16], [1, 2, 16, 45], [1, 2, 16, 45], [6], [6]],
             attributes: chunked(scanAttributes, 8, "carry"), ranges: [1: -4 ... -1, 2: -1 ... -0.05], tolerance: 1e-4),
        Case(name: "chunked_selective_scan recurrent z shared B fixed C", kind: .chunkedSelectiveScan,
             shapes: [[2, 11, 19], [2, 11, 19], [11, 4], [2, 4, 19], [11, 4], [2, 11, 19]],
             attributes: chunked(["has_D": .bool(false), "has_z": .bool(true), "has_delta_bias": .bool(false),
                                  "delta_softplus": .bool(false)], 4, "recurrent"),
             ranges: [1: 0.01...1, 2: -3 ... -0.1], tolerance: 1e-4),
        Case(name: "chunked_selective_scan carry z shared B fixed C", kind: .chunkedSelectiveScan,
             shapes: [[2, 3, 19], [2, 3, 19], [3, 4], [2, 4, 19], [3, 4], [2, 3, 19]],
             attributes: chunked(["has_D": .bool(false), "has_z": .bool(true), "has_delta_bias": .bool(false),
                                  "delta_softplus": .bool(false)], 4, "carry"),
             ranges: [1: 0.01...1, 2: -3 ... -0.1], tolerance: 1e-4),
        // ss2d_scan (SS2D's four directions read through index maps, dt_proj and softplus inside): H != W, E not a
        // multiple of the 8 lanes, R 1..3, d_state 4..16; both forms, a tail chunk (35 = 4·8 + 3), x_dbl planar and
        // token-major, dt up to 5 and A down to -32 in the carry cases.
        Case(name: "ss2d_scan recurrent 5x7 E 13 R 1 N 4", kind: .ss2dScan,
             shapes: [[1, 13, 5, 7], [1, 36, 5, 7], [4, 13, 1], [52, 4], [52], [52]],
             attributes: ss2d(chunk: 8, form: "recurrent", layout: "planar"), ranges: [3: -4 ... -0.5, 5: -4...1], tolerance: 1e-4),
        Case(name: "ss2d_scan carry 7x5 E 3 R 3 N 16", kind: .ss2dScan,
             shapes: [[1, 3, 7, 5], [1, 140, 7, 5], [4, 3, 3], [12, 16], [12], [12]],
             attributes: ss2d(chunk: 8, form: "carry", layout: "planar"),
             ranges: [2: -0.1...0.1, 3: -32 ... -0.1, 5: -4...4.9], tolerance: 1e-4),
        Case(name: "ss2d_scan recurrent token-major 6x5 E 10 R 2 N 8", kind: .ss2dScan,
             shapes: [[1, 10, 6, 5], [30, 72], [4, 10, 2], [40, 8], [40], [40]],
             attributes: ss2d(chunk: 4, form: "recurrent", layout: "token_major"), ranges: [3: -4 ... -0.5, 5: -4...1],
             tolerance: 1e-4),
        Case(name: "ss2d_scan carry token-major 5x7 E 2 R 2 N 4", kind: .ss2dScan,
             shapes: [[1, 2, 5, 7], [35, 40], [4, 2, 2], [8, 4], [8], [8]],
             attributes: ss2d(chunk: 8, form: "carry", layout: "token_major"),
             ranges: [2: -0.1...0.1, 3: -32 ... -0.1, 5: -4...4.9], tolerance: 1e-4),
        // Fused GDFN: level 1 of Restormer (C 48, hidden 127) at width 40 with a partial last row tile (11 = 8 + 3);
        // with biases at an odd width and a row tile of 2 (first, middle and last tiles); a single column.
        Case(name: "fused_feed_forward 48 hidden 127 11x40", kind: .fusedFeedForward,
             shapes: [[1, 48, 11, 40], [254, 48, 1, 1], [254, 1, 3, 3], [48, 127, 1, 1]],
             attributes: feedForward(hidden: 127, bias: false), tolerance: 1e-4),
        Case(name: "fused_feed_forward bias hidden 5 7x9 rows 2", kind: .fusedFeedForward,
             shapes: [[1, 6, 7, 9], [10, 6, 1, 1], [10], [10, 1, 3, 3], [10], [6, 5, 1, 1], [6]],
             attributes: feedForward(hidden: 5, bias: true, rowTile: 2), tolerance: 1e-4),
        // Row tiles of one row: a thread's next tile carries a projection row that was itself carried.
        Case(name: "fused_feed_forward bias hidden 5 6x20 rows 1", kind: .fusedFeedForward,
             shapes: [[1, 6, 6, 20], [10, 6, 1, 1], [10], [10, 1, 3, 3], [10], [6, 5, 1, 1], [6]],
             attributes: feedForward(hidden: 5, bias: true, rowTile: 1), tolerance: 1e-4),
        // Restormer's full width 256 with biases and three rows (one row tile, both image edges in it).
        Case(name: "fused_feed_forward bias hidden 127 blocks 3x256", kind: .fusedFeedForward,
             shapes: [[1, 8, 3, 256], [254, 8, 1, 1], [254], [254, 1, 3, 3], [254], [8, 127, 1, 1], [8]],
             attributes: feedForward(hidden: 127, bias: true), tolerance: 1e-4),
        Case(name: "fused_feed_forward one column", kind: .fusedFeedForward,
             shapes: [[1, 4, 5, 1], [6, 4, 1, 1], [6, 1, 3, 3], [4, 3, 1, 1]],
             attributes: feedForward(hidden: 3, bias: false), tolerance: 1e-4),
        // SS2D's in_proj x half, depthwise 3x3 and SiLU in GDFN's row-tiled kernel (fused_pointwise_depthwise): with
        // the folded with_bias norm as in the S block (inputs around +100), channels not a multiple of MR and a
        // partial last row tile (11 = 8 + 3); row tiles of 2 and 1 (carried rows that were themselves carried); no
        // biases and no activation; hidden blocks at width 256 with a bias_free norm; a single column.
        Case(name: "fused_pointwise_depthwise with_bias norm silu 12->20 11x40", kind: .fusedPointwiseDepthwise,
             shapes: [[1, 12, 11, 40], [20, 12, 1, 1], [20], [20, 1, 3, 3], [20]],
             attributes: normed(pointwiseDepthwise(hidden: 20, inBias: true, bias: true), "with_bias"),
             ranges: [0: 99...101], tolerance: 1e-4),
        Case(name: "fused_pointwise_depthwise silu E 5 7x9 rows 2", kind: .fusedPointwiseDepthwise,
             shapes: [[1, 6, 7, 9], [5, 6, 1, 1], [5], [5, 1, 3, 3], [5]],
             attributes: pointwiseDepthwise(hidden: 5, inBias: true, bias: true, rowTile: 2), tolerance: 1e-4),
        Case(name: "fused_pointwise_depthwise gelu E 7 6x20 rows 1", kind: .fusedPointwiseDepthwise,
             shapes: [[1, 6, 6, 20], [7, 6, 1, 1], [7, 1, 3, 3], [7]],
             attributes: pointwiseDepthwise(hidden: 7, inBias: false, bias: true, rowTile: 1, activation: "gelu"), tolerance: 1e-4),
        Case(name: "fused_pointwise_depthwise no bias no activation 5x13", kind: .fusedPointwiseDepthwise,
             shapes: [[1, 4, 5, 13], [9, 4, 1, 1], [9, 1, 3, 3]],
             attributes: pointwiseDepthwise(hidden: 9, inBias: false, bias: false, activation: nil), tolerance: 1e-4),
        Case(name: "fused_pointwise_depthwise bias_free norm E 127 blocks 3x256", kind: .fusedPointwiseDepthwise,
             shapes: [[1, 8, 3, 256], [127, 8, 1, 1], [127, 1, 3, 3], [127]],
             attributes: normed(pointwiseDepthwise(hidden: 127, inBias: false, bias: true), "bias_free"), tolerance: 1e-4),
        Case(name: "fused_pointwise_depthwise one column", kind: .fusedPointwiseDepthwise,
             shapes: [[1, 4, 5, 1], [6, 4, 1, 1], [6], [6, 1, 3, 3], [6]],
             attributes: pointwiseDepthwise(hidden: 6, inBias: true, bias: true), tolerance: 1e-4),
        // Folded layer norms (fold-layer-norm): 1x1 convs normalising each pixel in a prologue (with_bias) or scaling
        // the sums in an epilogue (bias_free), on inputs around +100 (no cancellation), a pixel count that leaves a
        // partial tile (5·40 = 200 = 128 + 72) and an output-channel count that is not a multiple of 4; the gated
        // out_norm; and the fused ops with the norm in their qkv / project_in.
        Case(name: "pointwise with_bias norm 48->144 offset 100 5x40", kind: .conv2d, shapes: [[1, 48, 5, 40], [144, 48, 1, 1], [144]],
             attributes: ["groups": .int(1), "padding": .int(0), "norm": .string("with_bias"), "norm_eps": .float(1e-5)],
             ranges: [0: 99...101], tolerance: 1e-4),
        Case(name: "pointwise bias_free norm 6->9 odd 7x9", kind: .conv2d, shapes: [[2, 6, 7, 9], [9, 6, 1, 1]],
             attributes: ["groups": .int(1), "padding": .int(0), "norm": .string("bias_free"), "norm_eps": .float(1e-5)],
             ranges: [0: 99...101], tolerance: 1e-4),
        Case(name: "layer_norm gated silu 40", kind: .layerNorm, shapes: [[1, 40, 3, 70], [40], [40], [1, 40, 3, 70]],
             attributes: ["axis": .int(1), "eps": .float(1e-5), "centered": .bool(true), "gate": .string("silu")],
             ranges: [3: -8...8], tolerance: 1e-4),
        Case(name: "fused_attention with_bias norm heads 2 7x9", kind: .fusedAttention,
             shapes: [[1, 8, 7, 9], [24, 8, 1, 1], [24], [24, 1, 3, 3], [2, 1, 1], [8, 8, 1, 1]],
             attributes: normed(fusedAttentionAttributes(heads: 2, bias: false), "with_bias"),
             ranges: [0: 99...101, 4: 0.5...2], tolerance: 1e-4),
        // Rows of 32 and 64 pixels: the qkv GEMM's last slice is whole vectors narrower than the tile (AVX-512:
        // 48-pixel slices, 32 = two vectors, 64 = 48 + one; NEON: 12-pixel slices, 32 = 24 + two, 64 = 60 + one).
        Case(name: "fused_attention with_bias norm heads 2 5x32", kind: .fusedAttention,
             shapes: [[1, 8, 5, 32], [24, 8, 1, 1], [24], [24, 1, 3, 3], [2, 1, 1], [8, 8, 1, 1]],
             attributes: normed(fusedAttentionAttributes(heads: 2, bias: false), "with_bias"),
             ranges: [0: 99...101, 4: 0.5...2], tolerance: 1e-4),
        Case(name: "fused_attention heads 1 bias 3x64", kind: .fusedAttention,
             shapes: [[1, 6, 3, 64], [18, 6, 1, 1], [18], [18, 1, 3, 3], [18], [1, 1, 1], [6, 6, 1, 1], [6]],
             attributes: fusedAttentionAttributes(heads: 1, bias: true), ranges: [5: 0.5...2], tolerance: 1e-4),
        Case(name: "fused_attention bias_free norm bias 5x13", kind: .fusedAttention,
             shapes: [[1, 6, 5, 13], [18, 6, 1, 1], [18], [18, 1, 3, 3], [18], [1, 1, 1], [6, 6, 1, 1], [6]],
             attributes: normed(fusedAttentionAttributes(heads: 1, bias: true), "bias_free"), ranges: [5: 0.5...2], tolerance: 1e-4),
        Case(name: "fused_feed_forward with_bias norm hidden 5 7x9 rows 2", kind: .fusedFeedForward,
             shapes: [[1, 6, 7, 9], [10, 6, 1, 1], [10], [10, 1, 3, 3], [6, 5, 1, 1]],
             attributes: normed(feedForward(hidden: 5, bias: false, rowTile: 2), "with_bias"), ranges: [0: 99...101], tolerance: 1e-4),
        Case(name: "fused_feed_forward bias_free norm 48 hidden 127 11x40", kind: .fusedFeedForward,
             shapes: [[1, 48, 11, 40], [254, 48, 1, 1], [254, 1, 3, 3], [48, 127, 1, 1]],
             attributes: normed(feedForward(hidden: 127, bias: false), "bias_free"), tolerance: 1e-4),
        // Epilogues (fuse-elementwise): activations in the pointwise, dense, depthwise and normalised convs, with
        // partial register and row tiles; scaled adds (skip scale and channel attention, broadcast from (1, C, 1, 1)).
        Case(name: "pointwise gelu 48->30 bias 5x40", kind: .conv2d, shapes: [[1, 48, 5, 40], [30, 48, 1, 1], [30]],
             attributes: ["groups": .int(1), "padding": .int(0), "activation": .string("gelu")], ranges: [0: -3...3], tolerance: 1e-4),
        Case(name: "pointwise relu CA squeeze 48->3", kind: .conv2d, shapes: [[1, 48, 1, 1], [3, 48, 1, 1], [3]],
             attributes: ["groups": .int(1), "padding": .int(0), "activation": .string("relu")]),
        Case(name: "pointwise sigmoid CA excite 3->48", kind: .conv2d, shapes: [[1, 3, 1, 1], [48, 3, 1, 1], [48]],
             attributes: ["groups": .int(1), "padding": .int(0), "activation": .string("sigmoid")], ranges: [0: -5...5]),
        Case(name: "dense gelu 6->10 bias odd wide 3x53", kind: .conv2d, shapes: [[1, 6, 3, 53], [10, 6, 3, 3], [10]],
             attributes: ["groups": .int(1), "padding": .int(1), "activation": .string("gelu")], ranges: [0: -2...2], tolerance: 1e-4),
        Case(name: "dense gelu CAB 12->4 bias 11x13", kind: .conv2d, shapes: [[1, 12, 11, 13], [4, 12, 3, 3], [4]],
             attributes: ["groups": .int(1), "padding": .int(1), "activation": .string("gelu")], tolerance: 1e-4),
        Case(name: "depthwise silu 40 bias 9x7", kind: .conv2d, shapes: [[1, 40, 9, 7], [40, 1, 3, 3], [40]],
             attributes: ["groups": .int(40), "padding": .int(1), "activation": .string("silu")], ranges: [0: -4...4], tolerance: 1e-4),
        Case(name: "pointwise with_bias norm silu 6->10 7x9", kind: .conv2d, shapes: [[1, 6, 7, 9], [10, 6, 1, 1], [10]],
             attributes: ["groups": .int(1), "padding": .int(0), "norm": .string("with_bias"), "norm_eps": .float(1e-5),
                          "activation": .string("silu")], tolerance: 1e-4),
        // Fused residuals of plain convolutions (fuse-elementwise: the S block's x·skip_scale + out_proj(y)):
        // pointwise with a per-channel scale and partial tiles, K-blocked with bias, dense 3x3 unscaled, 2 images.
        Case(name: "pointwise scaled residual 24->48 bias 5x7", kind: .conv2d,
             shapes: [[1, 24, 5, 7], [48, 24, 1, 1], [48], [1, 48, 5, 7], [1, 48, 1, 1]],
             attributes: ["groups": .int(1), "padding": .int(0), "residual": .bool(true), "residual_scaled": .bool(true)]),
        Case(name: "pointwise K-blocked scaled residual 700->13 3x37", kind: .conv2d,
             shapes: [[1, 700, 3, 37], [13, 700, 1, 1], [1, 13, 3, 37], [1, 13, 1, 1]],
             attributes: ["groups": .int(1), "padding": .int(0), "residual": .bool(true), "residual_scaled": .bool(true)], tolerance: 1e-4),
        Case(name: "dense residual 2 images 6->5 bias 7x9", kind: .conv2d,
             shapes: [[2, 6, 7, 9], [5, 6, 3, 3], [5], [2, 5, 7, 9]],
             attributes: ["groups": .int(1), "padding": .int(1), "residual": .bool(true)], tolerance: 1e-4),
        // Unfolded norms in dense convolutions (fold-layer-norm: CAB's ln_2 before its first 3x3): (x − μ)·r·γ + β
        // or x·r·γ inside the image, 0 in the padding (stride 2: each tap normalised while packing; stride 1: each
        // input pixel normalised once in the item's slab); stride
        // 1 and 2, odd sizes (borders on every side), panels that split rows or are narrower than a row, K blocks,
        // two images, channels sharing a +100 offset (no cancellation), a fused activation.
        Case(name: "dense with_bias affine norm CAB 12->4 bias offset 100 11x13", kind: .conv2d,
             shapes: [[1, 12, 11, 13], [4, 12, 3, 3], [4], [12], [12]], attributes: affineNorm(["padding": .int(1)], "with_bias"),
             ranges: [0: 99...101, 3: 0.5...2], tolerance: 1e-4),
        Case(name: "dense with_bias affine norm gelu K-blocked 96->32 9x40", kind: .conv2d,
             shapes: [[1, 96, 9, 40], [32, 96, 3, 3], [32], [96], [96]],
             attributes: affineNorm(["padding": .int(1), "activation": .string("gelu")], "with_bias"), ranges: [3: 0.5...2], tolerance: 1e-4),
        Case(name: "dense bias_free affine norm s2 5->7 bias 9x11", kind: .conv2d, shapes: [[1, 5, 9, 11], [7, 5, 3, 3], [7], [5]],
             attributes: affineNorm(["padding": .int(1), "stride": .int(2)], "bias_free"), ranges: [3: 0.5...2], tolerance: 1e-4),
        Case(name: "dense with_bias affine norm 2 images s2 unpadded 4x4 6->11 13x10", kind: .conv2d,
             shapes: [[2, 6, 13, 10], [11, 6, 4, 4], [6], [6]], attributes: affineNorm(["padding": .int(0), "stride": .int(2)], "with_bias"),
             tolerance: 1e-4),
        Case(name: "dense with_bias affine norm wide rows 6->5 3x301", kind: .conv2d, shapes: [[1, 6, 3, 301], [5, 6, 3, 3], [5], [6], [6]],
             attributes: affineNorm(["padding": .int(1)], "with_bias"), tolerance: 1e-4),
        Case(name: "dense bias_free affine norm s2 wide rows 7->6 5x290", kind: .conv2d, shapes: [[1, 7, 5, 290], [6, 7, 3, 3], [7]],
             attributes: affineNorm(["padding": .int(1), "stride": .int(2)], "bias_free"), tolerance: 1e-4),
        Case(name: "dense 1x1 padded bias_free affine norm 6->5 3x7", kind: .conv2d, shapes: [[1, 6, 3, 7], [5, 6, 1, 1], [6]],
             attributes: affineNorm(["padding": .int(1)], "bias_free"), tolerance: 1e-4),
        // Stride 1 reads the item's slab (input rows of several panels, normalised once): two images whose items
        // span many short rows, a 5x5 kernel with padding 2 and rows not a multiple of any vector, a non-square
        // 1x3 kernel, output channels not a multiple of MR.
        Case(name: "dense with_bias affine norm slab 2 images 10->13 37x6", kind: .conv2d,
             shapes: [[2, 10, 37, 6], [13, 10, 3, 3], [13], [10], [10]], attributes: affineNorm(["padding": .int(1)], "with_bias"),
             ranges: [0: 49...51, 3: 0.5...2], tolerance: 1e-4),
        Case(name: "dense bias_free affine norm slab 5x5 pad 2 5->9 23x17", kind: .conv2d,
             shapes: [[1, 5, 23, 17], [9, 5, 5, 5], [9], [5]], attributes: affineNorm(["padding": .int(2), "activation": .string("gelu")], "bias_free"),
             ranges: [3: 0.5...2], tolerance: 1e-4),
        Case(name: "dense with_bias affine norm slab 1x3 kernel 7->6 9x21", kind: .conv2d,
             shapes: [[1, 7, 9, 21], [6, 7, 1, 3], [6], [7], [7]], attributes: affineNorm(["padding": .int(1)], "with_bias"),
             tolerance: 1e-4),
        // Gated norms in 1x1 convolutions (fuse-gated-norm: SS2D's out_norm and gate in out_proj, with its scaled
        // residual): the pointwise panel packs ((x − μ)·r·γ + β)·silu(z) or x·r·γ·silu(z); channels (K) not a
        // multiple of any vector width, pixel counts with partial vectors and partial NR slices (token tails),
        // several NC panels, output channels not a multiple of MR, K blocks, two images, a +100 offset.
        Case(name: "pointwise gated with_bias norm scaled residual 37->26 3x43", kind: .conv2d,
             shapes: [[1, 37, 3, 43], [26, 37, 1, 1], [37], [37], [1, 37, 3, 43], [1, 26, 3, 43], [1, 26, 1, 1]],
             attributes: gatedNorm(["residual": .bool(true), "residual_scaled": .bool(true)], "with_bias"),
             ranges: [0: 99...101, 2: 0.5...2, 4: -6...6], tolerance: 1e-4),
        Case(name: "pointwise gated bias_free norm 2 images 20->7 bias 9x31", kind: .conv2d,
             shapes: [[2, 20, 9, 31], [7, 20, 1, 1], [7], [20], [2, 20, 9, 31]],
             attributes: gatedNorm([:], "bias_free"), ranges: [3: 0.5...2, 4: -4...4], tolerance: 1e-4),
        Case(name: "pointwise gated with_bias norm K-blocked 700->13 1x37", kind: .conv2d,
             shapes: [[1, 700, 1, 37], [13, 700, 1, 1], [700], [700], [1, 700, 1, 37]],
             attributes: gatedNorm([:], "with_bias"), ranges: [4: -4...4], tolerance: 1e-4),
        Case(name: "pointwise gated with_bias norm residual 5->3 bias 1x3", kind: .conv2d,
             shapes: [[1, 5, 1, 3], [3, 5, 1, 1], [3], [5], [5], [1, 5, 1, 3], [1, 3, 1, 3]],
             attributes: gatedNorm(["residual": .bool(true)], "with_bias"), tolerance: 1e-4),
        Case(name: "add scaled lhs skip", kind: .add, shapes: [[1, 48, 5, 7], [1, 48, 5, 7], [1, 48, 1, 1]],
             attributes: ["scaled": .string("lhs")]),
        Case(name: "add scaled both skip and channel attention", kind: .add,
             shapes: [[1, 48, 5, 7], [1, 48, 5, 7], [1, 48, 1, 1], [1, 48, 1, 1]], attributes: ["scaled": .string("both")]),
        Case(name: "add scaled rhs full", kind: .add, shapes: [[1, 6, 3, 5], [1, 6, 3, 5], [1, 6, 3, 5]],
             attributes: ["scaled": .string("rhs")]),
        // Fused T-block residuals: the fused ops add x to their output tiles.
        Case(name: "fused_attention residual norm heads 2 7x9", kind: .fusedAttention,
             shapes: [[1, 8, 7, 9], [24, 8, 1, 1], [24], [24, 1, 3, 3], [2, 1, 1], [8, 8, 1, 1], [1, 8, 7, 9]],
             attributes: residual(normed(fusedAttentionAttributes(heads: 2, bias: false), "with_bias")),
             ranges: [4: 0.5...2], tolerance: 1e-4),
        Case(name: "fused_feed_forward residual bias hidden 5 7x9 rows 2", kind: .fusedFeedForward,
             shapes: [[1, 6, 7, 9], [10, 6, 1, 1], [10], [10, 1, 3, 3], [10], [6, 5, 1, 1], [6], [1, 6, 7, 9]],
             attributes: residual(feedForward(hidden: 5, bias: true, rowTile: 2)), tolerance: 1e-4),
        // x_proj on the micro-kernel (transpose_a, B column-packed): K not a multiple of any vector width, tokens over
        // two blocks with a partial MR tile, N below one NR slice and with a partial last slice; N a multiple of
        // every NR; K blocks on every target (K > KC); B computed at run time (packed per K block by the kernel).
        Case(name: "x_proj transpose_a K 97 M 301 N 44", kind: .matmul, shapes: [[97, 301], [97, 44]],
             attributes: ["transpose_a": .bool(true)], tolerance: 1e-4),
        Case(name: "x_proj transpose_a K 20 M 64 N 96", kind: .matmul, shapes: [[20, 64], [20, 96]],
             attributes: ["transpose_a": .bool(true)]),
        Case(name: "x_proj transpose_a K-blocked 700 M 19 N 5", kind: .matmul, shapes: [[700, 19], [700, 5]],
             attributes: ["transpose_a": .bool(true)], tolerance: 1e-4),
        Case(name: "x_proj transpose_a computed B K 33 M 70 N 53", kind: .matmul, shapes: [[33, 70], [33, 53]],
             attributes: ["transpose_a": .bool(true)], tolerance: 1e-4, computed: [1]),
        // A's rows copied in whole vectors: decoder_level1's K 192 and N 88 (two K blocks on x86; 48 + 40 columns on
        // AVX-512, the last vector partial) with tokens over several blocks whose last one ends inside a vector and
        // inside an MR tile; fewer tokens than one vector (only the partial load and the zeroed tile tail); an MR
        // tile that ends exactly at a vector boundary.
        Case(name: "x_proj transpose_a K 192 M 509 N 88", kind: .matmul, shapes: [[192, 509], [192, 88]],
             attributes: ["transpose_a": .bool(true)], tolerance: 1e-4),
        Case(name: "x_proj transpose_a K 7 M 3 N 20", kind: .matmul, shapes: [[7, 3], [7, 20]],
             attributes: ["transpose_a": .bool(true)]),
        Case(name: "x_proj transpose_a K 9 M 48 N 17", kind: .matmul, shapes: [[9, 48], [9, 17]],
             attributes: ["transpose_a": .bool(true)]),
    ]

    static func fusedAttentionAttributes(heads: Int, bias: Bool) -> Attributes {
        ["heads": .int(heads), "bias": .bool(bias), "eps": .float(1e-12),
         "fuses": .string("conv2d,conv2d,slice,reshape,slice,reshape,slice,reshape,l2_normalize,l2_normalize,transpose,matmul,mul,softmax,matmul,reshape,conv2d")]
    }

    static func ss2d(chunk: Int, form: String, layout: String) -> Attributes {
        ["directions": .int(4), "x_dbl_layout": .string(layout), "chunk": .int(chunk), "form": .string(form),
         "fuses": .string("transpose,flip,flip,concat,matmul,slice,slice,slice,matmul,selective_scan,slice,flip,add,slice,transpose,add,slice,flip,transpose,add")]
    }

    static func residual(_ a: Attributes) -> Attributes {
        var a = a
        a["residual"] = .bool(true)
        return a
    }

    static func normed(_ a: Attributes, _ form: String) -> Attributes {
        var a = a
        a["norm"] = .string(form)
        a["norm_eps"] = .float(1e-5)
        return a
    }

    /// A dense conv2d (groups 1) with an unfolded norm: γ (and β for with_bias) are its last operands.
    static func affineNorm(_ a: Attributes, _ form: String) -> Attributes {
        var a = normed(a, form)
        a["groups"] = .int(1)
        a["norm_affine"] = .bool(true)
        return a
    }

    /// A 1x1 conv2d with a gated norm: γ (and β for with_bias) and z follow the weight and optional bias.
    static func gatedNorm(_ a: Attributes, _ form: String) -> Attributes {
        var a = affineNorm(a, form)
        a["padding"] = .int(0)
        a["norm_gate"] = .string("silu")
        return a
    }

    static func chunked(_ a: Attributes, _ chunk: Int, _ form: String) -> Attributes {
        var a = a
        a["chunk"] = .int(chunk)
        a["form"] = .string(form)
        return a
    }

    /// One graph holding every case, and the slice of the output that belongs to each.
    static func makeGraph() throws -> (Graph, WeightStore, [Range<Int>]) {
        var b = Builder(name: "kernels")
        let input = b.input(TensorType(.f32, [1]))
        var weights: WeightStore = [:]
        var flat: [ValueID] = []
        var ranges: [Range<Int>] = []
        var offset = 0
        for (i, c) in cases.enumerated() {
            var operands: [ValueID] = []
            for (j, shape) in c.shapes.enumerated() {
                let name = "case\(i).operand\(j)"
                var rng = SplitMix64(seed: UInt64(1000 * i + j))
                let range = c.ranges[j] ?? -1...1
                let count = shape.reduce(1, *)
                weights[name] = Tensor(shape: shape, data: (0..<count).map { _ in
                    Float(range.lowerBound + rng.nextUnit() * (range.upperBound - range.lowerBound))
                })
                let w = try b.weight(name, shape)
                operands.append(c.computed.contains(j) ? try b.add(.neg, [w]) : w)
            }
            b.scope = c.name
            let result = try b.add(c.kind, operands, c.attributes)
            let n = b.type(of: result).elementCount
            flat.append(try b.add(.reshape, [result], ["shape": .ints([n])]))
            ranges.append(offset..<(offset + n))
            offset += n
        }
        // The input takes part so that the graph is a function of it (it adds zero times itself).
        let zero = try b.add(.sub, [input, input])
        let all = try b.add(.concat, flat, ["axis": .int(0)])
        b.output(try b.add(.add, [all, zero]))
        return (b.graph, weights, ranges)
    }

    func check(target: Target, sanitize: Bool = false) throws {
        try GeneratedProgram.requireRunnable(target)
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let (graph, weights, ranges) = try Self.makeGraph()
        try Verifier.verify(graph)
        let expected = try Interpreter.run(graph, inputs: [Tensor(shape: [1], data: [0.5])], weights: weights)[0]
        let program = dir.appendingPathComponent("kernels")
        let plan = try Compile.build(graph: graph, weights: weights, target: target, output: program, foldConstants: false,
                                     extraFlags: sanitize ? GeneratedProgram.sanitizerFlags : [])
        XCTAssertGreaterThanOrEqual(plan.kernels.count, Self.cases.count)
        let input = dir.appendingPathComponent("in.npy").path, output = dir.appendingPathComponent("out.npy").path
        try Npy.write(Tensor(shape: [1], data: [0.5]), to: input)
        var first: Tensor?
        for threads in [1, 3] {
            let r = try GeneratedProgram.run(program, [input, output, "--threads", "\(threads)"], target: target)
            XCTAssertEqual(r.status, 0, r.output)
            let actual = try Npy.read(path: output)
            XCTAssertEqual(actual.shape, expected.shape)
            // Fixed tiles and a fixed order inside each: the thread count changes no bit of any result.
            if let first {
                XCTAssertTrue(first.data.map(\.bitPattern) == actual.data.map(\.bitPattern),
                              "\(target.name): the result with \(threads) threads differs from the one with 1")
            }
            first = actual
            for (c, range) in zip(Self.cases, ranges) {
                let err = GeneratedProgram.relativeError(Array(actual.data[range]), Array(expected.data[range]))
                XCTAssertLessThanOrEqual(err, c.tolerance, "\(target.name)\(sanitize ? " (sanitizers)" : ""): \(c.name) with \(threads) threads")
            }
        }
    }

    func testKernelsOnHost() throws { try check(target: .host) }

    /// Both x86 targets whatever `host` picks: the one `host` is not runs here (skipped on a CPU without its
    /// extensions, e.g. x86-64-avx512 without avx512f).
    func testKernelsOnX86AVX2() throws {
        try GeneratedProgram.requireNotHost(.x86_64AVX2, covered: "testKernelsOnHost")
        try check(target: .x86_64AVX2)
    }

    func testKernelsOnX86AVX512() throws {
        try GeneratedProgram.requireNotHost(.x86_64AVX512, covered: "testKernelsOnHost")
        try check(target: .x86_64AVX512)
    }

    func testKernelsUnderAddressAndUndefinedBehaviorSanitizers() throws { try check(target: .host, sanitize: true) }

    func testKernelsOnAArch64UnderQemu() throws { try check(target: .aarch64) }

    func testKernelsWithPortableC() throws { try check(target: .generic) }

    /// The generated library and program build with clang as well as gcc (-Wall -Werror).
    func testKernelsWithClang() throws {
        var target = Target.host
        target.compiler = "clang"
        try check(target: target)
    }

    func testEveryPrimitiveAndFusedOpHasACase() {
        let covered = Set(Self.cases.map(\.kind))
        for kind in OpKind.allCases where (kind.level == .primitive || kind.level == .fused) && kind != .reshape {
            XCTAssertTrue(covered.contains(kind), "no kernel test for \(kind.name)")
        }
    }
}
