/// The graph IR: a list of single-result ops in SSA form over tensor values with static types.
public typealias ValueID = Int

public struct Operation: Equatable {
    public var kind: OpKind
    public var operands: [ValueID]
    public var attributes: Attributes
    public var result: ValueID
    /// nil until `infer-shapes` (or the builder) fills it in.
    public var type: TensorType?
    /// The module path the op came from (`encoder_level1.0.attn.qkv`), used in messages and per-stage reports.
    public var scope: String

    public init(kind: OpKind, operands: [ValueID], attributes: Attributes = [:], result: ValueID,
                type: TensorType? = nil, scope: String = "") {
        self.kind = kind
        self.operands = operands
        self.attributes = attributes
        self.result = result
        self.type = type
        self.scope = scope
    }

    /// "conv2d %5 (encoder_level1.0.attn.qkv)": how messages name an op.
    public var label: String {
        scope.isEmpty ? "\(kind.name) %\(result)" : "\(kind.name) %\(result) (\(scope))"
    }
}

public struct GraphInput: Equatable {
    public var id: ValueID
    public var type: TensorType

    public init(id: ValueID, type: TensorType) {
        self.id = id
        self.type = type
    }
}

public struct Graph: Equatable {
    public var name: String
    public var inputs: [GraphInput]
    public var ops: [Operation]
    public var outputs: [ValueID]
    /// Graph-level records of passes (`plan-memory`: arena size, lower bound, scratch), printed after the inputs.
    public var attributes: Attributes = [:]

    public init(name: String, inputs: [GraphInput] = [], ops: [Operation] = [], outputs: [ValueID] = []) {
        self.name = name
        self.inputs = inputs
        self.ops = ops
        self.outputs = outputs
    }

    /// The type of every value that has one.
    public func valueTypes() -> [ValueID: TensorType] {
        var types: [ValueID: TensorType] = [:]
        for input in inputs { types[input.id] = input.type }
        for op in ops { if let t = op.type { types[op.result] = t } }
        return types
    }

    /// Who reads each value: the indices of the ops that take it as an operand (once per operand slot, in op order),
    /// then -1 once for each time it is a graph output. Rewrites ask it "is this op the only reader?"
    /// (`readers[v] == [i]`); -1 marks a value that must stay materialised. `including` limits the ops counted
    /// (for example to live ones); graph outputs always count.
    public func readers(including: (Operation) -> Bool = { _ in true }) -> [ValueID: [Int]] {
        var readers: [ValueID: [Int]] = [:]
        for (i, op) in ops.enumerated() where including(op) {
            for v in op.operands { readers[v, default: []].append(i) }
        }
        for v in outputs { readers[v, default: []].append(-1) }
        return readers
    }

    /// The index in `ops` of the op that defines each value (graph inputs have none).
    public func definers() -> [ValueID: Int] {
        Dictionary(uniqueKeysWithValues: ops.enumerated().map { ($1.result, $0) })
    }

    /// The largest value id in use, so that passes can mint fresh ones.
    public var maxValueID: ValueID {
        max(inputs.map(\.id).max() ?? -1, ops.map(\.result).max() ?? -1)
    }

    /// Weight keys referenced by `weight` ops, in graph order, each once.
    public var weightNames: [String] {
        var seen = Set<String>()
        var names: [String] = []
        for op in ops where op.kind == .weight {
            if let name = try? op.attributes.string("name"), seen.insert(name).inserted { names.append(name) }
        }
        return names
    }

    /// Ids renumbered 0... in definition order (inputs first), the canonical numbering of the text form.
    public func renumbered() -> Graph {
        var map: [ValueID: ValueID] = [:]
        var next = 0
        for input in inputs { map[input.id] = next; next += 1 }
        for op in ops { map[op.result] = next; next += 1 }
        var g = self
        g.inputs = inputs.map { GraphInput(id: map[$0.id]!, type: $0.type) }
        g.ops = ops.map { op in
            var op = op
            op.result = map[op.result]!
            op.operands = op.operands.map { map[$0] ?? $0 }
            return op
        }
        g.outputs = outputs.map { map[$0] ?? $0 }
        return g
    }
}
