/// Appends ops to a graph, inferring each result type as it goes so that mistakes surface where they are made.
public struct Builder {
    public private(set) var graph: Graph
    private var types: [ValueID: TensorType]
    private var nextID: ValueID
    /// Module path given to the ops appended next.
    public var scope = ""

    public init(name: String) {
        graph = Graph(name: name)
        types = [:]
        nextID = 0
    }

    /// Continues an existing graph (new ids start after its largest).
    public init(continuing graph: Graph) {
        self.graph = graph
        types = graph.valueTypes()
        nextID = graph.maxValueID + 1
    }

    public mutating func input(_ type: TensorType) -> ValueID {
        let id = nextID
        nextID += 1
        graph.inputs.append(GraphInput(id: id, type: type))
        types[id] = type
        return id
    }

    public func type(of v: ValueID) -> TensorType {
        guard let t = types[v] else { preconditionFailure("value %\(v) has no type") }
        return t
    }

    public func shape(of v: ValueID) -> [Int] { type(of: v).shape }

    /// Appends an op; its result type is inferred by the op's shape rule (or given, for weights).
    @discardableResult
    public mutating func add(_ kind: OpKind, _ operands: [ValueID], _ attributes: Attributes = [:],
                             type declared: TensorType? = nil, scope subscope: String? = nil) throws -> ValueID {
        let id = nextID
        nextID += 1
        var op = Operation(kind: kind, operands: operands, attributes: attributes, result: id, type: declared,
                           scope: subscope.map { scope.isEmpty ? $0 : "\(scope).\($0)" } ?? scope)
        do {
            op.type = try ShapeRules.resultType(of: op, operands: operands.map { type(of: $0) })
        } catch let e as HybridError {
            throw HybridError(e.message, at: op.label)
        }
        graph.ops.append(op)
        types[id] = op.type
        return id
    }

    /// A named weight value of the given shape.
    public mutating func weight(_ name: String, _ shape: [Int]) throws -> ValueID {
        try add(.weight, [], ["name": .string(name)], type: TensorType(.f32, shape), scope: nil)
    }

    public mutating func output(_ values: ValueID...) {
        graph.outputs.append(contentsOf: values)
    }
}
