/// Chooses the memory layout of each tensor, with the transposition done by the kernel that writes it.
///
/// Name: `choose-layouts`. Requires: a typed graph (after `fuse-scan-directions`); run it before `fold-constants`,
/// which folds the weight transposes it writes. Produces: the same graph where each x_dbl an `ss2d_scan` reads is
/// token-major, written so by its GEMM; every other tensor keeps the planar (N, C, H, W) layout.
///
/// The rule: tensors are planar, the layout convolutions, LayerNorm over channels and pixel shuffles read with
/// unit stride along a row of pixels. The exception is a tensor read one sequence step at a time by a scan: at each
/// step the scan wants all of that step's features (dt_raw, B and C of every direction, K·(R+2N) floats). Planar,
/// they lie L floats apart, one cache line each, and the column-major directions touch a new line per feature
/// and step; token-major (L, K·(R+2N)), they are one contiguous row. When such a tensor's only reader is the scan
/// and its producer is a pointwise GEMM, the GEMM can write rows as cheaply as planes, so the tensor is token-major.
///
/// Algorithm:
///  1. For each `ss2d_scan` whose x_dbl is planar, take x_dbl's producer: it must be a 1x1 `conv2d` without bias
///     (groups 1, padding 0, stride 1) of the scan's own xs, and the scan its only user.
///  2. Replace the conv by `matmul {transpose_a}` of xs viewed (E, L) and the weight viewed (F, E) and transposed to
///     (E, F) (weight-only ops, folded at compile time): y = xsᵀ·Wᵀ, (L, F), token-major. Set the scan's
///     `x_dbl_layout` to "token_major".
///  3. Record the tensors made token-major and their bytes.
import HybridIR

public struct ChooseLayouts: Pass {
    public static let name = "choose-layouts"
    public static let summary = "per-tensor layout (planar for convolutions, token-major for scan inputs), transposes fused into producers"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        let types = graph.valueTypes()
        var live = Set(graph.outputs)
        for op in graph.ops.reversed() where live.contains(op.result) { live.formUnion(op.operands) }
        var users: [ValueID: Int] = [:]
        for op in graph.ops where live.contains(op.result) { for v in op.operands { users[v, default: 0] += 1 } }
        for v in graph.outputs { users[v, default: 0] += 1 }
        let definer = graph.definers()

        var replaced: [Int: [Operation]] = [:]
        var next = graph.maxValueID + 1
        var count = 0, bytes = 0
        for (i, scan) in graph.ops.enumerated() where scan.kind == .ss2dScan {
            guard (try? scan.attributes.string("x_dbl_layout")) == "planar", let c = definer[scan.operands[1]],
                  users[scan.operands[1]] == 1 else { continue }
            let conv = graph.ops[c]
            guard conv.kind == .conv2d, conv.operands.count == 2, conv.operands[0] == scan.operands[0],
                  (try? conv.attributes.int("groups")) == 1, (try? conv.attributes.int("padding")) == 0,
                  (try? conv.attributes.int("stride", default: 1)) == 1,
                  let w = types[conv.operands[1]]?.shape, w.count == 4, w[2] == 1, w[3] == 1,
                  let x = types[scan.operands[0]]?.shape else { continue }
            let (f, e, l) = (w[0], w[1], x[2] * x[3])
            let view = Operation(kind: .reshape, operands: [scan.operands[0]], attributes: ["shape": .ints([e, l])],
                                 result: next, type: TensorType(.f32, [e, l]), scope: conv.scope)
            let matrix = Operation(kind: .reshape, operands: [conv.operands[1]], attributes: ["shape": .ints([f, e])],
                                   result: next + 1, type: TensorType(.f32, [f, e]), scope: conv.scope)
            let transposed = Operation(kind: .transpose, operands: [next + 1], attributes: ["perm": .ints([1, 0])],
                                       result: next + 2, type: TensorType(.f32, [e, f]), scope: conv.scope)
            let gemm = Operation(kind: .matmul, operands: [next, next + 2], attributes: ["transpose_a": .bool(true)],
                                 result: next + 3, type: TensorType(.f32, [l, f]), scope: conv.scope)
            replaced[c] = [view, matrix, transposed, gemm]
            graph.ops[i].operands[1] = next + 3
            graph.ops[i].attributes["x_dbl_layout"] = .string("token_major")
            next += 4
            count += 1
            bytes += gemm.type!.byteSize
        }
        graph.ops = graph.ops.enumerated().flatMap { i, op in replaced[i] ?? [op] }
        context.record("tensors made token-major", count)
        context.record("token-major bytes written by their GEMM", bytes)
    }
}
