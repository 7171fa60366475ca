import Foundation
import HybridIR

/// A small, strict, bounded JSON parser for safetensors headers.
///
/// It accepts exactly RFC 8259 JSON (objects, arrays, strings with all escapes including `\uXXXX`
/// and surrogate pairs, numbers, `true`/`false`/`null`), rejects duplicate object keys, limits
/// nesting to `maxDepth`, and never traps on any input: every index is bounds-checked and all
/// arithmetic on input-derived values uses overflow-reporting operations. Errors are `HybridError`s
/// located at `source` whose message names the byte offset of the problem.
public enum JSONHeader {
    /// One member of a JSON object, in document order.
    public struct Member: Equatable {
        public var key: String
        public var value: Value

        public init(key: String, value: Value) {
            self.key = key
            self.value = value
        }
    }

    /// A parsed JSON value.
    public indirect enum Value: Equatable {
        /// Object members in document order (keys are unique: duplicates are rejected).
        case object([Member])
        case array([Value])
        case string(String)
        /// A number written without fraction or exponent that fits in `Int`.
        case integer(Int)
        /// Any other number (with a fraction or exponent, or an integer too large for `Int`).
        case double(Double)
        case bool(Bool)
        case null

        /// The value of `key` if this is an object that has it.
        public subscript(key: String) -> Value? {
            guard case .object(let members) = self else { return nil }
            for member in members where member.key == key { return member.value }
            return nil
        }

        /// A short name of the value's JSON type, for error messages.
        public var typeName: String {
            switch self {
            case .object: return "an object"
            case .array: return "an array"
            case .string: return "a string"
            case .integer, .double: return "a number"
            case .bool: return "a boolean"
            case .null: return "null"
            }
        }
    }

    /// The deepest nesting of arrays and objects accepted.
    public static let maxDepth = 64

    /// Parses `bytes` as one JSON document (surrounding whitespace allowed).
    public static func parse(_ bytes: [UInt8], source: String) throws -> Value {
        try parse(bytes, range: 0..<bytes.count, baseOffset: 0, source: source)
    }

    /// Parses `bytes[range]` as one JSON document. Byte offsets in error messages are
    /// `baseOffset + (index - range.lowerBound)`, so a caller can report offsets within a larger file.
    public static func parse(_ bytes: [UInt8], range: Range<Int>, baseOffset: Int, source: String) throws -> Value {
        let lower = max(0, min(range.lowerBound, bytes.count))
        let upper = max(lower, min(range.upperBound, bytes.count))
        var parser = Parser(bytes: bytes, start: lower, end: upper, baseOffset: baseOffset, source: source)
        return try parser.parseDocument()
    }

