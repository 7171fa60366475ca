/// The chunked scan's C kernels (both forms, fp32) against the interpreter's sequential scan over a sequence of
/// 65536 steps (256x256 pixels), where rounding in the 1024 chunk carries would show.
import Codegen
import Driver
import Foundation
import Frontend
import HybridIR
import Passes
import XCTest

final class ChunkedScanKernelTests: XCTestCase {
    /// dt up to 5 and A down to -32: fast decay.
    func testLongSequenceOnHost() throws {
        try check(ranges: [-1...1, -4...4.99, -32 ... -0.1, -1...1, -1...1, -1...1, -0.5...0.5])
    }

    /// dt in [0.002, 0.13] and A in [-0.5, -0.01]: the state lasts hundreds of steps, so the carries matter.
    func testLongSequenceSlowDecayOnHost() throws {
        try check(ranges: [-1...1, -6 ... -2, -0.5 ... -0.01, -1...1, -1...1, -1...1, 0...0])
    }

    func check(ranges: [ClosedRange<Double>]) throws {
        let target = Target.host
        guard GeneratedProgram.canRun(target) else { throw XCTSkip("no C compiler") }
        let (channels, length, n) = (2, 65536, 16)
        let shapes = [[1, channels, length], [1, channels, length], [channels, n], [1, 2, n, length], [1, 2, n, length],
                      [channels], [channels]]
        var weights: WeightStore = [:]
        var rng = SplitMix64(seed: 17)
        for (j, shape) in shapes.enumerated() {
            weights["operand\(j)"] = Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in
                Float(ranges[j].lowerBound + rng.nextUnit() * (ranges[j].upperBound - ranges[j].lowerBound))
            })
        }
        let scan: Attributes = ["has_D": .bool(true), "has_z": .bool(false), "has_delta_bias": .bool(true),
                                "delta_softplus": .bool(true)]
        let expected = try Interpreter.evaluate(Operation(kind: .selectiveScan, operands: [], attributes: scan, result: 0),
                                                (0..<shapes.count).map { weights["operand\($0)"]! }, weights: [:])
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let input = dir.appendingPathComponent("in.npy").path, output = dir.appendingPathComponent("out.npy").path
        try Npy.write(Tensor(shape: [1], data: [0.5]), to: input)
        for form in ["recurrent", "carry"] {
            var b = Builder(name: "scan_\(form)")
            let x = b.input(TensorType(.f32, [1]))
            let operands = try shapes.indices.map { try b.weight("operand\($0)", shapes[$0]) }
            var a = scan
            a["chunk"] = .int(64)
            a["form"] = .string(form)
            let y = try b.add(.chunkedSelectiveScan, operands, a)
            let zero = try b.add(.reshape, [try b.add(.sub, [x, x])], ["shape": .ints([1, 1, 1])])
            b.output(try b.add(.add, [y, zero]))
            let program = dir.appendingPathComponent(form)
            _ = try Compile.build(graph: b.graph, weights: weights, target: target, output: program, foldConstants: false)
            var first: [UInt32]?
            for threads in [1, 2] {
                let r = try GeneratedProgram.run(program, [input, output, "--threads", "\(threads)"], target: target)
                XCTAssertEqual(r.status, 0, r.output)
                let actual = try Npy.read(path: output)
                let err = GeneratedProgram.relativeError(actual.data, expected.data)
                print("chunked scan kernel, L = \(length), chunk 64, \(form), \(threads) threads: relative error \(err)")
                XCTAssertLessThanOrEqual(err, 1e-5, "\(form) with \(threads) threads")
                if let first { XCTAssertTrue(first == actual.data.map(\.bitPattern), "\(form): thread count changed bits") }
                first = actual.data.map(\.bitPattern)
            }
        }
    }

    /// `ss2d_scan` in C over 256x256 pixels (65536 steps per direction, chunks of 64) in both forms, x_dbl planar and
    /// token-major, against the unfused SS2D with the interpreter's sequential scan; dt up to about 5, A down to -32.
    func testSS2DLongSequenceOnHost() throws {
        let target = Target.host
        guard GeneratedProgram.canRun(target) else { throw XCTSkip("no C compiler") }
        let (e, h, w, r, n, sa) = (2, 256, 256, 2, 8, "self_attention")
        var b = Builder(name: "ss2d")
        let x = b.input(TensorType(.f32, [1]))
        var weights: WeightStore = [:]
        var rng = SplitMix64(seed: 23)
        var p: [String: ValueID] = [:]
        for (key, shape, range) in [("xs", [1, e, h, w], -1.0...1.0), ("x_proj_weight", [4, r + 2 * n, e], -1...1),
                                    ("dt_projs_weight", [4, e, r], -0.1...0.1), ("A_logs", [4 * e, n], log(0.05)...log(32)),
                                    ("Ds", [4 * e], -1...1), ("dt_projs_bias", [4, e], -4...4.9)] {
            weights[key] = Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in
                Float(range.lowerBound + rng.nextUnit() * (range.upperBound - range.lowerBound))
            })
            p["\(sa).\(key)"] = try b.weight(key, shape)
        }
        // The input takes part (plus zero times itself) so that the graph is a function of it.
        let xs = try b.add(.add, [p["\(sa).xs"]!, try b.add(.reshape, [try b.add(.sub, [x, x])], ["shape": .ints([1, 1, 1, 1])])])
        b.output(try ExpandBlocks.ss2dDirections(&b, xs: xs, weights: p, scope: sa))
        let unfused = b.graph
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let input = dir.appendingPathComponent("in.npy").path, output = dir.appendingPathComponent("out.npy").path
        try Npy.write(Tensor(shape: [1], data: [0.5]), to: input)
        let expected = try Interpreter.run(unfused, inputs: [Tensor(shape: [1], data: [0.5])], weights: weights)[0]
        for layouts in [false, true] {
            for form in ["recurrent", "carry"] {
                var g = unfused
                let passes: [Pass.Type] = layouts ? [FuseScanDirections.self, ChooseLayouts.self] : [FuseScanDirections.self]
                try PassManager(passes).run(&g, PassContext(weights: weights))
                for i in g.ops.indices where g.ops[i].kind == .ss2dScan {
                    g.ops[i].attributes["chunk"] = .int(64)
                    g.ops[i].attributes["form"] = .string(form)
                }
                XCTAssertEqual(g.ops.filter { $0.kind == .ss2dScan }.count, 1)
                let program = dir.appendingPathComponent("\(form)\(layouts)")
                _ = try Compile.build(graph: g, weights: weights, target: target, output: program)
                var first: [UInt32]?
                for threads in [1, 2] {
                    let run = try GeneratedProgram.run(program, [input, output, "--threads", "\(threads)"], target: target)
                    XCTAssertEqual(run.status, 0, run.output)
                    let actual = try Npy.read(path: output)
                    let err = GeneratedProgram.relativeError(actual.data, expected.data)
                    print("ss2d_scan kernel, L = 65536, chunk 64, \(form), token-major \(layouts), \(threads) threads: relative error \(err)")
                    XCTAssertLessThanOrEqual(err, 1e-5, "\(form), token-major \(layouts), \(threads) threads")
                    if let first { XCTAssertTrue(first == actual.data.map(\.bitPattern), "\(form): thread count changed bits") }
                    first = actual.data.map(\.bitPattern)
                }
            }
        }
    }
}
