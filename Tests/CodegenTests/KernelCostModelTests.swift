/// The profile's FLOP and byte model: the polynomials emitted for each kernel agree with Cost at other sizes.
import Codegen
import Driver
import Foundation
import Frontend
import HybridIR
import XCTest

final class KernelCostModelTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testInterpolationIsExactForQuadratics() {
        let f = { (h: Int, w: Int) in Double(3 + 5 * h + 7 * w * w + 11 * h * w + 2 * h * h * w) }
        let p = SizePolynomial.interpolate(hNodes: [1, 4, 32], wNodes: [1, 2, 3], f)
        for (h, w) in [(1, 1), (7, 9), (32, 32), (0, 0), (13, 2)] { XCTAssertEqual(p.value(h8: h, w8: w), f(h, w), accuracy: 1e-6 * max(1, f(h, w))) }
    }

    /// Compiled for 64x64, evaluated at 48x40: the FLOPs equal Cost of the graph built at 48x40 (each kernel's op;
    /// the three phases of a fused attention add up to its op), and bytes are at least operands + result.
    func testFlopsMatchCostAtAnotherSize() throws {
        for spec in ["tiny-t.yml", "tiny-hybrid.yml"] {
            let path = Self.root.appendingPathComponent("Graphs/tests/\(spec)").path
            let (big, _) = try Compile.plan(spec: path, weights: .random(seed: 0), input: InputSize(channels: 3, height: 64, width: 64), target: .generic)
            let (small, _) = try Compile.plan(spec: path, weights: .random(seed: 0), input: InputSize(channels: 3, height: 48, width: 40), target: .generic)
            XCTAssertEqual(big.kernels.count, small.kernels.count)
            var phaseSum: [Int: Double] = [:]
            for (k, s) in zip(big.kernels, small.kernels) {
                XCTAssertEqual(k.name, s.name)
                let model = KernelCostModel.polynomials(k, plan: big)
                let flops = model.flops.value(h8: 6, w8: 5), bytes = model.bytes.value(h8: 6, w8: 5)
                let operands = s.operands.map { TensorType(.f32, $0.shape.map { $0.value(h8: 6, w8: 5) }) }
                let cost = Double(Cost.of(s.op, operands: operands).flops)
                XCTAssertGreaterThanOrEqual(flops, 0, k.name)
                if k.op.kind == .fusedAttention {
                    phaseSum[k.step, default: 0] += flops
                    if k.phase == "out" { XCTAssertEqual(phaseSum[k.step]!, cost, accuracy: 1e-6 * cost, "\(spec) \(k.name)") }
                    continue
                }
                XCTAssertEqual(flops, cost, accuracy: 1e-6 * max(1, cost), "\(spec) \(k.name)")
                let moved = 4 * Double(operands.map(\.elementCount).reduce(0, +) + (s.op.type?.elementCount ?? 0))
                XCTAssertGreaterThanOrEqual(bytes + 1e-6, moved, "\(spec) \(k.name)")
            }
            XCTAssertFalse(phaseSum.isEmpty && spec == "tiny-t.yml", "tiny-t has fused attention")
        }
    }

    /// The generated C carries the same coefficients: model_kernel_flops of a conv kernel at 40x48 is Cost's count.
    func testGeneratedTablesAreTheModel() throws {
        let path = Self.root.appendingPathComponent("Graphs/tests/tiny-t.yml").path
        let (plan, _) = try Compile.plan(spec: path, weights: .random(seed: 0), input: InputSize(channels: 3, height: 64, width: 64), target: .generic)
        let c = try ModelEmitter.emit(plan, source: "tiny-t.yml").source
        XCTAssertTrue(c.contains("static const double kernel_flops[MODEL_KERNELS][9]"))
        XCTAssertTrue(c.contains("double model_kernel_flops(int i, int height, int width)"))
        let k = try XCTUnwrap(plan.kernels.first { $0.op.kind == .conv2d })
        let row = KernelCostModel.polynomials(k, plan: plan).flops.coefficients.map { "\($0)" }.joined(separator: ", ")
        XCTAssertTrue(c.contains("{" + row + "}"), "the conv kernel's row is in kernel_flops")
    }

    /// Profiling and tracing keep the library's promise: no allocation, thread creation or file I/O inside run
    /// (the trace buffer is the caller's), on a tiled image (many model_run calls) with 3 threads; the profiled
    /// output is bitwise the unprofiled one.
    func testProfilingAndTracingAllocateNothingDuringRun() throws {
        let target = Target.host
        guard GeneratedProgram.canRun(target) else { throw XCTSkip("\(target.name) toolchain not installed") }
        let dir = try GeneratedProgram.temporaryDirectory(self)
        setenv("HC_CALIBRATION_DIR", dir.appendingPathComponent("calibration").path, 1)
        var options = CompileOptions(spec: ModelTests.spec("Graphs/tests/tiny-hybrid.yml"), weights: .random(seed: 1),
                                     input: try InputSize(parsing: "3x16x16"), target: target, output: dir.appendingPathComponent("wrapped").path)
        options.extraCFlags = ["-DHC_WRAP_TEST", "hc_wrap_test.c",
                               "-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=pthread_create,--wrap=fopen"]
        let program = try Compile.run(options).executable
        let image = dir.appendingPathComponent("in.npy").path
        try Npy.write(ModelTests.image([3, 40, 30], seed: 2), to: image)
        let trace = dir.appendingPathComponent("trace.json").path
        let profiled = try GeneratedProgram.run(program, [image, dir.appendingPathComponent("a.npy").path, "--threads", "3",
                                                          "--trace", trace, "--json", dir.appendingPathComponent("p.json").path], target: target)
        XCTAssertEqual(profiled.status, 0, profiled.output)
        XCTAssertTrue(profiled.output.contains("wrap: 0 forbidden calls in"), profiled.output)
        XCTAssertTrue(profiled.output.contains("GFLOP/s"), profiled.output)
        let plain = try GeneratedProgram.run(program, [image, dir.appendingPathComponent("b.npy").path, "--threads", "3"], target: target)
        XCTAssertEqual(plain.status, 0, plain.output)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("a.npy")), try Data(contentsOf: dir.appendingPathComponent("b.npy")))
        let events = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: trace))) as? [String: Any])
        XCTAssertGreaterThan((events["traceEvents"] as? [Any])?.count ?? 0, 100)
    }
}
