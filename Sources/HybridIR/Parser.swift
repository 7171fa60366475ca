/// Reads the text form back into a graph; errors carry file, line and column.
public struct Parser {
    private enum Token: Equatable {
        case value(Int)          // %12
        case symbol(String)      // @name
        case identifier(String)  // conv2d, f32, true
        case int(Int)
        case float(Double)
        case string(String)
        case punct(Character)    // ( ) [ ] { } , = :
        case end
    }

    private var chars: [Character]
    private var pos = 0
    private var line = 1
    private var column = 1
    private let source: String
    private var token: Token = .end
    private var tokenLine = 1
    private var tokenColumn = 1

    /// Parses one graph from `text`; `source` names the file in messages.
    public static func parse(_ text: String, source: String = "<input>") throws -> Graph {
        var p = Parser(text: text, source: source)
        try p.advance()
        let g = try p.parseGraph()
        guard p.token == .end else { throw p.error("unexpected text after the graph") }
        return g
    }

    private init(text: String, source: String) {
        self.chars = Array(text)
        self.source = source
    }

    private func error(_ message: String) -> HybridError {
        HybridError(message, at: "\(source):\(tokenLine):\(tokenColumn)")
    }

    // MARK: lexer

    private mutating func bump() -> Character {
        let c = chars[pos]
        pos += 1
        if c == "\n" { line += 1; column = 1 } else { column += 1 }
        return c
    }

    private mutating func advance() throws {
        while pos < chars.count {
            let c = chars[pos]
            if c.isWhitespace { _ = bump(); continue }
            if c == "/" && pos + 1 < chars.count && chars[pos + 1] == "/" {
                while pos < chars.count && chars[pos] != "\n" { _ = bump() }
                continue
            }
            break
        }
        tokenLine = line
        tokenColumn = column
        guard pos < chars.count else { token = .end; return }
        let c = chars[pos]
        if c == "%" {
            _ = bump()
            let digits = takeWhile { $0.isNumber }
            guard let n = Int(digits) else { throw error("expected a value number after '%'") }
            token = .value(n)
        } else if c == "@" {
            _ = bump()
            let name = takeWhile { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }
            guard !name.isEmpty else { throw error("expected a name after '@'") }
            token = .symbol(name)
        } else if c.isLetter || c == "_" {
            token = .identifier(takeWhile { $0.isLetter || $0.isNumber || $0 == "_" })
        } else if c.isNumber || c == "-" || c == "+" {
            let text = takeWhile { $0.isNumber || "+-.eE".contains($0) || $0.isLetter }
            if text.contains(".") || text.contains("e") || text.contains("E") || text.contains("n") || text.contains("i") {
                guard let v = Double(text) else { throw error("malformed number '\(text)'") }
                token = .float(v)
            } else {
                guard let v = Int(text) else { throw error("malformed integer '\(text)'") }
                token = .int(v)
            }
        } else if c == "\"" {
            _ = bump()
            var s = ""
            while true {
                guard pos < chars.count else { throw error("unterminated string") }
                let ch = bump()
                if ch == "\"" { break }
                if ch == "\\" {
                    guard pos < chars.count else { throw error("unterminated string") }
                    let esc = bump()
                    switch esc {
                    case "n": s.append("\n")
                    case "\"", "\\": s.append(esc)
                    default: throw error("unknown escape '\\\(esc)' in string")
                    }
                } else {
                    s.append(ch)
                }
            }
            token = .string(s)
        } else if "()[]{},=:".contains(c) {
            token = .punct(bump())
        } else {
            throw error("unexpected character '\(c)'")
        }
    }

    private mutating func takeWhile(_ pred: (Character) -> Bool) -> String {
        var s = ""
        while pos < chars.count && pred(chars[pos]) { s.append(bump()) }
        return s
    }

    private mutating func expect(_ p: Character) throws {
        guard token == .punct(p) else { throw error("expected '\(p)'") }
        try advance()
    }

    private mutating func accept(_ p: Character) throws -> Bool {
        guard token == .punct(p) else { return false }
        try advance()
        return true
    }

    // MARK: grammar

