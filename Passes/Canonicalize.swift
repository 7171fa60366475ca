/// Local simplifications that leave one canonical form: no-op reshapes, transposes, flips and slices disappear,
/// and chains of reshapes, transposes or flips collapse.
///
/// Name: `canonicalize`. Requires: a typed graph. Produces: the same computation with fewer data-movement ops.
///
/// Algorithm:
///  1. Walk the ops in order with a replacement map (value → value it is equal to).
///  2. reshape to the operand's own shape, transpose by the identity permutation, slice of a whole axis:
///     the result is the operand.
///  3. reshape of a reshape reads the first reshape's operand; transpose of a transpose composes the
///     permutations; flip of a flip on the same axis is the original value.
///  4. Rewrite every use through the map (dead ops are left to eliminate-dead-code).
import HybridIR

public struct Canonicalize: Pass {
    public static let name = "canonicalize"
    public static let summary = "remove no-op reshapes/transposes/slices/flips and collapse chains of them"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        var replace: [ValueID: ValueID] = [:]
        var producer: [ValueID: Operation] = [:]
        let types = graph.valueTypes()
        var simplified = 0
        for i in graph.ops.indices {
            graph.ops[i].operands = graph.ops[i].operands.map { replace[$0] ?? $0 }
            var op = graph.ops[i]
            let input = op.operands.first
            let inputType = input.flatMap { types[$0] }
            switch op.kind {
            case .reshape:
                if let inputType, inputType.shape == op.type?.shape {
                    replace[op.result] = input!
                } else if let p = producer[input!], p.kind == .reshape {
                    op.operands = [p.operands[0]]
                }
            case .transpose:
                let perm = try op.attributes.ints("perm")
                if perm == Array(0..<perm.count) {
                    replace[op.result] = input!
                } else if let p = producer[input!], p.kind == .transpose {
                    let inner = try p.attributes.ints("perm")
                    let composed = perm.map { inner[$0] }
                    if composed == Array(0..<composed.count) {
                        replace[op.result] = p.operands[0]
                    } else {
                        op.operands = [p.operands[0]]
                        op.attributes["perm"] = .ints(composed)
                    }
                }
            case .flip:
                if let p = producer[input!], p.kind == .flip, try p.attributes.int("axis") == op.attributes.int("axis") {
                    replace[op.result] = p.operands[0]
                }
            case .slice:
                if let inputType, try op.attributes.int("start") == 0,
                   try op.attributes.int("size") == inputType.shape[op.attributes.int("axis")] {
                    replace[op.result] = input!
                }
            default:
                break
            }
            if replace[op.result] != nil || op != graph.ops[i] { simplified += 1 }
            graph.ops[i] = op
            producer[op.result] = op
        }
        graph.outputs = graph.outputs.map { replace[$0] ?? $0 }
        context.record("ops simplified", simplified)
    }
}
