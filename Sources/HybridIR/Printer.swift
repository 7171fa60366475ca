/// Prints a graph in the canonical text form: values numbered in order, attributes sorted, one op per line.
public enum Printer {
    public static func print(_ graph: Graph) -> String {
        let g = graph.renumbered()
        var out = "graph @\(g.name)("
        out += g.inputs.map { "%\($0.id): \($0.type)" }.joined(separator: ", ")
        out += ")"
        if !g.attributes.values.isEmpty {
            out += " attributes {" + g.attributes.values.keys.sorted().map { "\($0) = \(g.attributes.values[$0]!)" }
                .joined(separator: ", ") + "}"
        }
        out += " {\n"
        for op in g.ops { out += "  " + line(op) + "\n" }
        out += "  return " + g.outputs.map { "%\($0)" }.joined(separator: ", ") + "\n}\n"
        return out
    }

    /// One op as it appears in the text form (without indentation).
    public static func line(_ op: Operation) -> String {
        var s = "%\(op.result) = \(op.kind.name)"
        if !op.operands.isEmpty || op.kind != .weight {
            s += "(" + op.operands.map { "%\($0)" }.joined(separator: ", ") + ")"
        }
        if !op.attributes.values.isEmpty {
            let attrs = op.attributes.values.keys.sorted().map { "\($0) = \(op.attributes.values[$0]!)" }
            s += " {" + attrs.joined(separator: ", ") + "}"
        }
        if let t = op.type { s += " : \(t)" }
        if !op.scope.isEmpty { s += " loc(\(Attribute.quote(op.scope)))" }
        return s
    }
}
