/// Gives every value its shape and element type from its operands, naming the op when they do not fit.
///
/// Name: `infer-shapes`. Requires: any graph whose weights and inputs have declared types.
/// Produces: the same graph with every op's result type filled in and checked.
///
/// Algorithm:
///  1. Walk the ops in order (SSA order means operands are typed before their users).
///  2. For each op, apply its shape rule (`ShapeRules`) to the operand types.
///  3. If the op already had a type that differs, report both; otherwise record the inferred type.
import HybridIR

public struct InferShapes: Pass {
    public static let name = "infer-shapes"
    public static let summary = "infer the shape and element type of every value; errors name the op"

    public init() {}

    public func run(_ graph: inout Graph, _ context: PassContext) throws {
        var types: [ValueID: TensorType] = [:]
        for input in graph.inputs { types[input.id] = input.type }
        var inferred = 0
        for i in graph.ops.indices {
            let op = graph.ops[i]
            let operandTypes = try op.operands.map { v -> TensorType in
                guard let t = types[v] else { throw HybridError("operand %\(v) has no type", at: op.label) }
                return t
            }
            let t: TensorType
            do {
                t = try ShapeRules.resultType(of: op, operands: operandTypes)
            } catch let e as HybridError {
                throw HybridError(e.message, at: op.label)
            }
            if let declared = op.type, declared != t {
                throw HybridError("declared type \(declared) does not match the inferred type \(t)", at: op.label)
            }
            if op.type == nil { inferred += 1 }
            graph.ops[i].type = t
            types[op.result] = t
        }
        context.record("types inferred", inferred)
    }
}
