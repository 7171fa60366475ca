/// `fuse-scan-directions` and the `ss2d_scan` it creates: the fused scan (both forms, chunks 1, 16, 64, lengths
/// that are not multiples of the chunk, d_state 4..32, dt up to 5, A down to -32, L = 65536) against the unfused
/// SS2D with the sequential scan; a lowered S block and a whole S model before and after; after the default
/// pipeline the S blocks hold no flip or transpose and one x_proj GEMM each; the cost model counts the same.
import XCTest
import Frontend
import HybridIR
import Passes
import Driver

final class FuseScanDirectionsTests: XCTestCase {
    /// SS2D from xs (1, E, H, W) to the merged y as `expand-blocks` writes it (`ExpandBlocks.ss2dDirections`), with weights whose ranges put dt in
    /// about [0.02, 5] (bias in [-4, 4.9], a small dt_proj) and A = -exp(A_logs) in [-32, -0.05].
    static func unfused(e: Int, h: Int, w: Int, r: Int, n: Int, seed: UInt64) throws -> (Graph, WeightStore, Tensor) {
        let (k, l, rows) = (4, h * w, r + 2 * n)
        var b = Builder(name: "ss2d")
        let xs = b.input(TensorType(.f32, [1, e, h, w]))
        var rng = SplitMix64(seed: seed)
        var store: WeightStore = [:]
        func weight(_ name: String, _ shape: [Int], _ range: ClosedRange<Double>) throws -> ValueID {
            store[name] = Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in
                Float(range.lowerBound + rng.nextUnit() * (range.upperBound - range.lowerBound))
            })
            return try b.weight(name, shape)
        }
        let sa = "self_attention"
        let p = ["\(sa).x_proj_weight": try weight("x_proj_weight", [k, rows, e], -1...1),
                 "\(sa).dt_projs_weight": try weight("dt_projs_weight", [k, e, r], -0.1...0.1),
                 "\(sa).A_logs": try weight("A_logs", [k * e, n], log(0.05)...log(32)),
                 "\(sa).Ds": try weight("Ds", [k * e], -1...1),
                 "\(sa).dt_projs_bias": try weight("dt_projs_bias", [k, e], -4...4.9)]
        let y = try ExpandBlocks.ss2dDirections(&b, xs: xs, weights: p, scope: sa)
        b.output(y)
        let input = Tensor(shape: [1, e, h, w], data: (0..<(e * l)).map { _ in Float(rng.nextUnit() * 2 - 1) })
        return (b.graph, store, input)
    }

    /// The graph after `passes` (fuse-scan-directions by default) and the pass statistics.
    func run(_ graph: Graph, _ weights: WeightStore, _ passes: [Pass.Type] = [FuseScanDirections.self]) throws -> (Graph, [(String, Int)]) {
        var g = graph
        let records = try PassManager(passes).run(&g, PassContext(weights: weights))
        return (g, records.flatMap(\.statistics))
    }

    /// max |a − b| / max |b|.
    func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        var diff: Float = 0, top: Float = 0
        for (x, y) in zip(a.data, b.data) {
            XCTAssertTrue(x.isFinite)
            diff = max(diff, abs(x - y))
            top = max(top, abs(y))
        }
        return top == 0 ? diff : diff / top
    }

    /// The fused graph with its ss2d_scan set to `chunk` and `form`.
    func withForm(_ g: Graph, chunk: Int, form: String) -> Graph {
        var g = g
        for i in g.ops.indices where g.ops[i].kind == .ss2dScan {
            g.ops[i].attributes["chunk"] = .int(chunk)
            g.ops[i].attributes["form"] = .string(form)
        }
        return g
    }

    func testBothFormsMatchTheSequentialScan() throws {
        var worst: [String: Float] = [:]
        for (n, h, w) in [(4, 9, 11), (8, 7, 13), (16, 10, 10), (32, 5, 21)] {
            let (graph, weights, input) = try Self.unfused(e: 3, h: h, w: w, r: 2, n: n, seed: UInt64(n))
            let sequential = try Interpreter.run(graph, inputs: [input], weights: weights)[0]
            let (fused, stats) = try run(graph, weights)
            XCTAssertEqual(stats.first { $0.0 == "SS2D scans fused" }?.1, 1)
            XCTAssertEqual(fused.ops.filter { $0.kind == .ss2dScan }.count, 1)
            XCTAssertFalse(fused.ops.contains { [.flip, .transpose, .concat, .matmul, .selectiveScan].contains($0.kind) })
            for chunk in [1, 16, 64] {
                for form in ["recurrent", "carry"] {
                    let y = try Interpreter.run(withForm(fused, chunk: chunk, form: form), inputs: [input], weights: weights)[0]
                    let e = relativeError(y, sequential)
                    XCTAssertLessThanOrEqual(e, 1e-5, "d_state \(n), \(h)x\(w), chunk \(chunk), \(form)")
                    worst[form] = max(worst[form] ?? 0, e)
                }
            }
        }
        print("ss2d_scan, largest relative error over d_state 4..32 and chunks 1, 16, 64: \(worst)")
    }

    /// `choose-layouts` after the fusion: x_dbl written token-major by xsᵀ·Wᵀ, read so by the scan (both forms).
    func testTokenMajorXDbl() throws {
        let (graph, weights, input) = try Self.unfused(e: 5, h: 6, w: 11, r: 3, n: 8, seed: 21)
        let sequential = try Interpreter.run(graph, inputs: [input], weights: weights)[0]
        let (fused, stats) = try run(graph, weights, [FuseScanDirections.self, ChooseLayouts.self])
        XCTAssertEqual(stats.first { $0.0 == "tensors made token-major" }?.1, 1)
        let scan = try XCTUnwrap(fused.ops.first { $0.kind == .ss2dScan })
        XCTAssertEqual(try scan.attributes.string("x_dbl_layout"), "token_major")
        XCTAssertEqual(fused.ops.first { $0.result == scan.operands[1] }?.type?.shape, [66, 4 * (3 + 16)])
        XCTAssertFalse(fused.ops.contains { $0.kind == .conv2d })
        for form in ["recurrent", "carry"] {
            let y = try Interpreter.run(withForm(fused, chunk: 16, form: form), inputs: [input], weights: weights)[0]
            XCTAssertLessThanOrEqual(relativeError(y, sequential), 1e-5, form)
        }
    }

    /// 256x256 pixels: 65536 steps per direction, 1024 chunks of 64.
    func testLongSequence() throws {
        let (graph, weights, input) = try Self.unfused(e: 2, h: 256, w: 256, r: 1, n: 4, seed: 9)
        let sequential = try Interpreter.run(graph, inputs: [input], weights: weights)[0]
        let (fused, _) = try run(graph, weights)
        for form in ["recurrent", "carry"] {
            let y = try Interpreter.run(withForm(fused, chunk: 64, form: form), inputs: [input], weights: weights)[0]
            XCTAssertLessThanOrEqual(relativeError(y, sequential), 1e-5, form)
        }
    }

    /// A lowered S block (VSSBlock: LN, SS2D, CAB) at 5x7: one GEMM and one ss2d_scan replace the directions.
    func testLoweredSBlock() throws {
        var b = Builder(name: "s_block")
        let x = b.input(TensorType(.f32, [1, 30, 5, 7]))
        b.scope = "encoder_level1.0"
        let params = BlockParameters.ssm(channels: 30, inner: 60, dState: 4, dtRank: 2, compressRatio: 3, squeezeFactor: 30)
        let weights = try params.map { try b.weight("encoder_level1.0.\($0.key)", $0.shape) }
        b.output(try b.add(.ssmBlock, [x] + weights,
                           ["inner": .int(60), "d_state": .int(4), "dt_rank": .int(2), "compress_ratio": .int(3),
                            "squeeze_factor": .int(30)]))
        var g = b.graph
        try PassManager(Pipelines.lower).run(&g, PassContext())
        let store = RandomWeights.generate(for: g, seed: 4)
        var rng = SplitMix64(seed: 6)
        let input = Tensor(shape: [1, 30, 5, 7], data: (0..<1050).map { _ in Float(rng.nextUnit() * 2 - 1) })
        let before = try Interpreter.run(g, inputs: [input], weights: store)[0]
        let (fused, _) = try run(g, store, [Canonicalize.self, FuseScanDirections.self])
        XCTAssertEqual(fused.ops.filter { $0.kind == .ss2dScan }.count, 1)
        XCTAssertFalse(fused.ops.contains { $0.kind == .flip || $0.kind == .transpose })
        XCTAssertEqual(fused.ops.filter { $0.kind == .conv2d && $0.scope.hasSuffix(".x_proj") }.count, 1)
        let after = try Interpreter.run(fused, inputs: [input], weights: store)[0]
        XCTAssertLessThanOrEqual(relativeError(after, before), 1e-5)
    }

    /// The smallest bundled S model through the default pipeline: no flip or transpose is left, every S block has
    /// exactly one x_proj GEMM and one ss2d_scan, the output matches the lowered graph, and the cost is unchanged.
    func testDefaultPipelineOnAnSModel() throws {
        let model = try ModelLoader.load(PipelineTests.root.appendingPathComponent("Graphs/tests/tiny-s.yml").path,
                                         weights: .random(seed: 3), input: InputSize(channels: 3, height: 16, width: 24))
        let lowered = try ModelLoader.lower(model.graph, weights: model.weights)
        let blocks = model.graph.ops.filter { $0.kind == .ssmBlock }.count
        XCTAssertGreaterThan(blocks, 0)
        let (optimized, weights) = try ModelLoader.optimize(lowered, weights: model.weights, passes: Pipelines.optimize)
        XCTAssertFalse(optimized.ops.contains { $0.kind == .flip || $0.kind == .transpose })
        XCTAssertEqual(optimized.ops.filter { $0.kind == .ss2dScan }.count, blocks)
        // One GEMM per block for x_proj (token-major after choose-layouts), and no other matmul: dt_proj is in the scan.
        let gemms = optimized.ops.filter { $0.kind == .matmul || $0.kind == .conv2d && $0.scope.hasSuffix(".x_proj") }
        XCTAssertEqual(gemms.count, blocks)
        XCTAssertTrue(gemms.allSatisfy { $0.scope.hasSuffix("self_attention.x_proj") && $0.kind == .matmul })
        XCTAssertFalse(optimized.ops.contains { $0.kind == .selectiveScan || $0.kind == .chunkedSelectiveScan })
        var rng = SplitMix64(seed: 2)
        let input = Tensor(shape: [1, 3, 16, 24], data: (0..<(3 * 16 * 24)).map { _ in Float(rng.nextUnit()) })
        let before = try Interpreter.run(lowered, inputs: [input], weights: model.weights)[0]
        let after = try Interpreter.run(optimized, inputs: [input], weights: weights)[0]
        XCTAssertLessThanOrEqual(relativeError(after, before), 1e-4)

        func total(_ g: Graph) -> Cost { Cost.perOp(g).reduce(Cost()) { $0 + $1.cost } }
        let (fusedOnly, _) = try run(lowered, model.weights, [Canonicalize.self, FuseScanDirections.self])
        XCTAssertEqual(total(fusedOnly), total(lowered))
    }
}
