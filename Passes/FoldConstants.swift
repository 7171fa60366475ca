/// Computes, at compile time, every op whose operands are all weights (A = −exp(A_log), reshaped temperatures,
/// reshaped Linear weights), and replaces it by a new weight holding the result.
///
/// Name: `fold-constants`. Requires: a typed graph and bound weights. Produces: the same graph where no op
/// other than `weight` has only weight operands; the new weights are added to the pass context.
///
/// Algorithm:
///  1. Walk the ops in order, tracking which values are weights (weight ops, then folded results).
///  2. For an op whose operands are all weights, evaluate it with the reference interpreter on their values.
///  3. Replace the op by a `weight` op named `<first operand's key>.<op>` (unique), of the same type, and
///     store the tensor under that name; the original weights stay (dead-code elimination drops unused ones).
import HybridIR

public struct FoldConstants: Pass {
    public static let name = "fold-constants"
    public static let summary = "evaluate weight-only computations (A = -exp(A_log), reshaped weights) at compile time"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        var values: [ValueID: Tensor] = [:]
        var names: [ValueID: String] = [:]
        var folded = 0
        for i in graph.ops.indices {
            let op = graph.ops[i]
            if op.kind == .weight {
                let name = try op.attributes.string("name")
                guard let t = context.weights[name] else { throw HybridError("weight '\(name)' is not bound", at: op.label) }
                values[op.result] = t
                names[op.result] = name
                continue
            }
            guard !op.operands.isEmpty, op.operands.allSatisfy({ values[$0] != nil }) else { continue }
            let result = try Interpreter.evaluate(op, op.operands.map { values[$0]! }, weights: context.weights)
            var name = "\(names[op.operands[0]]!).\(op.kind.name)"
            var n = 2
            while context.weights[name] != nil && context.weights[name] != result { name = "\(names[op.operands[0]]!).\(op.kind.name)\(n)"; n += 1 }
            context.weights[name] = result
            values[op.result] = result
            names[op.result] = name
            graph.ops[i] = Operation(kind: .weight, operands: [], attributes: ["name": .string(name)], result: op.result,
                                     type: op.type, scope: op.scope)
            folded += 1
        }
        context.record("ops folded", folded)
    }
}
