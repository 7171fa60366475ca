/// The chunked selective scan (both forms) against the sequential one in the interpreter, and the pass's cost rule.
import XCTest
import Frontend
import HybridIR
import Passes

final class ChunkedScanTests: XCTestCase {
    /// Operands of an SS2D-like scan: u, delta, A, grouped B and C (G = 2), D, delta_bias; delta in [-4, 4.99] so
    /// that dt = softplus(delta) reaches 5, A in [-32, -0.1].
    static func operands(channels: Int, length: Int, state n: Int, seed: UInt64) -> [Tensor] {
        var rng = SplitMix64(seed: seed)
        func tensor(_ shape: [Int], _ range: ClosedRange<Double>) -> Tensor {
            Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in
                Float(range.lowerBound + rng.nextUnit() * (range.upperBound - range.lowerBound))
            })
        }
        return [tensor([1, channels, length], -1...1), tensor([1, channels, length], -4...4.99),
                tensor([channels, n], -32 ... -0.1), tensor([1, 2, n, length], -1...1), tensor([1, 2, n, length], -1...1),
                tensor([channels], -1...1), tensor([channels], -0.5...0.5)]
    }

    static let attributes: Attributes = ["has_D": .bool(true), "has_z": .bool(false), "has_delta_bias": .bool(true),
                                         "delta_softplus": .bool(true)]

    /// max |chunked − sequential| / max |sequential| for one scan.
    func error(_ x: [Tensor], attributes: Attributes = attributes, chunk: Int, form: String) throws -> Float {
        let sequential = try Interpreter.evaluate(Operation(kind: .selectiveScan, operands: [], attributes: attributes, result: 0),
                                                  x, weights: [:])
        var chunked = attributes
        chunked["chunk"] = .int(chunk)
        chunked["form"] = .string(form)
        let y = try Interpreter.evaluate(Operation(kind: .chunkedSelectiveScan, operands: [], attributes: chunked, result: 0),
                                         x, weights: [:])
        XCTAssertEqual(y.shape, sequential.shape)
        var diff: Float = 0, top: Float = 0
        for (a, b) in zip(y.data, sequential.data) {
            XCTAssertTrue(a.isFinite)
            diff = max(diff, abs(a - b))
            top = max(top, abs(b))
        }
        return top == 0 ? diff : diff / top
    }

    /// Chunks of 1, 16 and 64 over a length of 100 (not a multiple of 16 or 64), d_state 4 to 32, both forms.
    func testBothFormsMatchTheSequentialScan() throws {
        var worst: [String: Float] = [:]
        for n in [4, 8, 16, 32] {
            let x = Self.operands(channels: 4, length: 100, state: n, seed: UInt64(n))
            for chunk in [1, 16, 64] {
                for form in ["recurrent", "carry"] {
                    let e = try error(x, chunk: chunk, form: form)
                    XCTAssertLessThanOrEqual(e, 1e-5, "d_state \(n), chunk \(chunk), \(form)")
                    worst[form] = max(worst[form] ?? 0, e)
                }
            }
        }
        print("chunked scan, largest relative error over d_state 4..32 and chunks 1, 16, 64: \(worst)")
    }

    /// The z gate with B shared over channels and C fixed per channel, no softplus, a chunk longer than the tail.
    func testOtherOperandFormsMatch() throws {
        var rng = SplitMix64(seed: 11)
        func tensor(_ shape: [Int], _ range: ClosedRange<Double>) -> Tensor {
            Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in
                Float(range.lowerBound + rng.nextUnit() * (range.upperBound - range.lowerBound))
            })
        }
        let x = [tensor([2, 6, 37], -1...1), tensor([2, 6, 37], 0.01...1), tensor([6, 3], -3 ... -0.1),
                 tensor([2, 3, 37], -1...1), tensor([6, 3], -1...1), tensor([2, 6, 37], -2...2)]
        let a: Attributes = ["has_D": .bool(false), "has_z": .bool(true), "has_delta_bias": .bool(false),
                             "delta_softplus": .bool(false)]
        for chunk in [1, 5, 16, 64] {
            for form in ["recurrent", "carry"] {
                XCTAssertLessThanOrEqual(try error(x, attributes: a, chunk: chunk, form: form), 1e-5, "chunk \(chunk), \(form)")
            }
        }
    }

    /// A sequence of 65536 steps (256x256 pixels) in chunks of 64: 1024 carries.
    func testLongSequence() throws {
        let x = Self.operands(channels: 2, length: 65536, state: 16, seed: 5)
        for form in ["recurrent", "carry"] {
            let e = try error(x, chunk: 64, form: form)
            print("chunked scan, L = 65536, chunk 64, \(form): relative error \(e)")
            XCTAssertLessThanOrEqual(e, 1e-5, form)
        }
    }

    func testBadAttributesAreRejected() throws {
        var g = try Parser.parse("""
        graph @g(%0: f32[1,4,8], %1: f32[1,4,8], %2: f32[4,2], %3: f32[1,2,8]) {
          %4 = chunked_selective_scan(%0, %1, %2, %3, %3) {chunk = 0, delta_softplus = true, form = "carry", has_D = false, has_delta_bias = false, has_z = false}
          return %4
        }
        """)
        XCTAssertThrowsError(try PassManager([InferShapes.self]).run(&g, PassContext())) { error in
            XCTAssertTrue("\(error)".contains("chunk must be at least 1"), "\(error)")
        }
    }

    /// The cost rule: chunks sized for L1 by d_state; the carry form only when channels cannot fill the machine.
    func testCostRule() {
        XCTAssertEqual(ChunkSelectiveScan.chunk(stateSize: 4, l1Bytes: 32 * 1024), 256)
        XCTAssertEqual(ChunkSelectiveScan.chunk(stateSize: 16, l1Bytes: 32 * 1024), 64)
        XCTAssertEqual(ChunkSelectiveScan.chunk(stateSize: 32, l1Bytes: 32 * 1024), 32)
        XCTAssertEqual(ChunkSelectiveScan.chunk(stateSize: 32, l1Bytes: 96 * 1024), 128)
        XCTAssertEqual(ChunkSelectiveScan.form(channels: 384, length: 4096, chunk: 64, threads: 2, vectorWidth: 8), "recurrent")
        XCTAssertEqual(ChunkSelectiveScan.form(channels: 16, length: 4096, chunk: 64, threads: 2, vectorWidth: 8), "carry")
        XCTAssertEqual(ChunkSelectiveScan.form(channels: 16, length: 64, chunk: 64, threads: 2, vectorWidth: 8), "recurrent")
        XCTAssertEqual(ChunkSelectiveScan.form(channels: 40, length: 4096, chunk: 64, threads: 8, vectorWidth: 4), "carry")
    }
}
