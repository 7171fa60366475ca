import Foundation
import HybridIR
import XCTest

@testable import Frontend

final class NpyTests: XCTestCase {
    let source = "a.npy"

    // MARK: helpers

    /// An .npy file with a hand-written header (no padding is added) and raw data bytes.
    func npy(_ header: String, version: UInt8 = 1, _ data: [UInt8] = []) -> [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
        if version == 1 {
            out += [UInt8(h.count & 0xFF), UInt8(h.count >> 8)]
        } else {
            for k in 0..<4 { out.append(UInt8((h.count >> (8 * k)) & 0xFF)) }
        }
        return out + h + data
    }

    func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in
            let b = v.bitPattern
            return [UInt8(b & 0xFF), UInt8((b >> 8) & 0xFF), UInt8((b >> 16) & 0xFF), UInt8(b >> 24)]
        }
    }

    func assertFails(
        _ bytes: [UInt8], _ fragments: String..., file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let t = try Npy.decode(bytes: bytes, source: source)
            XCTFail("expected an error containing \(fragments), decoded shape \(t.shape)", file: file, line: line)
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

    // MARK: round trips

    func testRoundTrips() throws {
        let tensors = [
            Tensor(shape: [], data: [3.5]),
            Tensor(shape: [3], data: [1, -2, .infinity]),
            Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]),
            Tensor(shape: [0], data: []),
            Tensor(shape: [2, 0, 4], data: []),
            Tensor(shape: [1, 1, 1, 1, 1, 2], data: [-0.0, Float(bitPattern: 0x0001_1234)]),
        ]
        for t in tensors {
            let bytes = Npy.encode(t)
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            XCTAssertEqual((10 + headerLength) % 64, 0, "data aligned to 64 for \(t.shape)")
            XCTAssertEqual(bytes[10 + headerLength - 1], 0x0A, "header ends with a newline")
            XCTAssertEqual(bytes[6], 1)
            XCTAssertEqual(bytes[7], 0)
            let decoded = try Npy.decode(bytes: bytes, source: source)
            XCTAssertEqual(decoded.shape, t.shape)
            XCTAssertEqual(decoded.data.map(\.bitPattern), t.data.map(\.bitPattern))
        }
    }

    func testEncodedHeaderText() {
        let bytes = Npy.encode(Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), header)
        // 10 + 60 header characters + newline do not fit in 64 bytes: the data starts at 128 (as with numpy).
        XCTAssertEqual(headerLength, 118)
        XCTAssertEqual(bytes.count, 128 + 24)
        XCTAssertEqual(Array(bytes[128...]), f32Bytes([1, 2, 3, 4, 5, 6]))

        let one = Npy.encode(Tensor(shape: [3], data: [1, 2, 3]))
        XCTAssertTrue(String(decoding: one[10..<128], as: UTF8.self).contains("'shape': (3,), }"))
        let scalar = Npy.encode(Tensor(shape: [], data: [1]))
        XCTAssertTrue(String(decoding: scalar[10..<128], as: UTF8.self).contains("'shape': (), }"))
    }

    func testWriteAndRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hybridc-npy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("x.npy").path
        let t = Tensor(shape: [2, 2], data: [1, 2, 3, 4])
        try Npy.write(t, to: path)
        XCTAssertEqual(try Npy.read(path: path), t)
    }

    func testMissingFile() {
        XCTAssertThrowsError(try Npy.read(path: "/nonexistent/x.npy")) { error in
            let e = error as? HybridError
            XCTAssertEqual(e?.location, "/nonexistent/x.npy")
            XCTAssertTrue(e?.message.contains("no such file: /nonexistent/x.npy") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try Npy.write(Tensor(shape: [], data: [1]), to: "/nonexistent-hybridc/x.npy")) { error in
            XCTAssertTrue((error as? HybridError)?.message.contains("cannot write") ?? false)
        }
    }

    // MARK: header parsing

    func testTolerantHeaderParsing() throws {
        let data = f32Bytes([1, 2, 3])
        let headers = [
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }          \n",
            "{'descr':'<f4','fortran_order':False,'shape':(3,)}",
            "{ 'shape' : ( 3 , ) ,\n 'fortran_order' : False , 'descr' : '<f4' , }\n",
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3L,)}",
            "{'descr': u'<f4', 'fortran_order': False, 'shape': [3], 'extra': None}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3)}",
        ]
        for header in headers {
            XCTAssertEqual(try Npy.decode(bytes: npy(header, data), source: source), Tensor(shape: [3], data: [1, 2, 3]), header)
        }
        let scalar = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", f32Bytes([7]))
        XCTAssertEqual(try Npy.decode(bytes: scalar, source: source), Tensor(shape: [], data: [7]))
        let matrix = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2,), }\n", f32Bytes([7, 8]))
        XCTAssertEqual(try Npy.decode(bytes: matrix, source: source), Tensor(shape: [1, 2], data: [7, 8]))
    }

    func testVersions2And3() throws {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n"
        for version: UInt8 in [2, 3] {
            XCTAssertEqual(
                try Npy.decode(bytes: npy(header, version: version, f32Bytes([5, 6])), source: source),
                Tensor(shape: [2], data: [5, 6]))
        }
        var bad = npy(header, f32Bytes([5, 6]))
        bad[6] = 4
        assertFails(bad, "unsupported .npy format version 4.0")
        bad[6] = 1
        bad[7] = 1
        assertFails(bad, "version 1.1")
    }

    func testUnsupportedDtypes() {
        for descr in ["<f8", ">f4", "<i4", "|u1", "<f2", "f4", "|f4", "float32"] {
            assertFails(
                npy("{'descr': '\(descr)', 'fortran_order': False, 'shape': (1,), }", f32Bytes([1])),
                "unsupported dtype '\(descr)' in a.npy: hybridc reads float32 ('<f4') arrays")
        }
        assertFails(
            npy("{'descr': [('a', '<f4'), ('b', '<i4', (2,))], 'fortran_order': False, 'shape': (1,), }", f32Bytes([1])),
            "unsupported dtype [('a', '<f4')", "float32")
    }

    func testFortranOrderRejected() {
        assertFails(
            npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", f32Bytes([1, 2, 3, 4])),
            "Fortran order", "np.ascontiguousarray")
        assertFails(npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", f32Bytes([1])), "'fortran_order' must be True or False")
    }

    func testBodyLengthChecked() {
        assertFails(
            npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32Bytes([1, 2, 3, 4, 5])),
            "expected 24 bytes", "found 20 bytes", "truncated")
        assertFails(
            npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f32Bytes([1, 2])),
            "expected 4 bytes", "found 8 bytes", "trailing")
        var bytes = Npy.encode(Tensor(shape: [4], data: [1, 2, 3, 4]))
        bytes.removeLast()
        assertFails(bytes, "expected 16 bytes", "found 15 bytes")
    }

    func testStructuralErrors() {
        assertFails([], "truncated")
        assertFails([0x93, 0x4E, 0x55], "truncated")
        assertFails(Array("PK\u{3}\u{4}whatever".utf8), "not a .npy file")
        assertFails([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 5], "truncated", "header length")
        assertFails([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0, 5, 0, 0], "truncated", "header length")
        var long = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f32Bytes([1]))
        long[8] = 0xFF
        long[9] = 0xFF
        assertFails(long, "truncated", "header length 65535 exceeds")
        assertFails(npy("['descr', '<f4']"), "expected a dict")
        assertFails(npy("{'descr': '<f4', 'fortran_order': False}"), "no 'shape'")
        assertFails(npy("{'fortran_order': False, 'shape': ()}"), "no 'descr'")
        assertFails(npy("{'descr': '<f4', 'shape': ()}"), "no 'fortran_order'")
        assertFails(npy("{'descr': '<f4', 'fortran_order': False, 'shape': 3}"), "'shape' must be a tuple")
        assertFails(npy("{'descr': '<f4', 'fortran_order': False, 'shape': ('3',)}"), "'shape' must be a tuple")
        assertFails(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"), "negative dimension -1")
        assertFails(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"), "too large")
        assertFails(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"), "overflows")
        assertFails(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,)}"), "overflows")
        assertFails(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}"), "invalid .npy header", "invalid integer")
        assertFails(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)"), "unterminated dict")
        assertFails(npy("{'descr': '<f4' 'fortran_order': False}"), "expected ',' or '}'")
        assertFails(npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}"), "duplicate key 'descr'")
        assertFails(npy("{'descr': '<f4, 'fortran_order': False}"), "invalid .npy header")
        assertFails(npy("{'descr': '<f4', 'fortran_order': Flase, 'shape': ()}"), "unexpected name 'Flase'")
        assertFails(npy("{'descr': '<f4', 'fortran_order': False, 'shape': ()} x"), "after the header dict")
        let deep = String(repeating: "(", count: 100)
        assertFails(npy("{'descr': \(deep)"), "nesting deeper")
    }

    // MARK: fuzz

    func testFuzzedNpyNeverCrashes() {
        var rng = FormatFuzzRNG(seed: 0x00C0_FFEE_1234)
        // (version, header text, data)
        let bases: [(UInt8, String, [UInt8])] = [
            (1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + String(repeating: " ", count: 57) + "\n",
             f32Bytes([1, 2, 3, 4, 5, 6])),
            (1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }\n", f32Bytes([1, 2, 3, 4])),
            (1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", f32Bytes([9])),
            (2, "{ 'shape' : ( 2 , 1 , ) , 'fortran_order' : False , 'descr' : '<f4' , }\n", f32Bytes([1, 2])),
            (3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": [1, 1, 1]}", f32Bytes([1])),
        ]
        for base in bases {
            XCTAssertNoThrow(try Npy.decode(bytes: npy(base.1, version: base.0, base.2), source: source))
        }
        let numbers = ["99999999999999999999", "9223372036854775808", "-1", "0", "1", "4294967296", "1.5", "-0", "2L", "2", "6", "+3"]
        let snippets = [
            "(", ")", "[", "]", "{", "}", ",", ":", "'", "\"", "True", "None", "'<f8'", "'shape': (1,),", "\\", "u'", " ", "\n",
            "'descr': '<f4',", "(((((((((", "'fortran_order': True,",
        ]
        var successes = 0
        var failures = 0
        let cases = 3_000
        for _ in 0..<cases {
            let base = rng.pick(bases)
            var header = Array(base.1.utf8)
            var data = base.2
            for _ in 0..<(1 + rng.below(2)) {
                guard !header.isEmpty else { break }
                let digits = header.indices.filter { header[$0] >= 0x30 && header[$0] <= 0x39 }
                switch rng.below(7) {
                case 0:  // byte flip
                    header[rng.below(header.count)] = UInt8(truncatingIfNeeded: rng.next())
                case 1:  // digit change
                    if !digits.isEmpty { header[rng.pick(digits)] = UInt8(0x30 + rng.below(10)) }
                case 2:  // replace a digit with a huge or odd number
                    if !digits.isEmpty {
                        let i = rng.pick(digits)
                        header.replaceSubrange(i...i, with: Array(rng.pick(numbers).utf8))
                    }
                case 3:  // insert a snippet
                    header.insert(contentsOf: Array(rng.pick(snippets).utf8), at: rng.below(header.count + 1))
                case 4:  // delete a range
                    let i = rng.below(header.count)
                    header.removeSubrange(i..<min(header.count, i + 1 + rng.below(8)))
                case 5:  // data length change
                    if rng.chance(50) { data += [0, 0, 0, 0] } else { data.removeLast(min(data.count, 1 + rng.below(4))) }
                default:  // benign whitespace after a separator
                    let separators = header.indices.filter { [0x2C, 0x3A, 0x28].contains(header[$0]) }
                    if !separators.isEmpty { header.insert(0x20, at: rng.pick(separators) + 1) }
                }
            }
            var bytes = npy(String(decoding: header, as: UTF8.self), version: base.0, data)
            if rng.chance(10) {  // header length corruption
                let i = 8 + rng.below(base.0 == 1 ? 2 : 4)
                bytes[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.chance(5) { bytes[6 + rng.below(2)] = UInt8(rng.below(5)) }  // version corruption
            if rng.chance(5) { bytes[rng.below(6)] ^= 0x01 }  // magic corruption
            if rng.chance(10) { bytes.removeSubrange(rng.below(bytes.count + 1)...) }  // truncation

            var allocated = 0
            do {
                let t = try Npy.decode(bytes: bytes, source: source, allocationObserver: { allocated += $0 })
                var count = 1
                for d in t.shape { count *= d }
                XCTAssertEqual(count, t.data.count)
                successes += 1
            } catch let error as HybridError {
                XCTAssertFalse(error.message.isEmpty)
                XCTAssertEqual(error.location, source)
                failures += 1
            } catch {
                XCTFail("unexpected error type: \(error)")
            }
            XCTAssertLessThanOrEqual(allocated, bytes.count)
        }
        XCTAssertEqual(successes + failures, cases)
        XCTAssertGreaterThan(successes, 100, "successes \(successes)")
        XCTAssertGreaterThan(failures, 1_000, "failures \(failures)")
    }
}
