import Foundation
import HybridIR

/// Reader and writer of the safetensors weight format.
///
/// Layout: an 8-byte little-endian `u64` header length `N`, then `N` bytes of UTF-8 JSON mapping each
/// tensor name to `{"dtype": ..., "shape": [...], "data_offsets": [begin, end]}` (offsets relative to
/// the first byte after the header), then the raw little-endian tensor data. An optional
/// `__metadata__` entry maps strings to strings and is skipped.
///
/// hybridc reads `F32`, `F16` and `BF16` tensors (the half formats are widened to `Float`) and writes `F32`.
///
/// The reader validates the whole header before allocating any tensor storage. The only allocations
/// proportional to the input are the parsed header and the tensor buffers. Tensor buffers hold `Float`s,
/// so an `F32` tensor allocates exactly its validated byte range and an `F16`/`BF16` tensor allocates twice
/// its validated byte range; since validated ranges never overlap, the tensor buffers of a file total at
/// most twice the file size.
public enum Safetensors {
    /// The largest header accepted (the same bound as the reference implementation).
    public static let maxHeaderBytes = 100_000_000

    /// The command that converts a PyTorch checkpoint, shown when one is given instead of safetensors.
    static let convertCommand = "python3 scripts/convert_pth.py"

    enum DType {
        case f32, f16, bf16

        init?(_ name: String) {
            switch name {
            case "F32": self = .f32
            case "F16": self = .f16
            case "BF16": self = .bf16
            default: return nil
            }
        }

        var size: Int { self == .f32 ? 4 : 2 }
        var name: String {
            switch self {
            case .f32: return "F32"
            case .f16: return "F16"
            case .bf16: return "BF16"
            }
        }
    }

    struct Entry {
        var name: String
        var dtype: DType
        var shape: [Int]
        var count: Int
        var begin: Int
        var end: Int
    }

    // MARK: - Reading

    /// Reads and decodes the safetensors file at `path`.
    public static func read(path: String) throws -> WeightStore {
        if isPyTorchPath(path) {
            throw pyTorchError(path)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw HybridError("no such file: \(path) (expected a .safetensors weights file)", at: path)
        }
        if isDirectory.boolValue {
            throw HybridError("\(path) is a directory, expected a .safetensors weights file", at: path)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HybridError("cannot read file \(path)", at: path)
        }
        return try decode(bytes: [UInt8](data), source: path)
    }

    /// Decodes safetensors `bytes`. `source` (normally the file path) is the location of every error.
    /// `allocationObserver` is called with the byte count of every tensor buffer before it is allocated.
    public static func decode(
        bytes: [UInt8], source: String, allocationObserver: ((Int) -> Void)? = nil
    ) throws -> WeightStore {
        do {
            return try decodeChecked(bytes: bytes, source: source, allocationObserver: allocationObserver)
        } catch let error as HybridError {
            // Only when the bytes are not a valid safetensors file: point PyTorch checkpoints at the converter.
            if looksLikePyTorch(bytes) { throw pyTorchError(source) }
            throw error
        }
    }

    static func isPyTorchPath(_ path: String) -> Bool {
        let lower = path.lowercased()
        return lower.hasSuffix(".pth") || lower.hasSuffix(".pt") || lower.hasSuffix(".ckpt")
    }

    /// A zip archive (`torch.save` since PyTorch 1.6) or a raw pickle stream (protocol 2...5).
    static func looksLikePyTorch(_ bytes: [UInt8]) -> Bool {
        if bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B && bytes[2] == 0x03 && bytes[3] == 0x04 {
            return true
        }
        return bytes.count >= 2 && bytes[0] == 0x80 && (2...5).contains(bytes[1])
    }

    static func pyTorchError(_ path: String) -> HybridError {
        var stem = (path as NSString).deletingPathExtension
        if stem.isEmpty { stem = "weights" }
        return HybridError(
            "\(path) is a PyTorch checkpoint (pickle/zip), not a safetensors file; convert it first with: "
                + "\(convertCommand) \(path) \(stem).safetensors",
            at: path)
    }

