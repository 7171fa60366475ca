import Foundation
import HybridIR

/// Reader and writer of NumPy `.npy` files holding float32 arrays.
///
/// Layout: the magic `\x93NUMPY`, a major and minor version byte, the header length (`u16` little-endian
/// for version 1.0, `u32` for 2.0 and 3.0), then the header: a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and ending in a
/// newline, then the raw array data.
///
/// hybridc reads only little-endian float32 (`'<f4'`) arrays in C order. The reader validates the header
/// and checks the data length before allocating the tensor, whose buffer is exactly the data length.
public enum Npy {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// The deepest nesting of tuples, lists and dicts accepted in a header.
    static let maxDepth = 32

    // MARK: - Reading

    /// Reads and decodes the `.npy` file at `path`.
    public static func read(path: String) throws -> Tensor {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw HybridError("no such file: \(path) (expected a .npy array file)", at: path)
        }
        if isDirectory.boolValue {
            throw HybridError("\(path) is a directory, expected a .npy array file", at: path)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HybridError("cannot read file \(path)", at: path)
        }
        return try decode(bytes: [UInt8](data), source: path)
    }

    /// Decodes `.npy` `bytes`. `source` (normally the file path) is the location of every error.
    /// `allocationObserver` is called with the byte count of the tensor buffer before it is allocated.
    public static func decode(
        bytes: [UInt8], source: String, allocationObserver: ((Int) -> Void)? = nil
    ) throws -> Tensor {
        func fail(_ message: String) -> HybridError { HybridError(message, at: source) }

        let prefix = min(bytes.count, magic.count)
        guard Array(bytes[0..<prefix]) == Array(magic[0..<prefix]) else {
            throw fail("not a .npy file: it does not start with the \\x93NUMPY magic")
        }
        guard bytes.count >= 8 else {
            throw fail("file is truncated: \(bytes.count) bytes, shorter than the .npy preamble")
        }
        let major = bytes[6]
        let minor = bytes[7]
        let headerStart: Int
        let headerLength: Int
        switch (major, minor) {
        case (1, 0):
            guard bytes.count >= 10 else { throw fail("file is truncated: the header length field is missing") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case (2, 0), (3, 0):
            guard bytes.count >= 12 else { throw fail("file is truncated: the header length field is missing") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major).\(minor) (hybridc reads 1.0, 2.0 and 3.0)")
        }
        let available = bytes.count - headerStart
        guard headerLength <= available else {
            throw fail("file is truncated: header length \(headerLength) exceeds the \(available) bytes after the preamble")
        }
        let dataStart = headerStart + headerLength

        var parser = HeaderParser(bytes: bytes, start: headerStart, end: dataStart, source: source)
        let header = try parser.parseHeader()
        guard case .dict(let items) = header else {
            throw fail("invalid .npy header: expected a dict literal, found \(header.render())")
        }
        func lookup(_ key: String) -> PyValue? {
            for (k, v) in items { if case .string(key) = k { return v } }
            return nil
        }

        guard let descr = lookup("descr") else { throw fail("invalid .npy header: no 'descr' key") }
        guard case .string("<f4") = descr else {
            throw fail("unsupported dtype \(descr.render()) in \(source): hybridc reads float32 ('<f4') arrays")
        }

        guard let fortran = lookup("fortran_order") else { throw fail("invalid .npy header: no 'fortran_order' key") }
        guard case .bool(let isFortran) = fortran else {
            throw fail("invalid .npy header: 'fortran_order' must be True or False, found \(fortran.render())")
        }
        if isFortran {
            throw fail(
                "\(source) is stored in Fortran order (fortran_order: True); hybridc reads C-order arrays: "
                    + "re-save it with np.save(path, np.ascontiguousarray(a))")
        }

        guard let shapeValue = lookup("shape") else { throw fail("invalid .npy header: no 'shape' key") }
        let dims: [PyValue]
        switch shapeValue {
        case .tuple(let elements), .list(let elements): dims = elements
        default: throw fail("invalid .npy header: 'shape' must be a tuple of integers, found \(shapeValue.render())")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        var nonZeroProduct = 1
        var hasZero = false
        for dim in dims {
            guard case .integer(let d) = dim else {
                throw fail("invalid .npy header: 'shape' must be a tuple of integers, found \(shapeValue.render())")
            }
            guard let value = d else { throw fail("invalid .npy header: dimension too large in shape \(shapeValue.render())") }
            guard value >= 0 else { throw fail("invalid .npy header: negative dimension \(value) in shape \(shapeValue.render())") }
            shape.append(value)
            if value == 0 { hasZero = true; continue }
            let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: value)
            guard !overflow else { throw fail("invalid .npy header: element count of shape \(shapeValue.render()) overflows") }
            nonZeroProduct = product
        }
        let count = hasZero ? 0 : nonZeroProduct
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: 4)
        guard !overflow else { throw fail("invalid .npy header: byte size of shape \(shapeValue.render()) overflows") }

        let actual = bytes.count - dataStart
        guard actual == byteCount else {
            let why = actual < byteCount ? "the file is truncated" : "unexpected trailing bytes"
            throw fail(
                "expected \(byteCount) bytes of float32 data for shape \(render(shape)), found \(actual) bytes after the header (\(why))")
        }

        allocationObserver?(byteCount)
        let data = bytes.withUnsafeBytes { raw in
            [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                #if _endian(little)
                if count > 0, let destination = buffer.baseAddress, let base = raw.baseAddress {
                    UnsafeMutableRawPointer(destination).copyMemory(from: base + dataStart, byteCount: byteCount)
                }
                #else
                for i in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: dataStart + 4 * i, as: UInt32.self)
                    buffer[i] = Float(bitPattern: UInt32(littleEndian: bits))
                }
                #endif
                initialized = count
            }
        }
        return Tensor(shape: shape, data: data)
    }

    /// A shape in Python tuple notation: `()`, `(3,)`, `(2, 3)`.
    static func render(_ shape: [Int]) -> String {
        if shape.count == 1 { return "(\(shape[0]),)" }
        return "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }

    // MARK: - Header literal

    /// A Python literal as found in `.npy` headers.
    indirect enum PyValue {
        case string(String)
        /// nil when the integer does not fit in `Int`.
        case integer(Int?)
        case bool(Bool)
        case none
        case tuple([PyValue])
        case list([PyValue])
        case dict([(PyValue, PyValue)])

        /// A short Python-like rendering for error messages.
        func render() -> String {
            var out = ""
            renderInto(&out, depth: 0)
            if out.count > 80 { out = String(out.prefix(77)) + "..." }
            return out
        }

        private func renderInto(_ out: inout String, depth: Int) {
            if out.count > 80 { return }
            switch self {
            case .string(let s):
                let shown = s.count > 40 ? String(s.prefix(40)) + "..." : s
                out += "'" + shown.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
            case .integer(let i): out += i.map(String.init) ?? "<too large>"
            case .bool(let b): out += b ? "True" : "False"
            case .none: out += "None"
            case .tuple(let elements), .list(let elements):
                let isTuple: Bool
                if case .tuple = self { isTuple = true } else { isTuple = false }
                if depth > 3 { out += isTuple ? "(...)" : "[...]"; return }
                out += isTuple ? "(" : "["
                for (i, element) in elements.enumerated() {
                    if out.count > 80 { break }
                    if i > 0 { out += ", " }
                    element.renderInto(&out, depth: depth + 1)
                }
                if isTuple && elements.count == 1 { out += "," }
                out += isTuple ? ")" : "]"
            case .dict(let items):
                if depth > 3 { out += "{...}"; return }
                out += "{"
                for (i, item) in items.enumerated() {
                    if out.count > 80 { break }
                    if i > 0 { out += ", " }
                    item.0.renderInto(&out, depth: depth + 1)
                    out += ": "
                    item.1.renderInto(&out, depth: depth + 1)
                }
                out += "}"
            }
        }
    }

    /// Parses the subset of Python literal syntax used in `.npy` headers: strings (optionally
    /// `u`/`b`-prefixed), integers (an old `L` suffix tolerated), True/False/None, tuples, lists and
    /// dicts, with trailing commas and arbitrary whitespace.
    struct HeaderParser {
        let bytes: [UInt8]
        var pos: Int
        let start: Int
        let end: Int
        let source: String

        init(bytes: [UInt8], start: Int, end: Int, source: String) {
            self.bytes = bytes
            self.pos = start
            self.start = start
            self.end = end
            self.source = source
        }

        func fail(_ what: String, at index: Int) -> HybridError {
            HybridError("invalid .npy header: \(what) at header byte \(index - start)", at: source)
        }

        func describe(_ index: Int) -> String {
            guard index < end else { return "end of header" }
            let b = bytes[index]
            if b >= 0x21 && b < 0x7F { return "character '\(Character(Unicode.Scalar(b)))'" }
            return "byte 0x\(String(b, radix: 16, uppercase: true))"
        }

        mutating func parseHeader() throws -> PyValue {
            skipWhitespace()
            let value = try parseValue(depth: 0)
            skipWhitespace()
            if pos < end {
                throw fail("unexpected \(describe(pos)) after the header dict", at: pos)
            }
            return value
        }

        mutating func skipWhitespace() {
            while pos < end {
                switch bytes[pos] {
                case 0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C: pos += 1
                default: return
                }
            }
        }

        func isIdentifierByte(_ b: UInt8) -> Bool {
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
        }

        mutating func parseValue(depth: Int) throws -> PyValue {
            guard depth <= Npy.maxDepth else { throw fail("nesting deeper than \(Npy.maxDepth) levels", at: pos) }
            guard pos < end else { throw fail("unexpected end of header, expected a value", at: pos) }
            let b = bytes[pos]
            switch b {
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                return .string(try parseString())
            case UInt8(ascii: "("):
                pos += 1
                return .tuple(try parseSequence(close: UInt8(ascii: ")"), depth: depth))
            case UInt8(ascii: "["):
                pos += 1
                return .list(try parseSequence(close: UInt8(ascii: "]"), depth: depth))
            case UInt8(ascii: "{"):
                pos += 1
                return try parseDict(depth: depth)
            case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return try parseInteger()
            default:
                guard isIdentifierByte(b) else { throw fail("unexpected \(describe(pos)), expected a value", at: pos) }
                let wordStart = pos
                while pos < end && isIdentifierByte(bytes[pos]) { pos += 1 }
                let word = String(decoding: bytes[wordStart..<pos], as: UTF8.self)
                switch word {
                case "True": return .bool(true)
                case "False": return .bool(false)
                case "None": return .none
                case "u", "U", "b", "B":
                    if pos < end && (bytes[pos] == UInt8(ascii: "'") || bytes[pos] == UInt8(ascii: "\"")) {
                        return .string(try parseString())
                    }
                    fallthrough
                default:
                    let shown = word.count > 20 ? String(word.prefix(20)) + "..." : word
                    throw fail("unexpected name '\(shown)', expected a value", at: wordStart)
                }
            }
        }

        /// Parses elements up to `close` (the opener already consumed); trailing comma allowed.
        mutating func parseSequence(close: UInt8, depth: Int) throws -> [PyValue] {
            var elements: [PyValue] = []
            while true {
                skipWhitespace()
                guard pos < end else { throw fail("unterminated sequence", at: pos) }
                if bytes[pos] == close { pos += 1; return elements }
                elements.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard pos < end else { throw fail("unterminated sequence", at: pos) }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == close { pos += 1; return elements }
                throw fail("unexpected \(describe(pos)), expected ',' or '\(Character(Unicode.Scalar(close)))'", at: pos)
            }
        }

        mutating func parseDict(depth: Int) throws -> PyValue {
            var items: [(PyValue, PyValue)] = []
            while true {
                skipWhitespace()
                guard pos < end else { throw fail("unterminated dict", at: pos) }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .dict(items) }
                let keyStart = pos
                let key = try parseValue(depth: depth + 1)
                if case .string(let k) = key {
                    for (existing, _) in items {
                        if case .string(k) = existing { throw fail("duplicate key '\(k)'", at: keyStart) }
                    }
                }
                skipWhitespace()
                guard pos < end, bytes[pos] == UInt8(ascii: ":") else {
                    throw fail("unexpected \(describe(pos)), expected ':'", at: pos)
                }
                pos += 1
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                items.append((key, value))
                skipWhitespace()
                guard pos < end else { throw fail("unterminated dict", at: pos) }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .dict(items) }
                throw fail("unexpected \(describe(pos)), expected ',' or '}'", at: pos)
            }
        }

        mutating func parseString() throws -> String {
            let open = pos
            let quote = bytes[pos]
            pos += 1
            var out: [UInt8] = []
            while true {
                guard pos < end else { throw fail("unterminated string", at: open) }
                let b = bytes[pos]
                if b == quote { pos += 1; return String(decoding: out, as: UTF8.self) }
                if b == 0x0A { throw fail("unterminated string", at: open) }
                if b == UInt8(ascii: "\\") {
                    pos += 1
                    guard pos < end else { throw fail("unterminated string", at: open) }
                    switch bytes[pos] {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    default: out.append(bytes[pos])
                    }
                    pos += 1
                    continue
                }
                out.append(b)
                pos += 1
            }
        }

        mutating func parseInteger() throws -> PyValue {
            let begin = pos
            var negative = false
            if bytes[pos] == UInt8(ascii: "-") || bytes[pos] == UInt8(ascii: "+") {
                negative = bytes[pos] == UInt8(ascii: "-")
                pos += 1
                skipWhitespace()
            }
            guard pos < end, bytes[pos] >= UInt8(ascii: "0"), bytes[pos] <= UInt8(ascii: "9") else {
                throw fail("invalid integer", at: begin)
            }
            var value: Int? = 0
            while pos < end, bytes[pos] >= UInt8(ascii: "0"), bytes[pos] <= UInt8(ascii: "9") {
                let digit = Int(bytes[pos] - UInt8(ascii: "0"))
                if let current = value {
                    let (times10, o1) = current.multipliedReportingOverflow(by: 10)
                    let (next, o2) = negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
                    value = (o1 || o2) ? nil : next
                }
                pos += 1
            }
            if pos < end && (bytes[pos] == UInt8(ascii: "L") || bytes[pos] == UInt8(ascii: "l")) { pos += 1 }
            if pos < end && (isIdentifierByte(bytes[pos]) || bytes[pos] == UInt8(ascii: ".")) {
                throw fail("invalid integer", at: begin)
            }
            return .integer(value)
        }
    }

    // MARK: - Writing

    /// Encodes `t` as a version 1.0 `.npy` file (version 2.0 if the header would not fit in 64 KiB),
    /// little-endian float32 in C order, the data starting at a multiple of 64 bytes.
    public static func encode(_ t: Tensor) -> [UInt8] {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': \(render(t.shape)), }"
        var header = Array(dict.utf8)
        var prefixLength = 10
        var total = prefixLength + header.count + 1
        if total - prefixLength > 0xFFFF {
            prefixLength = 12
            total = prefixLength + header.count + 1
        }
        let padding = (64 - total % 64) % 64
        header.append(contentsOf: [UInt8](repeating: 0x20, count: padding))
        header.append(0x0A)

        var out: [UInt8] = magic
        out.reserveCapacity(prefixLength + header.count + t.data.count * 4)
        let length = header.count
        if prefixLength == 10 {
            out.append(contentsOf: [1, 0, UInt8(truncatingIfNeeded: length), UInt8(truncatingIfNeeded: length >> 8)])
        } else {
            out.append(contentsOf: [2, 0])
            for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: length >> (8 * k))) }
        }
        out.append(contentsOf: header)
        Safetensors.appendLittleEndian(t.data, to: &out)
        return out
    }

    /// Encodes `t` (see `encode`) and writes it to `path`.
    public static func write(_ t: Tensor, to path: String) throws {
        let bytes = encode(t)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            throw HybridError("cannot write \(path): \(error.localizedDescription)", at: path)
        }
    }
}
