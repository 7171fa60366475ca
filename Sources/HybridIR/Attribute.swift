/// Attribute values of ops: the compile-time parameters (strides, axes, eps, weight names, ...).
public enum Attribute: Equatable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case bool(Bool)
    case string(String)
    case ints([Int])

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .float(let v): return Attribute.format(v)
        case .bool(let v): return v ? "true" : "false"
        case .string(let v): return Attribute.quote(v)
        case .ints(let v): return "[" + v.map(String.init).joined(separator: ",") + "]"
        }
    }

    /// Floats always print with a decimal point or exponent so they parse back as floats, and exactly
    /// (Swift's shortest round-trip representation).
    static func format(_ v: Double) -> String {
        var s = "\(v)"
        if !s.contains(".") && !s.contains("e") && !s.contains("n") && !s.contains("i") { s += ".0" }
        return s
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for ch in s {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out + "\""
    }
}

/// The attributes of one op, with typed accessors that fail with a message naming the attribute.
public struct Attributes: Equatable {
    public var values: [String: Attribute]

    public init(_ values: [String: Attribute] = [:]) { self.values = values }

    public subscript(_ key: String) -> Attribute? {
        get { values[key] }
        set { values[key] = newValue }
    }

    public func int(_ key: String) throws -> Int {
        guard case .int(let v)? = values[key] else { throw missing(key, "an integer") }
        return v
    }

    public func float(_ key: String) throws -> Double {
        switch values[key] {
        case .float(let v)?: return v
        case .int(let v)?: return Double(v)
        default: throw missing(key, "a float")
        }
    }

    public func bool(_ key: String) throws -> Bool {
        guard case .bool(let v)? = values[key] else { throw missing(key, "a boolean") }
        return v
    }

    public func string(_ key: String) throws -> String {
        guard case .string(let v)? = values[key] else { throw missing(key, "a string") }
        return v
    }

    public func ints(_ key: String) throws -> [Int] {
        guard case .ints(let v)? = values[key] else { throw missing(key, "a list of integers") }
        return v
    }

    public func bool(_ key: String, default value: Bool) throws -> Bool {
        values[key] == nil ? value : try bool(key)
    }

    public func int(_ key: String, default value: Int) throws -> Int {
        values[key] == nil ? value : try int(key)
    }

    private func missing(_ key: String, _ kind: String) -> HybridError {
        HybridError(values[key] == nil ? "missing attribute '\(key)'" : "attribute '\(key)' must be \(kind)")
    }
}

extension Attributes: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, Attribute)...) {
        self.values = Dictionary(uniqueKeysWithValues: elements)
    }
}
