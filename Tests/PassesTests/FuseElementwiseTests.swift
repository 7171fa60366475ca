/// `fuse-elementwise` on a lowered S block: the interpreter gives bit-identical results before and after (the fused
/// forms round where the separate ops stored), the CAB and SS2D activations and both skip-scaled residuals are
/// fused, and after the whole default pipeline the block still matches its lowered form.
import XCTest
import Frontend
import HybridIR
import Passes
import Driver

final class FuseElementwiseTests: XCTestCase {
    func loweredSBlock(c: Int, h: Int, w: Int) throws -> (Graph, WeightStore) {
        var b = Builder(name: "s_block")
        let x = b.input(TensorType(.f32, [1, c, h, w]))
        b.scope = "encoder_level1.0"
        let params = BlockParameters.ssm(channels: c, inner: 2 * c, dState: 4, dtRank: 2, compressRatio: 3, squeezeFactor: 3)
        let weights = try params.map { try b.weight("encoder_level1.0.\($0.key)", $0.shape) }
        b.output(try b.add(.ssmBlock, [x] + weights, ["inner": .int(2 * c), "d_state": .int(4), "dt_rank": .int(2),
                                                        "compress_ratio": .int(3), "squeeze_factor": .int(3)]))
        var g = b.graph
        try PassManager(Pipelines.lower).run(&g, PassContext())
        var store = RandomWeights.generate(for: g, seed: 31)
        // Skip scales away from 1 so that a dropped scale would show.
        for key in ["encoder_level1.0.skip_scale", "encoder_level1.0.skip_scale2"] {
            store[key] = Tensor(shape: [c], data: (0..<c).map { 0.5 + Float($0) / Float(c) })
        }
        return (g, store)
    }

    func input(_ g: Graph) -> Tensor {
        var rng = SplitMix64(seed: 4)
        let t = g.inputs[0].type
        return Tensor(shape: t.shape, data: (0..<t.elementCount).map { _ in Float(rng.nextUnit() * 2 - 1) })
    }

    func testSBlockIsBitIdentical() throws {
        let (g, w) = try loweredSBlock(c: 6, h: 4, w: 5)
        var fused = g
        let context = PassContext(weights: w)
        let records = try PassManager([Canonicalize.self, FoldConstants.self, FuseElementwise.self]).run(&fused, context)
        for kind in [OpKind.gelu, .relu, .sigmoid] { XCTAssertFalse(fused.ops.contains { $0.kind == kind }, kind.name) }
        XCTAssertEqual(fused.ops.filter { $0.kind == .silu }.count, 1, "only silu(z) of the gate is left")
        // x·skip_scale + out_proj(y) went into out_proj's epilogue; t·skip_scale2 + cab·ca stays a scaled add.
        XCTAssertEqual(fused.ops.filter { $0.kind == .add && $0.attributes["scaled"] != nil }.count, 1)
        XCTAssertEqual(fused.ops.filter { $0.kind == .conv2d && $0.attributes["residual_scaled"] == .bool(true) }.map(\.scope),
                       ["encoder_level1.0.self_attention.out_proj"])
        XCTAssertEqual(fused.ops.filter { $0.kind == .mul }.count, 1, "only the out_norm gate is left")
        XCTAssertEqual(records.last?.statistics.first { $0.0 == "elementwise ops fused" }?.1, 4 + 3 + 1)
        let x = input(g)
        let before = try Interpreter.run(g, inputs: [x], weights: w)[0]
        let after = try Interpreter.run(fused, inputs: [x], weights: context.weights)[0]
        XCTAssertEqual(before.data.map(\.bitPattern), after.data.map(\.bitPattern))
        // Costs are unchanged: the fused forms count what the ops they absorbed counted.
        let total = { (g: Graph) in Cost.perOp(g).map(\.cost).reduce(Cost(), +) }
        XCTAssertEqual(total(fused), total(g))
    }

    func testSBlockAfterTheDefaultPipeline() throws {
        let (g, w) = try loweredSBlock(c: 6, h: 4, w: 5)
        var optimized = g
        let context = PassContext(weights: w)
        try PassManager(Pipelines.optimize).run(&optimized, context)
        let x = input(g)
        let before = try Interpreter.run(g, inputs: [x], weights: w)[0]
        let after = try Interpreter.run(optimized, inputs: [x], weights: context.weights)[0]
        let scale = before.data.map { abs($0) }.max()!
        let err = zip(before.data, after.data).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(err / scale, 1e-5)
    }

    /// A T block after the default pipeline: both residual adds went into the fused ops, and the result holds.
    func testTBlockResidualsAfterTheDefaultPipeline() throws {
        var b = Builder(name: "t_block")
        let x = b.input(TensorType(.f32, [1, 8, 5, 7]))
        b.scope = "encoder_level1.0"
        let params = BlockParameters.transformer(channels: 8, heads: 2, hidden: 17, bias: false, biasFree: false)
        let weights = try params.map { try b.weight("encoder_level1.0.\($0.key)", $0.shape) }
        b.output(try b.add(.transformerBlock, [x] + weights, ["heads": .int(2), "hidden": .int(17), "bias": .bool(false),
                                                               "layer_norm": .string("WithBias")]))
        var g = b.graph
        try PassManager(Pipelines.lower).run(&g, PassContext())
        let w = RandomWeights.generate(for: g, seed: 8)
        var optimized = g
        let context = PassContext(weights: w)
        try PassManager(Pipelines.optimize).run(&optimized, context)
        XCTAssertFalse(optimized.ops.contains { $0.kind == .add })
        XCTAssertEqual(optimized.ops.filter { $0.attributes["residual"] == .bool(true) }.map(\.kind),
                       [.fusedAttention, .fusedFeedForward])
        let input = self.input(g)
        let before = try Interpreter.run(g, inputs: [input], weights: w)[0]
        let after = try Interpreter.run(optimized, inputs: [input], weights: context.weights)[0]
        let scale = before.data.map { abs($0) }.max()!
        let err = zip(before.data, after.data).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(err / scale, 1e-5)
    }
}
