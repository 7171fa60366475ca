/// `fuse-attention` on real Restormer T blocks lowered by `expand-blocks`: every MDTA is fused, the interpreter
/// agrees before and after on seeded inputs (heads 1 and 2, odd widths, with and without biases), and the
/// statistics report the bytes the fused op no longer writes.
import XCTest
import Frontend
import HybridIR
import Passes
import Driver

final class FuseAttentionTests: XCTestCase {
    /// One T block of `c` channels on an h×w input, lowered to primitive ops, with seeded weights.
    func loweredBlock(c: Int, heads: Int, h: Int, w: Int, bias: Bool, layerNorm: String = "WithBias") throws -> (Graph, WeightStore) {
        var b = Builder(name: "t_block")
        let x = b.input(TensorType(.f32, [1, c, h, w]))
        b.scope = "encoder_level1.0"
        let hidden = c * 2 + 1
        let params = BlockParameters.transformer(channels: c, heads: heads, hidden: hidden, bias: bias,
                                                 biasFree: layerNorm == "BiasFree")
        let weights = try params.map { try b.weight("encoder_level1.0.\($0.key)", $0.shape) }
        let y = try b.add(.transformerBlock, [x] + weights,
                          ["heads": .int(heads), "hidden": .int(hidden), "bias": .bool(bias), "layer_norm": .string(layerNorm)])
        b.output(y)
        var g = b.graph
        try PassManager(Pipelines.lower).run(&g, PassContext())
        var store = RandomWeights.generate(for: g, seed: 11)
        // Temperatures away from 1 so that a wrong head would show.
        if let t = store["encoder_level1.0.attn.temperature"] {
            store["encoder_level1.0.attn.temperature"] = Tensor(shape: t.shape, data: (0..<t.count).map { Float(0.5 + Double($0)) })
        }
        return (g, store)
    }

    func input(_ g: Graph, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let t = g.inputs[0].type
        return Tensor(shape: t.shape, data: (0..<t.elementCount).map { _ in Float(rng.nextUnit() * 2 - 1) })
    }

    func testFusesTBlocksAndKeepsTheResult() throws {
        for (c, heads, h, w, bias) in [(8, 1, 5, 7, false), (8, 2, 4, 9, true), (12, 2, 3, 11, false), (6, 1, 1, 5, true)] {
            let (lowered, weights) = try loweredBlock(c: c, heads: heads, h: h, w: w, bias: bias)
            var fused = lowered
            let context = PassContext(weights: weights)
            try PassManager([FuseAttention.self]).run(&fused, context)
            let what = "C=\(c) heads=\(heads) \(h)x\(w) bias=\(bias)"
            XCTAssertEqual(fused.ops.filter { $0.kind == .fusedAttention }.count, 1, what)
            for kind in [OpKind.softmax, .l2Normalize, .matmul, .transpose] {
                XCTAssertFalse(fused.ops.contains { $0.kind == kind }, "\(what): \(kind.name) left")
            }
            let op = fused.ops.first { $0.kind == .fusedAttention }!
            XCTAssertEqual(try op.attributes.int("heads"), heads)
            XCTAssertEqual(try op.attributes.bool("bias"), bias)
            XCTAssertEqual(op.scope, "encoder_level1.0.attn")
            XCTAssertEqual(context.statistics.first { $0.0 == "attention blocks fused" }?.1, 1)
            // The fused op costs what the ops it replaced cost.
            let total = { (g: Graph) in Cost.perOp(g).map(\.cost).reduce(Cost(), +) }
            XCTAssertEqual(total(fused), total(lowered), what)
            // The graph still prints and parses back.
            XCTAssertEqual(Printer.print(try Parser.parse(Printer.print(fused))), Printer.print(fused))

            let x = input(lowered, seed: 5)
            let before = try Interpreter.run(lowered, inputs: [x], weights: weights)[0]
            let after = try Interpreter.run(fused, inputs: [x], weights: weights)[0]
            let scale = before.data.map { abs($0) }.max()!
            let err = zip(before.data, after.data).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(err / scale, 1e-5, what)
        }
    }

    /// Bytes written per MDTA at the first Restormer level (C = 48, 1 head) on a 64x64 tile.
    func testStatisticsReportBytesNoLongerWritten() throws {
        let (lowered, _) = try loweredBlock(c: 48, heads: 1, h: 64, w: 64, bias: false)
        var fused = lowered
        let context = PassContext()
        try PassManager([FuseAttention.self]).run(&fused, context)
        let stats = Dictionary(uniqueKeysWithValues: context.statistics)
        let plane = 48 * 64 * 64 * 4
        // Unfused: qkv 3C, dwconv 3C, three slices 3C, two L2 norms 2C, kᵀ C, attn·v C, project_out C (per pixel),
        // plus the C×C Gram, its scaled copy and its softmax; reshapes are views.
        XCTAssertEqual(stats["bytes written by unfused MDTA"], 14 * plane + 3 * 48 * 48 * 4)
        XCTAssertEqual(stats["bytes written by fused MDTA"], 2 * plane)
        print("fuse-attention statistics (C=48, heads 1, 64x64):", context.statistics)
    }

    /// A block whose attention output is also a graph output keeps its primitive ops.
    func testIntermediateGraphOutputPreventsFusion() throws {
        var (lowered, _) = try loweredBlock(c: 8, heads: 2, h: 3, w: 5, bias: false)
        let softmax = lowered.ops.first { $0.kind == .softmax }!.result
        lowered.outputs.append(softmax)
        try PassManager([FuseAttention.self]).run(&lowered, PassContext())
        XCTAssertFalse(lowered.ops.contains { $0.kind == .fusedAttention })
    }
}