    private mutating func parseGraph() throws -> Graph {
        guard token == .identifier("graph") else { throw error("expected 'graph'") }
        try advance()
        guard case .symbol(let name) = token else { throw error("expected the graph name '@name'") }
        try advance()
        var graph = Graph(name: name)
        var defined = Set<Int>()
        try expect("(")
        if !(try accept(")")) {
            repeat {
                guard case .value(let id) = token else { throw error("expected an input value '%N'") }
                guard defined.insert(id).inserted else { throw error("value %\(id) is defined twice") }
                try advance()
                try expect(":")
                graph.inputs.append(GraphInput(id: id, type: try parseType()))
            } while try accept(",")
            try expect(")")
        }
        if token == .identifier("attributes") {
            try advance()
            try expect("{")
            graph.attributes = try parseAttributeList()
        }
        try expect("{")
        while true {
            if token == .identifier("return") {
                try advance()
                repeat {
                    guard case .value(let id) = token else { throw error("expected a returned value '%N'") }
                    guard defined.contains(id) else { throw error("returned value %\(id) is not defined") }
                    graph.outputs.append(id)
                    try advance()
                } while try accept(",")
                try expect("}")
                return graph
            }
            let op = try parseOp(defined: defined)
            defined.insert(op.result)
            graph.ops.append(op)
        }
    }

    private mutating func parseOp(defined: Set<Int>) throws -> Operation {
        guard case .value(let result) = token else { throw error("expected '%N = op(...)' or 'return'") }
        guard !defined.contains(result) else { throw error("value %\(result) is defined twice") }
        try advance()
        try expect("=")
        guard case .identifier(let name) = token else { throw error("expected an op name") }
        guard let kind = OpKind(rawValue: name) else {
            throw error("unknown op '\(name)'")
        }
        try advance()
        var operands: [Int] = []
        if try accept("(") {
            if !(try accept(")")) {
                repeat {
                    guard case .value(let id) = token else { throw error("expected an operand '%N'") }
                    guard defined.contains(id) else { throw error("operand %\(id) is used before it is defined") }
                    operands.append(id)
                    try advance()
                } while try accept(",")
                try expect(")")
            }
        }
        var attributes = Attributes()
        if try accept("{") { attributes = try parseAttributeList() }
        var type: TensorType?
        if try accept(":") { type = try parseType() }
        var scope = ""
        if token == .identifier("loc") {
            try advance()
            try expect("(")
            guard case .string(let s) = token else { throw error("expected a quoted location") }
            scope = s
            try advance()
            try expect(")")
        }
        return Operation(kind: kind, operands: operands, attributes: attributes, result: result, type: type, scope: scope)
    }

    /// `key = value, ...}` after an opening brace.
    private mutating func parseAttributeList() throws -> Attributes {
        var attributes = Attributes()
        if !(try accept("}")) {
            repeat {
                guard case .identifier(let key) = token else { throw error("expected an attribute name") }
                guard attributes[key] == nil else { throw error("attribute '\(key)' is given twice") }
                try advance()
                try expect("=")
                attributes[key] = try parseAttribute()
            } while try accept(",")
            try expect("}")
        }
        return attributes
    }

    private mutating func parseAttribute() throws -> Attribute {
        switch token {
        case .int(let v): try advance(); return .int(v)
        case .float(let v): try advance(); return .float(v)
        case .string(let s): try advance(); return .string(s)
        case .identifier("true"): try advance(); return .bool(true)
        case .identifier("false"): try advance(); return .bool(false)
        case .punct("["):
            try advance()
            var values: [Int] = []
            if !(try accept("]")) {
                repeat {
                    guard case .int(let v) = token else { throw error("expected an integer in the list") }
                    values.append(v)
                    try advance()
                } while try accept(",")
                try expect("]")
            }
            return .ints(values)
        default:
            throw error("expected an attribute value")
        }
    }

    private mutating func parseType() throws -> TensorType {
        guard case .identifier(let name) = token, let elem = ElementType(rawValue: name) else {
            throw error("expected a tensor type such as f32[1,3,8,8]")
        }
        try advance()
        try expect("[")
        var shape: [Int] = []
        if !(try accept("]")) {
            repeat {
                guard case .int(let v) = token, v > 0 else { throw error("expected a positive dimension") }
                shape.append(v)
                try advance()
            } while try accept(",")
            try expect("]")
        }
        return TensorType(elem, shape)
    }
}