    static func decodeChecked(
        bytes: [UInt8], source: String, allocationObserver: ((Int) -> Void)?
    ) throws -> WeightStore {
        func fail(_ message: String) -> HybridError { HybridError(message, at: source) }

        guard bytes.count >= 8 else {
            throw fail("file is truncated: \(bytes.count) bytes, but a safetensors file starts with an 8-byte header length")
        }
        var headerLength64: UInt64 = 0
        for k in 0..<8 { headerLength64 |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        let afterLength = bytes.count - 8
        guard headerLength64 <= UInt64(afterLength) else {
            throw fail("header length \(headerLength64) exceeds the file size: only \(afterLength) bytes follow the 8-byte length field (truncated file?)")
        }
        let headerLength = Int(headerLength64)  // <= bytes.count, so it fits
        guard headerLength <= maxHeaderBytes else {
            throw fail("header length \(headerLength) exceeds the \(maxHeaderBytes)-byte limit")
        }
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart

        let header = try JSONHeader.parse(bytes, range: 8..<dataStart, baseOffset: 8, source: source)
        guard case .object(let members) = header else {
            throw fail("header is not a JSON object (found \(header.typeName))")
        }

        // Validate every entry before allocating any tensor storage.
        var entries: [Entry] = []
        entries.reserveCapacity(members.count)
        for member in members {
            if member.key == "__metadata__" {
                try checkMetadata(member.value, fail: fail)
                continue
            }
            entries.append(try validateEntry(name: member.key, value: member.value, dataLength: dataLength, fail: fail))
        }

        let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var index = 1
        while index < sorted.count {
            let previous = sorted[index - 1]
            let current = sorted[index]
            if current.begin < previous.end {
                throw fail(
                    "tensors \(previous.name) and \(current.name) overlap: data_offsets [\(previous.begin), \(previous.end)] and [\(current.begin), \(current.end)]")
            }
            index += 1
        }

        var store: WeightStore = [:]
        store.reserveCapacity(entries.count)
        bytes.withUnsafeBytes { raw in
            for entry in entries {
                allocationObserver?(entry.count * MemoryLayout<Float>.size)
                let data = convert(raw, offset: dataStart + entry.begin, count: entry.count, dtype: entry.dtype)
                store[entry.name] = Tensor(shape: entry.shape, data: data)
            }
        }
        return store
    }

    static func checkMetadata(_ value: JSONHeader.Value, fail: (String) -> HybridError) throws {
        guard case .object(let members) = value else {
            throw fail("__metadata__ must be an object mapping strings to strings, found \(value.typeName)")
        }
        for member in members {
            guard case .string = member.value else {
                throw fail("__metadata__ must map strings to strings, but \(member.key) is \(member.value.typeName)")
            }
        }
    }

    static func validateEntry(
        name: String, value: JSONHeader.Value, dataLength: Int, fail: (String) -> HybridError
    ) throws -> Entry {
        guard case .object = value else {
            throw fail("tensor \(name): entry is \(value.typeName), expected an object with dtype, shape and data_offsets")
        }

        guard let dtypeValue = value["dtype"] else { throw fail("tensor \(name): missing \"dtype\"") }
        guard case .string(let dtypeName) = dtypeValue else {
            throw fail("tensor \(name): \"dtype\" must be a string, found \(dtypeValue.typeName)")
        }
        guard let dtype = DType(dtypeName) else {
            throw fail("unsupported dtype \(dtypeName.isEmpty ? "\"\"" : dtypeName) for tensor \(name) (hybridc reads F32, F16, BF16)")
        }

        guard let shapeValue = value["shape"] else { throw fail("tensor \(name): missing \"shape\"") }
        guard case .array(let dims) = shapeValue else {
            throw fail("tensor \(name): \"shape\" must be an array of integers, found \(shapeValue.typeName)")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        // The product of the non-zero dimensions must fit in Int (so the shape is sane whatever the
        // order of its dimensions); a zero dimension then makes the element count zero.
        var nonZeroProduct = 1
        var hasZero = false
        var countOverflows = false
        for dim in dims {
            switch dim {
            case .integer(let d):
                guard d >= 0 else { throw fail("tensor \(name): negative dimension \(d) in shape") }
                shape.append(d)
                if d == 0 { hasZero = true; continue }
                let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: d)
                if overflow { countOverflows = true } else { nonZeroProduct = product }
            case .double(let d):
                if d.rounded() == d && abs(d) >= 9.223372036854775808e18 {
                    throw fail("tensor \(name): dimension \(render(dim)) in shape is too large")
                }
                throw fail("tensor \(name): non-integer dimension \(render(dim)) in shape")
            default:
                throw fail("tensor \(name): \"shape\" must contain integers, found \(dim.typeName)")
            }
        }
        if countOverflows {
            throw fail("tensor \(name): element count of shape \(render(shapeValue)) overflows")
        }
        let count = hasZero ? 0 : nonZeroProduct
        let (byteCount, byteOverflow) = count.multipliedReportingOverflow(by: dtype.size)
        if byteOverflow {
            throw fail("tensor \(name): byte size of shape \(render(shapeValue)) overflows")
        }

        guard let offsetsValue = value["data_offsets"] else { throw fail("tensor \(name): missing \"data_offsets\"") }
        guard case .array(let offsets) = offsetsValue, offsets.count == 2,
            case .integer(let begin) = offsets[0], case .integer(let end) = offsets[1],
            begin >= 0, begin <= end
        else {
            throw fail("tensor \(name): data_offsets must be two ascending non-negative integers [begin, end], found \(render(offsetsValue))")
        }
        let span = end - begin  // 0 <= begin <= end, so no overflow
        guard span == byteCount else {
            throw fail(
                "tensor \(name): data_offsets [\(begin), \(end)] span \(span) bytes but shape \(render(shapeValue)) of \(dtype.name) needs \(byteCount) bytes")
        }
        guard end <= dataLength else {
            throw fail(
                "tensor \(name): data_offsets [\(begin), \(end)] run past the end of the file (the data region after the header has \(dataLength) bytes)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, count: count, begin: begin, end: end)
    }

    /// Converts `count` little-endian elements of `dtype` starting at byte `offset` (any alignment) to Floats.
    /// The caller has checked that the range lies inside `raw`.
    static func convert(_ raw: UnsafeRawBufferPointer, offset: Int, count: Int, dtype: DType) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            switch dtype {
            case .f32:
                #if _endian(little)
                if count > 0, let destination = buffer.baseAddress, let base = raw.baseAddress {
                    UnsafeMutableRawPointer(destination).copyMemory(from: base + offset, byteCount: count * 4)
                }
                #else
                for i in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: offset + 4 * i, as: UInt32.self)
                    buffer[i] = Float(bitPattern: UInt32(littleEndian: bits))
                }
                #endif
            case .f16:
                for i in 0..<count {
                    let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 2 * i, as: UInt16.self))
                    buffer[i] = halfToFloat(bits)
                }
            case .bf16:
                for i in 0..<count {
                    let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 2 * i, as: UInt16.self))
                    buffer[i] = Float(bitPattern: UInt32(bits) << 16)
                }
            }
            initialized = count
        }
    }

    /// IEEE 754 binary16 to binary32, exact for every value including subnormals, infinities and NaNs
    /// (NaN payloads are kept).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa × 2^-24, exact in Float.
            let magnitude = Float(mantissa) * Float(bitPattern: 0x3380_0000)  // 2^-24
            return sign != 0 ? -magnitude : magnitude
        case 0x1F:
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        default:
            return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
        }
    }

    /// A compact, length-bounded JSON rendering of a header value for error messages.
    static func render(_ value: JSONHeader.Value) -> String {
        var out = ""
        renderInto(&out, value, depth: 0)
        if out.count > 80 { out = String(out.prefix(77)) + "..." }
        return out
    }

    private static func renderInto(_ out: inout String, _ value: JSONHeader.Value, depth: Int) {
        if out.count > 80 { return }
        switch value {
        case .object(let members):
            if depth > 3 { out += "{...}"; return }
            out += "{"
            for (i, member) in members.enumerated() {
                if out.count > 80 { break }
                if i > 0 { out += ", " }
                out += jsonQuoted(member.key) + ": "
                renderInto(&out, member.value, depth: depth + 1)
            }
            out += "}"
        case .array(let elements):
            if depth > 3 { out += "[...]"; return }
            out += "["
            for (i, element) in elements.enumerated() {
                if out.count > 80 { break }
                if i > 0 { out += ", " }
                renderInto(&out, element, depth: depth + 1)
            }
            out += "]"
        case .string(let s): out += jsonQuoted(s.count > 40 ? String(s.prefix(40)) + "..." : s)
        case .integer(let i): out += String(i)
        case .double(let d): out += String(d)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }

    // MARK: - Writing

    /// Encodes `weights` as safetensors: F32 little-endian, keys sorted, the header padded with spaces
    /// to a multiple of 8 bytes. A tensor named `__metadata__` cannot be represented and is skipped
    /// (`write` rejects it).
    public static func encode(_ weights: WeightStore, metadata: [String: String] = [:]) -> [UInt8] {
        let names = weights.keys.filter { $0 != "__metadata__" }.sorted()
        var header = "{"
        var first = true
        if !metadata.isEmpty {
            header += jsonQuoted("__metadata__") + ":{"
            for (i, key) in metadata.keys.sorted().enumerated() {
                if i > 0 { header += "," }
                header += jsonQuoted(key) + ":" + jsonQuoted(metadata[key] ?? "")
            }
            header += "}"
            first = false
        }
        var offset = 0
        for name in names {
            guard let tensor = weights[name] else { continue }
            let byteCount = tensor.data.count * 4
            if !first { header += "," }
            first = false
            header += jsonQuoted(name) + ":{\"dtype\":\"F32\",\"shape\":["
            header += tensor.shape.map(String.init).joined(separator: ",")
            header += "],\"data_offsets\":[\(offset),\(offset + byteCount)]}"
            offset += byteCount
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }

        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + offset)
        let length = UInt64(headerBytes.count)
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(k)))) }
        out.append(contentsOf: headerBytes)
        for name in names {
            guard let tensor = weights[name] else { continue }
            appendLittleEndian(tensor.data, to: &out)
        }
        return out
    }

    /// Encodes `weights` (see `encode`) and writes them to `path`.
    public static func write(_ weights: WeightStore, metadata: [String: String] = [:], to path: String) throws {
        if weights["__metadata__"] != nil {
            throw HybridError("a tensor cannot be named __metadata__ in a safetensors file", at: path)
        }
        let bytes = encode(weights, metadata: metadata)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            throw HybridError("cannot write \(path): \(error.localizedDescription)", at: path)
        }
    }

    static func appendLittleEndian(_ values: [Float], to out: inout [UInt8]) {
        #if _endian(little)
        values.withUnsafeBytes { out.append(contentsOf: $0) }
        #else
        for value in values {
            let bits = value.bitPattern
            out.append(UInt8(truncatingIfNeeded: bits))
            out.append(UInt8(truncatingIfNeeded: bits >> 8))
            out.append(UInt8(truncatingIfNeeded: bits >> 16))
            out.append(UInt8(truncatingIfNeeded: bits >> 24))
        }
        #endif
    }

    /// `s` as a JSON string literal.
    static func jsonQuoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
