/// Checks a graph's structure and every op's operands, shapes and attributes, naming the op on failure.
public enum Verifier {
    public struct Options {
        /// Every value must have a type (true after `infer-shapes`).
        public var requireTypes = true
        /// Block ops may still be present (false after `expand-blocks`).
        public var allowBlockOps = true

        public init(requireTypes: Bool = true, allowBlockOps: Bool = true) {
            self.requireTypes = requireTypes
            self.allowBlockOps = allowBlockOps
        }
    }

    public static func verify(_ graph: Graph, _ options: Options = Options()) throws {
        var types: [ValueID: TensorType?] = [:]
        for input in graph.inputs {
            guard types[input.id] == nil else { throw HybridError("input %\(input.id) is defined twice", at: "@\(graph.name)") }
            types[input.id] = input.type
        }
        for op in graph.ops {
            func fail(_ message: String) -> HybridError { HybridError(message, at: op.label) }
            guard types[op.result] == nil else { throw fail("value %\(op.result) is defined twice") }
            if !options.allowBlockOps && op.kind.level == .block {
                throw fail("block op left in a graph that must hold only primitive ops (run expand-blocks)")
            }
            var operandTypes: [TensorType] = []
            var allTyped = true
            for v in op.operands {
                guard let entry = types[v] else { throw fail("operand %\(v) is used before it is defined") }
                if let t = entry { operandTypes.append(t) } else { allTyped = false }
            }
            if allTyped {
                let inferred: TensorType
                do {
                    inferred = try ShapeRules.resultType(of: op, operands: operandTypes)
                } catch let e as HybridError {
                    throw fail(e.message)
                }
                if let declared = op.type, declared != inferred {
                    throw fail("declared type \(declared) does not match the inferred type \(inferred)")
                }
            }
            if options.requireTypes && op.type == nil { throw fail("has no type (run infer-shapes)") }
            types[op.result] = .some(op.type)
        }
        guard !graph.outputs.isEmpty else { throw HybridError("graph has no outputs", at: "@\(graph.name)") }
        for out in graph.outputs where types[out] == nil {
            throw HybridError("returned value %\(out) is not defined", at: "@\(graph.name)")
        }
    }
}
