import Foundation
import HybridIR
import XCTest

@testable import Frontend

/// Deterministic PRNG for the fuzz tests (SplitMix64).
struct FormatFuzzRNG {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n (n > 0).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }

    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }
}

final class SafetensorsTests: XCTestCase {
    let source = "test.safetensors"

    // MARK: helpers

    /// A safetensors file from a raw header text and data bytes (the length field matches the header).
    func file(_ header: String, _ data: [UInt8] = []) -> [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = []
        let n = UInt64(h.count)
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(k)))) }
        return out + h + data
    }

    func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in
            let b = v.bitPattern
            return [UInt8(b & 0xFF), UInt8((b >> 8) & 0xFF), UInt8((b >> 16) & 0xFF), UInt8(b >> 24)]
        }
    }

    func u16Bytes(_ values: [UInt16]) -> [UInt8] {
        values.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
    }

    /// Asserts that decoding fails with a message containing every one of `fragments`.
    func assertFails(
        _ bytes: [UInt8], _ fragments: String..., file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let store = try Safetensors.decode(bytes: bytes, source: source)
            XCTFail("expected an error containing \(fragments), decoded \(store.keys.sorted())", file: file, line: line)
        } catch let error as HybridError {
            XCTAssertEqual(error.location, source, file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(
                    error.message.contains(fragment), "message \"\(error.message)\" does not contain \"\(fragment)\"",
                    file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error type \(error)", file: file, line: line)
        }
    }

    func tempPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hybridc-st-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.appendingPathComponent(name).path
    }

    // MARK: round trips

    func sampleWeights() -> WeightStore {
        [
            "layers.0.weight": Tensor(shape: [2, 3], data: [1, -2, 3.5, 0, .infinity, -0.0]),
            "layers.0.bias": Tensor(shape: [3], data: [0.25, 1e-30, -7]),
            "scalar": Tensor(shape: [], data: [42]),
            "empty": Tensor(shape: [0, 4], data: []),
            "weird \"name\"\\\n\u{1}é": Tensor(shape: [1, 1, 2], data: [3, 4]),
        ]
    }

    func testRoundTrip() throws {
        let weights = sampleWeights()
        let bytes = Safetensors.encode(weights)
        let decoded = try Safetensors.decode(bytes: bytes, source: source)
        XCTAssertEqual(decoded, weights)
    }

    func testEncodeLayout() throws {
        let bytes = Safetensors.encode(["b": Tensor(shape: [1], data: [1]), "a": Tensor(shape: [2], data: [2, 3])])
        var n = 0
        for k in 0..<8 { n |= Int(bytes[k]) << (8 * k) }
        XCTAssertEqual(n % 8, 0, "header padded to a multiple of 8")
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix(
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#),
            header)
        XCTAssertEqual(header.trimmingCharacters(in: .whitespaces).count + header.filter { $0 == " " }.count, header.count)
        XCTAssertEqual(bytes.count, 8 + n + 12)
        XCTAssertEqual(Array(bytes[(8 + n)...]), f32Bytes([2, 3, 1]))
    }

    func testNaNBitsRoundTrip() throws {
        let nan = Float(bitPattern: 0x7FC0_1234)
        let bytes = Safetensors.encode(["n": Tensor(shape: [1], data: [nan])])
        let decoded = try Safetensors.decode(bytes: bytes, source: source)
        XCTAssertEqual(decoded["n"]?.data.first?.bitPattern, 0x7FC0_1234)
    }

    func testMetadataRoundTripIsSkipped() throws {
        let weights = sampleWeights()
        let bytes = Safetensors.encode(weights, metadata: ["format": "pt", "note": "a \"quoted\" value"])
        let decoded = try Safetensors.decode(bytes: bytes, source: source)
        XCTAssertEqual(decoded, weights)
        XCTAssertNil(decoded["__metadata__"])
    }

    func testMetadataInHandWrittenHeaderIsSkipped() throws {
        let header = #"{"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#
        let decoded = try Safetensors.decode(bytes: file(header, f32Bytes([5])), source: source)
        XCTAssertEqual(decoded, ["w": Tensor(shape: [1], data: [5])])
    }

    func testWriteAndRead() throws {
        let path = tempPath("w.safetensors")
        let weights = sampleWeights()
        try Safetensors.write(weights, metadata: ["k": "v"], to: path)
        XCTAssertEqual(try Safetensors.read(path: path), weights)
    }

    func testWriteRejectsMetadataName() {
        let path = tempPath("m.safetensors")
        XCTAssertThrowsError(try Safetensors.write(["__metadata__": Tensor(shape: [1], data: [1])], to: path)) { error in
            XCTAssertTrue((error as? HybridError)?.message.contains("__metadata__") ?? false)
        }
    }

    func testWriteToUnwritablePath() {
        XCTAssertThrowsError(try Safetensors.write([:], to: "/nonexistent-dir-hybridc/x.safetensors")) { error in
            XCTAssertTrue((error as? HybridError)?.message.contains("cannot write") ?? false)
        }
    }

    // MARK: dtypes

    func testF16Decode() throws {
        let cases: [(UInt16, Float)] = [
            (0x3C00, 1), (0xC000, -2), (0x3800, 0.5), (0x7BFF, 65504), (0x3555, 0.333251953125),
            (0x0001, 5.960464477539063e-8),  // smallest subnormal, 2^-24
            (0x03FF, 6.097555160522461e-5),  // largest subnormal
            (0x0400, 6.103515625e-5),  // smallest normal, 2^-14
            (0x8001, -5.960464477539063e-8),
            (0x0000, 0), (0x7C00, .infinity), (0xFC00, -.infinity),
        ]
        let header = #"{"h":{"dtype":"F16","shape":[\#(cases.count + 2)],"data_offsets":[0,\#(2 * (cases.count + 2))]}}"#
        let data = u16Bytes(cases.map { $0.0 } + [0x8000, 0x7E00])
        let decoded = try Safetensors.decode(bytes: file(header, data), source: source)
        let values = try XCTUnwrap(decoded["h"]).data
        for (i, (bits, expected)) in cases.enumerated() {
            XCTAssertEqual(values[i], expected, "F16 0x\(String(bits, radix: 16))")
        }
        XCTAssertEqual(values[cases.count].bitPattern, 0x8000_0000, "negative zero keeps its sign")
        XCTAssertTrue(values[cases.count + 1].isNaN)
    }

    func testF16MatchesFloat16ExhaustivelyWhenAvailable() {
        #if !(os(macOS) && arch(x86_64))
        for bits in 0...UInt16.max {
            let ours = Safetensors.halfToFloat(bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                XCTAssertTrue(ours.isNaN)
            } else {
                XCTAssertEqual(ours.bitPattern, reference.bitPattern, "F16 0x\(String(bits, radix: 16))")
            }
        }
        #endif
    }

    func testBF16Decode() throws {
        let cases: [(UInt16, Float)] = [
            (0x3F80, 1), (0xC040, -3), (0x4049, 3.140625), (0x7F80, .infinity), (0xFF80, -.infinity),
            (0x0001, Float(bitPattern: 0x0001_0000)), (0x3E80, 0.25),
        ]
        let header = #"{"b":{"dtype":"BF16","shape":[\#(cases.count)],"data_offsets":[0,\#(2 * cases.count)]}}"#
        let decoded = try Safetensors.decode(bytes: file(header, u16Bytes(cases.map { $0.0 })), source: source)
        XCTAssertEqual(decoded["b"]?.data, cases.map { $0.1 })
    }

    func testUnalignedOffsetsAndGaps() throws {
        // 1 gap byte, F32 [2] at 1..<9, F16 [3] at 9..<15, 2 gap bytes, BF16 [1] at 17..<19.
        let header = #"{"f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]},"h":{"dtype":"F16","shape":[3],"data_offsets":[9,15]},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[17,19]}}"#
        let data = [0xAA] + f32Bytes([1.5, -2.25]) + u16Bytes([0x3C00, 0x4000, 0xBC00]) + [0xBB, 0xCC] + u16Bytes([0x4040])
        let decoded = try Safetensors.decode(bytes: file(header + " ", data), source: source)
        XCTAssertEqual(decoded["f"], Tensor(shape: [2], data: [1.5, -2.25]))
        XCTAssertEqual(decoded["h"], Tensor(shape: [3], data: [1, 2, -1]))
        XCTAssertEqual(decoded["b"], Tensor(shape: [1, 1], data: [3]))
    }

    func testAllocationObserverReportsFloatBuffers() throws {
        let header = #"{"f":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"h":{"dtype":"F16","shape":[3],"data_offsets":[8,14]}}"#
        var reported: [Int] = []
        _ = try Safetensors.decode(
            bytes: file(header, f32Bytes([1, 2]) + u16Bytes([0, 0, 0])), source: source,
            allocationObserver: { reported.append($0) })
        XCTAssertEqual(reported.sorted(), [8, 12])
    }

    // MARK: bad input

    func testTruncatedFile() {
        assertFails([], "truncated")
        assertFails([1, 0, 0], "truncated")
    }

    func testHeaderLengthExceedsFile() {
        var bytes = file("{}")
        bytes[0] = 3
        assertFails(bytes, "exceeds", "header length 3")
        assertFails([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7B, 0x7D], "exceeds")
    }

    func testHeaderTooLarge() {
        var bytes = [UInt8](repeating: 0x20, count: 8 + Safetensors.maxHeaderBytes + 1)
        let n = UInt64(Safetensors.maxHeaderBytes + 1)
        for k in 0..<8 { bytes[k] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(k))) }
        assertFails(bytes, "exceeds the 100000000-byte limit")
    }

    func testHeaderNotJSON() {
        assertFails(file("{\"a\": }"), "not valid JSON", "at byte 14")
        assertFails(file(""), "not valid JSON")
        assertFails(file("{} x"), "not valid JSON")
        assertFails(file("{\"a\":1,}"), "not valid JSON")
        assertFails(file("{'a': 1}"), "not valid JSON")
        assertFails(file("{\"a\": 01}"), "not valid JSON", "leading zeros")
        assertFails(file("{\"a\": \"\u{1}\"}"), "not valid JSON", "control character")
        assertFails(file("{\"a\": \"\\q\"}"), "not valid JSON", "escape")
        assertFails(file("{\"a\": \"\\uD800\"}"), "not valid JSON", "surrogate")
        assertFails(file("{\"a\": \"\\uDC00\"}"), "not valid JSON", "surrogate")
        assertFails(file("{\"a\": tru}"), "not valid JSON")
        assertFails(file("{\"a\": 1e}"), "not valid JSON")
        assertFails(file("{\"a\": -}"), "not valid JSON")
    }

    func testHeaderNotUTF8() {
        var bytes = file("{\"a\": \"xx\"}")
        bytes[8 + 7] = 0xFF
        assertFails(bytes, "not valid UTF-8", "at byte 15")
        bytes[8 + 7] = 0xC0  // overlong lead byte
        assertFails(bytes, "not valid UTF-8")
    }

    func testHeaderNotObject() {
        assertFails(file("[]"), "not a JSON object", "array")
        assertFails(file("3"), "not a JSON object")
    }

    func testNestingLimit() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        assertFails(file("{\"a\": \(deep)}"), "nesting deeper than 64")
        let fine = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        assertFails(file("{\"a\": \(fine)}"), "tensor a: entry is an array")
    }

    func testDuplicateKeys() {
        let t = #"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#
        assertFails(file("{\"w\": \(t), \"w\": \(t)}", f32Bytes([1])), "duplicate key \"w\"")
        assertFails(file(#"{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, f32Bytes([1])), "duplicate key")
    }

    func testEntryShapeErrors() {
        assertFails(file(#"{"w": 3}"#), "tensor w", "entry is a number")
        assertFails(file(#"{"w": {"shape":[1],"data_offsets":[0,4]}}"#, f32Bytes([1])), "tensor w", "missing \"dtype\"")
        assertFails(file(#"{"w": {"dtype":"F32","data_offsets":[0,4]}}"#, f32Bytes([1])), "missing \"shape\"")
        assertFails(file(#"{"w": {"dtype":"F32","shape":[1]}}"#, f32Bytes([1])), "missing \"data_offsets\"")
        assertFails(file(#"{"w": {"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, f32Bytes([1])), "\"dtype\" must be a string")
        assertFails(file(#"{"w": {"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#, f32Bytes([1])), "\"shape\" must be an array")
        assertFails(file(#"{"w": {"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, f32Bytes([1])), "negative dimension -1")
        assertFails(file(#"{"w": {"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, f32Bytes([1])), "non-integer dimension")
        assertFails(file(#"{"w": {"dtype":"F32","shape":[1.0e1],"data_offsets":[0,40]}}"#), "tensor w")
        assertFails(file(#"{"w": {"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}"#, f32Bytes([1])), "must contain integers")
        assertFails(
            file(#"{"w": {"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#, f32Bytes([1])),
            "tensor w", "too large")
        assertFails(
            file(#"{"w": {"dtype":"F32","shape":[4294967296, 4294967296],"data_offsets":[0,4]}}"#, f32Bytes([1])),
            "element count", "overflows")
        assertFails(
            file(#"{"w": {"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}}"#, f32Bytes([1])),
            "byte size", "overflows")
        assertFails(
            file(#"{"w": {"dtype":"F32","shape":[0, 4294967296, 4294967296],"data_offsets":[0,0]}}"#),
            "overflows")
    }

    func testZeroSizedTensorsAreFine() throws {
        let header = #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F16","shape":[3,0],"data_offsets":[0,0]},"c":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let decoded = try Safetensors.decode(bytes: file(header, f32Bytes([7])), source: source)
        XCTAssertEqual(decoded["a"], Tensor(shape: [0], data: []))
        XCTAssertEqual(decoded["b"], Tensor(shape: [3, 0], data: []))
        XCTAssertEqual(decoded["c"], Tensor(shape: [1], data: [7]))
    }

    func testDataOffsetErrors() {
        let data = f32Bytes([1, 2])
        for offsets in ["[0]", "[0,4,8]", "[4,0]", "[-4,0]", "[0,4.0]", "\"0,4\"", "[0,\"4\"]", "[0,18446744073709551616]"] {
            assertFails(
                file(#"{"w": {"dtype":"F32","shape":[1],"data_offsets":\#(offsets)}}"#, data),
                "tensor w", "data_offsets must be two ascending")
        }
        assertFails(file(#"{"w": {"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, data), "tensor w", "span 8 bytes", "needs 4 bytes")
        assertFails(file(#"{"w": {"dtype":"F16","shape":[3],"data_offsets":[0,8]}}"#, data), "F16 needs 6 bytes")
        assertFails(file(#"{"w": {"dtype":"F32","shape":[1],"data_offsets":[6,10]}}"#, data), "tensor w", "past the end")
        assertFails(
            file(#"{"w": {"dtype":"F32","shape":[1],"data_offsets":[9223372036854775803,9223372036854775807]}}"#, data),
            "past the end")
    }

    func testOverlap() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        assertFails(file(header, f32Bytes([1, 2])), "overlap", "a", "b")
        let same = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        assertFails(file(same, f32Bytes([1])), "overlap")
    }

    func testUnsupportedDtypes() {
        for (dtype, size) in [("F64", 8), ("I64", 8), ("I32", 4), ("U8", 1), ("BOOL", 1), ("F8_E4M3", 1), ("F8_E5M2", 1), ("f32", 4)] {
            let header = #"{"w":{"dtype":"\#(dtype)","shape":[1],"data_offsets":[0,\#(size)]}}"#
            assertFails(
                file(header, [UInt8](repeating: 0, count: size)),
                "unsupported dtype \(dtype) for tensor w (hybridc reads F32, F16, BF16)")
        }
    }

    func testBadMetadata() {
        assertFails(file(#"{"__metadata__": {"a": 1}}"#), "__metadata__", "strings")
        assertFails(file(#"{"__metadata__": []}"#), "__metadata__")
    }

    func testPyTorchCheckpointsPointAtConverter() {
        let zip: [UInt8] = [0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 40)
        assertFails(zip, "PyTorch", "python3 scripts/convert_pth.py")
        let pickle: [UInt8] = [0x80, 0x02, 0x7D, 0x71, 0x00, 0x28, 0x58, 0x01, 0x00, 0x00]
        assertFails(pickle, "PyTorch", "convert_pth.py")
        XCTAssertThrowsError(try Safetensors.read(path: "/nowhere/model.pth")) { error in
            let e = error as? HybridError
            XCTAssertEqual(e?.location, "/nowhere/model.pth")
            XCTAssertTrue(e?.message.contains("python3 scripts/convert_pth.py /nowhere/model.pth /nowhere/model.safetensors") ?? false, "\(error)")
        }
        for ext in ["pt", "ckpt", "PTH"] {
            XCTAssertThrowsError(try Safetensors.read(path: "m.\(ext)")) { error in
                XCTAssertTrue((error as? HybridError)?.message.contains("convert_pth.py") ?? false)
            }
        }
    }

    func testValidFileStartingWithPickleByteStillDecodes() throws {
        // A header of exactly 0x0280 = 640 bytes makes the file start with 0x80 0x02 (like a pickle).
        var header = #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        header += String(repeating: " ", count: 640 - header.utf8.count)
        let bytes = file(header, f32Bytes([9]))
        XCTAssertEqual(Array(bytes[0..<2]), [0x80, 0x02])
        XCTAssertEqual(try Safetensors.decode(bytes: bytes, source: source), ["w": Tensor(shape: [1], data: [9])])
    }

    func testMissingFile() {
        XCTAssertThrowsError(try Safetensors.read(path: "/nonexistent/weights.safetensors")) { error in
            let e = error as? HybridError
            XCTAssertEqual(e?.location, "/nonexistent/weights.safetensors")
            XCTAssertTrue(e?.message.contains("/nonexistent/weights.safetensors") ?? false)
            XCTAssertTrue(e?.message.contains("no such file") ?? false)
        }
        let dir = FileManager.default.temporaryDirectory.path
        XCTAssertThrowsError(try Safetensors.read(path: dir)) { error in
            XCTAssertTrue((error as? HybridError)?.message.contains("directory") ?? false)
        }
    }

    // MARK: JSON parser

    func testJSONParser() throws {
        let text = #" {"s": "a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\uD83D\uDE00€", "i": -9223372036854775808, "big": 9223372036854775808, "d": -1.5e3, "z": -0, "t": true, "f": false, "n": null, "arr": [1, [2, {}], []]} "#
        let value = try JSONHeader.parse(Array(text.utf8), source: "x")
        XCTAssertEqual(value["s"], .string("a\"b\\c/d\u{8}\u{c}\n\r\tAé😀€"))
        XCTAssertEqual(value["i"], .integer(Int.min))
        XCTAssertEqual(value["big"], .double(9223372036854775808))
        XCTAssertEqual(value["d"], .double(-1500))
        XCTAssertEqual(value["z"], .integer(0))
        XCTAssertEqual(value["t"], .bool(true))
        XCTAssertEqual(value["f"], .bool(false))
        XCTAssertEqual(value["n"], .null)
        XCTAssertEqual(value["arr"], .array([.integer(1), .array([.integer(2), .object([])]), .array([])]))
        if case .object(let members) = value {
            XCTAssertEqual(members.map(\.key), ["s", "i", "big", "d", "z", "t", "f", "n", "arr"])
        } else {
            XCTFail("not an object")
        }
    }

    func testJSONErrorOffsets() {
        XCTAssertThrowsError(try JSONHeader.parse(Array("[1, 2,]".utf8), source: "x")) { error in
            let e = error as? HybridError
            XCTAssertEqual(e?.location, "x")
            XCTAssertTrue(e?.message.contains("at byte 6") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try JSONHeader.parse(Array("\"abc".utf8), source: "x")) { error in
            XCTAssertTrue((error as? HybridError)?.message.contains("unterminated string at byte 0") ?? false, "\(error)")
        }
        // Offsets are relative to the file when parsing a range.
        let bytes = Array("xxxxxxxx{\"a\" 1}".utf8)
        XCTAssertThrowsError(try JSONHeader.parse(bytes, range: 8..<bytes.count, baseOffset: 8, source: "f")) { error in
            XCTAssertTrue((error as? HybridError)?.message.contains("expected ':' at byte 13") ?? false, "\(error)")
        }
    }

    // MARK: fuzz

    /// Valid base files: several tensors, mixed dtypes, unaligned offsets, gaps, metadata.
    func fuzzBases() -> [(header: String, data: [UInt8])] {
        var bases: [(String, [UInt8])] = []
        bases.append((
            #"{"__metadata__":{"format":"pt","k":"v"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b.weight":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},"c":{"dtype":"BF16","shape":[3,1],"data_offsets":[33,39]},"s":{"dtype":"F32","shape":[],"data_offsets":[39,43]},"z":{"dtype":"F32","shape":[0,5],"data_offsets":[43,43]}}"#,
            f32Bytes([1, 2, 3, 4, 5, 6]) + u16Bytes([0x3C00, 0x0001, 0x7C00, 0xFE00]) + [0] + u16Bytes([0x3F80, 0x4000, 0x4040])
                + f32Bytes([7])
        ))
        bases.append((
            #"{ "x" : { "shape" : [ 1, 2, 2 ], "dtype" : "F16", "data_offsets" : [ 3, 11 ] }, "y" : { "data_offsets" : [ 11, 15 ], "dtype" : "BF16", "shape" : [ 2 ] } , "w": {"dtype": "F32", "shape": [1], "data_offsets": [16, 20]} }   "#,
            [9, 9, 9] + u16Bytes([0x3C00, 0xBC00, 0x3800, 0x0400]) + u16Bytes([0x3F80, 0xBF80]) + [0] + f32Bytes([-1])
        ))
        let encoded = Safetensors.encode(
            ["layer.0": Tensor(shape: [2, 2], data: [1, 2, 3, 4]), "layer.1": Tensor(shape: [3], data: [5, 6, 7]),
             "ü\u{1}": Tensor(shape: [1], data: [8])],
            metadata: ["a": "b"])
        var n = 0
        for k in 0..<8 { n |= Int(encoded[k]) << (8 * k) }
        bases.append((String(decoding: encoded[8..<(8 + n)], as: UTF8.self), Array(encoded[(8 + n)...])))
        return bases
    }

    static let hugeNumbers = [
        "99999999999999999999", "9223372036854775808", "9223372036854775807", "-9223372036854775808", "-1", "0", "1",
        "18446744073709551615", "18446744073709551616", "4294967296", "2147483648", "1e300", "1.5", "-0", "1E2", "4611686018427387904",
        "3", "8", "24", "43", "00", "-", "1e", "0.0",
    ]

    static let snippets = [
        #""dtype":"F16","#, #""dtype":"F64","#, #""shape":[1],"#, #""shape":[],"#, #""data_offsets":[0,4],"#,
        #""data_offsets":[0,0],"#, #""__metadata__":{},"#, #""a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#,
        "[", "]", "{", "}", ",", ":", "\"", "\\u", "\\uD800", "null,", "true", "\u{0}", " ", "\"x\":", "[[[[[[", "é",
    ]

    /// Mutates a header text (as bytes).
    func mutateHeader(_ header: inout [UInt8], _ rng: inout FormatFuzzRNG) {
        guard !header.isEmpty else {
            header = Array(rng.pick(Self.snippets).utf8)
            return
        }
        switch rng.below(10) {
        case 9:  // benign: whitespace after a structural character
            let structural = header.indices.filter { [0x2C, 0x3A, 0x5B, 0x5D, 0x7B, 0x7D].contains(header[$0]) }
            if !structural.isEmpty {
                header.insert(rng.pick([0x20, 0x0A, 0x09, 0x0D]), at: rng.pick(structural) + 1)
            }
        case 0:  // byte flip
            let i = rng.below(header.count)
            header[i] = rng.chance(50) ? UInt8(truncatingIfNeeded: rng.next()) : header[i] ^ (1 << UInt8(rng.below(8)))
        case 1, 2:  // digit change
            let digits = header.indices.filter { header[$0] >= 0x30 && header[$0] <= 0x39 }
            if let i = digits.isEmpty ? nil : rng.pick(digits) {
                header[i] = UInt8(0x30 + rng.below(10))
            }
        case 3, 4:  // replace a whole number with a huge or odd one
            var numbers: [Range<Int>] = []
            var i = 0
            while i < header.count {
                if header[i] >= 0x30 && header[i] <= 0x39 {
                    let start = i
                    while i < header.count && header[i] >= 0x30 && header[i] <= 0x39 { i += 1 }
                    numbers.append(start..<i)
                } else {
                    i += 1
                }
            }
            if !numbers.isEmpty {
                header.replaceSubrange(rng.pick(numbers), with: Array(rng.pick(Self.hugeNumbers).utf8))
            }
        case 5:  // insert a snippet (duplicated keys, extra entries, structure)
            let i = rng.below(header.count + 1)
            header.insert(contentsOf: Array(rng.pick(Self.snippets).utf8), at: i)
        case 6:  // remove a key: from a quote to the next comma (or a random range)
            let quotes = header.indices.filter { header[$0] == 0x22 }
            if !quotes.isEmpty && rng.chance(70) {
                let start = rng.pick(quotes)
                var end = start + 1
                while end < header.count && header[end] != 0x2C { end += 1 }
                header.removeSubrange(start..<min(header.count, end + 1))
            } else {
                let start = rng.below(header.count)
                let end = min(header.count, start + 1 + rng.below(12))
                header.removeSubrange(start..<end)
            }
        case 7:  // duplicate a random chunk
            let start = rng.below(header.count)
            let end = min(header.count, start + 1 + rng.below(40))
            let chunk = Array(header[start..<end])
            header.insert(contentsOf: chunk, at: rng.below(header.count + 1))
        default:  // swap a dtype
            let text = String(decoding: header, as: UTF8.self)
            let dtypes = ["\"F32\"", "\"F16\"", "\"BF16\""]
            let replacement = rng.pick(["\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"", "\"U8\"", "\"BOOL\"", "\"F8_E4M3\"", "\"\"", "7", "null"])
            if let found = dtypes.compactMap({ text.range(of: $0) }).first {
                header = Array(text.replacingCharacters(in: found, with: replacement).utf8)
            }
        }
    }

    func testFuzzedHeadersNeverCrash() {
        var rng = FormatFuzzRNG(seed: 0x5AFE_7E45_0123_4567)
        let bases = fuzzBases()
        for base in bases {
            XCTAssertNoThrow(try Safetensors.decode(bytes: file(base.header, base.data), source: source), base.header)
        }
        var successes = 0
        var failures = 0
        let cases = 12_000
        for _ in 0..<cases {
            let base = rng.pick(bases)
            var header = Array(base.header.utf8)
            var data = base.data
            for _ in 0..<(1 + rng.below(3)) { mutateHeader(&header, &rng) }
            if rng.chance(10) && !data.isEmpty {
                data[rng.below(data.count)] = UInt8(truncatingIfNeeded: rng.next())
            }
            var bytes: [UInt8] = []
            let originalLength = UInt64(base.header.utf8.count)
            var length = rng.chance(85) ? UInt64(header.count) : originalLength
            if rng.chance(10) {  // header-length field corruption
                let choices: [UInt64] = [
                    0, 1, 7, 8, UInt64.max, 1 << 63, (1 << 63) - 1, 1 << 32, UInt64(header.count + data.count),
                    UInt64(header.count + data.count + 1), rng.next(), length &+ UInt64(rng.below(16)), length &- UInt64(rng.below(16)),
                ]
                length = rng.pick(choices)
            }
            for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(k)))) }
            bytes += header + data
            if rng.chance(10) {  // truncation at a random point
                bytes.removeSubrange(rng.below(bytes.count + 1)...)
            }

            var allocated = 0
            var largest = 0
            do {
                let store = try Safetensors.decode(
                    bytes: bytes, source: source,
                    allocationObserver: { allocated += $0; largest = max(largest, $0) })
                for (name, tensor) in store {
                    var count = 1
                    for d in tensor.shape { count *= d }
                    XCTAssertEqual(count, tensor.data.count, name)
                }
                successes += 1
            } catch let error as HybridError {
                XCTAssertFalse(error.message.isEmpty)
                XCTAssertEqual(error.location, source)
                failures += 1
            } catch {
                XCTFail("unexpected error type: \(error)")
            }
            XCTAssertLessThanOrEqual(largest, 2 * bytes.count)
            XCTAssertLessThanOrEqual(allocated, 2 * bytes.count)
        }
        XCTAssertEqual(successes + failures, cases)
        // The mutations must exercise both outcomes.
        XCTAssertGreaterThan(successes, 300, "successes \(successes)")
        XCTAssertGreaterThan(failures, 5_000, "failures \(failures)")
    }
}