    /// Returns the index of the first byte that is not part of well-formed UTF-8 in `bytes[start..<end]`,
    /// or nil if the range is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
    static func firstInvalidUTF8(_ bytes: [UInt8], start: Int, end: Int) -> Int? {
        var i = start
        while i < end {
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            var need = 0
            var lo: UInt8 = 0x80
            var hi: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; hi = 0x9F
            case 0xF0: need = 3; lo = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; hi = 0x8F
            default: return i
            }
            if end - i <= need { return i }
            let b1 = bytes[i + 1]
            if b1 < lo || b1 > hi { return i }
            var k = 2
            while k <= need {
                let b = bytes[i + k]
                if b < 0x80 || b > 0xBF { return i }
                k += 1
            }
            i += need + 1
        }
        return nil
    }

    private struct Parser {
        let bytes: [UInt8]
        var pos: Int
        let start: Int
        let end: Int
        let baseOffset: Int
        let source: String

        init(bytes: [UInt8], start: Int, end: Int, baseOffset: Int, source: String) {
            self.bytes = bytes
            self.pos = start
            self.start = start
            self.end = end
            self.baseOffset = baseOffset
            self.source = source
        }

        func offset(_ index: Int) -> Int {
            let (relative, o1) = index.subtractingReportingOverflow(start)
            let (absolute, o2) = baseOffset.addingReportingOverflow(relative)
            return (o1 || o2) ? index : absolute
        }

        func fail(_ what: String, at index: Int) -> HybridError {
            HybridError("header is not valid JSON: \(what) at byte \(offset(index))", at: source)
        }

        func describe(_ index: Int) -> String {
            guard index < end else { return "end of header" }
            let b = bytes[index]
            if b >= 0x21 && b < 0x7F { return "character '\(Character(Unicode.Scalar(b)))'" }
            return "byte 0x\(String(b, radix: 16, uppercase: true))"
        }

        mutating func parseDocument() throws -> Value {
            if let bad = JSONHeader.firstInvalidUTF8(bytes, start: start, end: end) {
                throw HybridError("header is not valid UTF-8 (not valid JSON) at byte \(offset(bad))", at: source)
            }
            skipWhitespace()
            let value = try parseValue(depth: 0)
            skipWhitespace()
            if pos < end {
                throw fail("unexpected \(describe(pos)) after the top-level value", at: pos)
            }
            return value
        }

        mutating func skipWhitespace() {
            while pos < end {
                switch bytes[pos] {
                case 0x20, 0x09, 0x0A, 0x0D: pos += 1
                default: return
                }
            }
        }

        mutating func parseValue(depth: Int) throws -> Value {
            guard pos < end else { throw fail("unexpected end of header, expected a value", at: pos) }
            switch bytes[pos] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try expectLiteral("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw fail("unexpected \(describe(pos)), expected a value", at: pos)
            }
        }

        mutating func expectLiteral(_ literal: StaticString) throws {
            let begin = pos
            let text = literal.utf8Start
            for k in 0..<literal.utf8CodeUnitCount {
                guard pos < end, bytes[pos] == text[k] else {
                    throw fail("invalid literal, expected '\(literal)'", at: begin)
                }
                pos += 1
            }
        }

        mutating func parseObject(depth: Int) throws -> Value {
            if depth > JSONHeader.maxDepth {
                throw fail("nesting deeper than \(JSONHeader.maxDepth) levels", at: pos)
            }
            pos += 1  // '{'
            var members: [Member] = []
            var seen = Set<String>()
            skipWhitespace()
            if pos < end && bytes[pos] == UInt8(ascii: "}") {
                pos += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard pos < end, bytes[pos] == UInt8(ascii: "\"") else {
                    throw fail("unexpected \(describe(pos)), expected a string key", at: pos)
                }
                let keyStart = pos
                let key = try parseString()
                if !seen.insert(key).inserted {
                    throw fail("duplicate key \"\(key)\"", at: keyStart)
                }
                skipWhitespace()
                guard pos < end, bytes[pos] == UInt8(ascii: ":") else {
                    throw fail("unexpected \(describe(pos)), expected ':'", at: pos)
                }
                pos += 1
                skipWhitespace()
                let value = try parseValue(depth: depth)
                members.append(Member(key: key, value: value))
                skipWhitespace()
                guard pos < end else { throw fail("unterminated object, expected ',' or '}'", at: pos) }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
                throw fail("unexpected \(describe(pos)), expected ',' or '}'", at: pos)
            }
        }

        mutating func parseArray(depth: Int) throws -> Value {
            if depth > JSONHeader.maxDepth {
                throw fail("nesting deeper than \(JSONHeader.maxDepth) levels", at: pos)
            }
            pos += 1  // '['
            var elements: [Value] = []
            skipWhitespace()
            if pos < end && bytes[pos] == UInt8(ascii: "]") {
                pos += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth))
                skipWhitespace()
                guard pos < end else { throw fail("unterminated array, expected ',' or ']'", at: pos) }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(elements) }
                throw fail("unexpected \(describe(pos)), expected ',' or ']'", at: pos)
            }
        }

        /// Parses a string starting at the opening quote. The input is already known to be valid UTF-8.
        mutating func parseString() throws -> String {
            let open = pos
            pos += 1  // '"'
            var out: [UInt8] = []
            while true {
                guard pos < end else { throw fail("unterminated string", at: open) }
                let b = bytes[pos]
                if b == UInt8(ascii: "\"") {
                    pos += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if b < 0x20 {
                    throw fail("unescaped control character 0x\(String(b, radix: 16, uppercase: true)) in string", at: pos)
                }
                if b != UInt8(ascii: "\\") {
                    out.append(b)
                    pos += 1
                    continue
                }
                let escapeStart = pos
                pos += 1
                guard pos < end else { throw fail("unterminated escape sequence", at: escapeStart) }
                let e = bytes[pos]
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    let first = try parseHex4(escapeStart: escapeStart)
                    var scalarValue = UInt32(first)
                    if first >= 0xD800 && first <= 0xDBFF {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard pos + 1 < end, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                            throw fail("unpaired high surrogate \\u\(hex4(first)) in string", at: escapeStart)
                        }
                        let lowStart = pos
                        pos += 2
                        let second = try parseHex4(escapeStart: lowStart)
                        guard second >= 0xDC00 && second <= 0xDFFF else {
                            throw fail("high surrogate \\u\(hex4(first)) not followed by a low surrogate", at: lowStart)
                        }
                        scalarValue = 0x10000 + ((UInt32(first) - 0xD800) << 10) + (UInt32(second) - 0xDC00)
                    } else if first >= 0xDC00 && first <= 0xDFFF {
                        throw fail("unpaired low surrogate \\u\(hex4(first)) in string", at: escapeStart)
                    }
                    guard let scalar = Unicode.Scalar(scalarValue) else {
                        throw fail("invalid unicode escape", at: escapeStart)
                    }
                    UTF8.encode(scalar) { out.append($0) }
                default:
                    throw fail("invalid escape sequence '\\\(describeEscape(e))' in string", at: escapeStart)
                }
            }
        }

        func describeEscape(_ b: UInt8) -> String {
            if b >= 0x21 && b < 0x7F { return String(Character(Unicode.Scalar(b))) }
            return "0x" + String(b, radix: 16, uppercase: true)
        }

        func hex4(_ v: UInt16) -> String {
            let s = String(v, radix: 16, uppercase: true)
            return String(repeating: "0", count: max(0, 4 - s.count)) + s
        }

        /// Reads the four hex digits after `\u`.
        mutating func parseHex4(escapeStart: Int) throws -> UInt16 {
            var value: UInt16 = 0
            for _ in 0..<4 {
                guard pos < end else { throw fail("truncated \\u escape", at: escapeStart) }
                let c = bytes[pos]
                let digit: UInt16
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt16(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt16(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt16(c - UInt8(ascii: "A") + 10)
                default: throw fail("invalid hex digit in \\u escape", at: escapeStart)
                }
                value = (value << 4) | digit
                pos += 1
            }
            return value
        }

        /// Parses `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
        mutating func parseNumber() throws -> Value {
            let begin = pos
            var negative = false
            if bytes[pos] == UInt8(ascii: "-") {
                negative = true
                pos += 1
            }
            func isDigit(_ i: Int) -> Bool {
                i < end && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9")
            }
            guard isDigit(pos) else { throw fail("invalid number, expected a digit", at: pos) }
            // Accumulate the integer part as a negative value so Int.min is representable.
            var accumulator = 0
            var fitsInt = true
            if bytes[pos] == UInt8(ascii: "0") {
                pos += 1
                if isDigit(pos) { throw fail("invalid number, leading zeros are not allowed", at: begin) }
            } else {
                while isDigit(pos) {
                    let digit = Int(bytes[pos] - UInt8(ascii: "0"))
                    if fitsInt {
                        let (times10, o1) = accumulator.multipliedReportingOverflow(by: 10)
                        let (next, o2) = times10.subtractingReportingOverflow(digit)
                        if o1 || o2 { fitsInt = false } else { accumulator = next }
                    }
                    pos += 1
                }
            }
            var isInteger = true
            if pos < end && bytes[pos] == UInt8(ascii: ".") {
                isInteger = false
                pos += 1
                guard isDigit(pos) else { throw fail("invalid number, expected a digit after '.'", at: pos) }
                while isDigit(pos) { pos += 1 }
            }
            if pos < end && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
                isInteger = false
                pos += 1
                if pos < end && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) { pos += 1 }
                guard isDigit(pos) else { throw fail("invalid number, expected a digit in the exponent", at: pos) }
                while isDigit(pos) { pos += 1 }
            }
            if isInteger && fitsInt {
                if negative { return .integer(accumulator) }
                let (positive, overflow) = (0).subtractingReportingOverflow(accumulator)
                if !overflow { return .integer(positive) }
            }
            let text = String(decoding: bytes[begin..<pos], as: UTF8.self)
            guard let value = Double(text) else { throw fail("invalid number", at: begin) }
            return .double(value)
        }
    }
}
