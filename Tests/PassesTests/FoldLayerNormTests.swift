/// `fold-layer-norm` on lowered T and S blocks: the interpreter gives the same result before and after (WithBias and
/// BiasFree, alone and followed by the fusions that carry the norm into fused_attention and fused_feed_forward),
/// also on inputs whose channels share a large offset (+100), where subtracting μ·rowsum(W) after the GEMM would
/// cancel; and the gated out_norm of an S block.
import XCTest
import Frontend
import HybridIR
import Passes
import Driver

final class FoldLayerNormTests: XCTestCase {
    /// One block op of `c` channels on an h×w input, lowered to primitive ops, with seeded weights.
    func lowered(_ kind: OpKind, c: Int, h: Int, w: Int, layerNorm: String = "WithBias", bias: Bool = false) throws -> (Graph, WeightStore) {
        var b = Builder(name: "block")
        let x = b.input(TensorType(.f32, [1, c, h, w]))
        let params: [BlockParameter]
        let attributes: Attributes
        if kind == .transformerBlock {
            params = BlockParameters.transformer(channels: c, heads: 2, hidden: 2 * c + 1, bias: bias, biasFree: layerNorm == "BiasFree")
            attributes = ["heads": .int(2), "hidden": .int(2 * c + 1), "bias": .bool(bias), "layer_norm": .string(layerNorm)]
        } else {
            params = BlockParameters.ssm(channels: c, inner: 2 * c, dState: 4, dtRank: 2, compressRatio: 3, squeezeFactor: 3)
            attributes = ["inner": .int(2 * c), "d_state": .int(4), "dt_rank": .int(2), "compress_ratio": .int(3),
                          "squeeze_factor": .int(3)]
        }
        b.scope = "encoder_level1.0"
        let weights = try params.map { try b.weight("encoder_level1.0.\($0.key)", $0.shape) }
        b.output(try b.add(kind, [x] + weights, attributes))
        var g = b.graph
        try PassManager(Pipelines.lower).run(&g, PassContext())
        return (g, RandomWeights.generate(for: g, seed: 23))
    }

    /// Seeded input in [offset − 1, offset + 1].
    func input(_ g: Graph, offset: Float) -> Tensor {
        var rng = SplitMix64(seed: 9)
        let t = g.inputs[0].type
        return Tensor(shape: t.shape, data: (0..<t.elementCount).map { _ in offset + Float(rng.nextUnit() * 2 - 1) })
    }

    /// Runs `passes` after the lowering and compares the block's result before and after, relative to the size of
    /// what the block adds to its input (the residual branches), so that a +100 offset cannot hide an error.
    @discardableResult
    func check(_ graph: Graph, _ weights: WeightStore, _ passes: [Pass.Type], tolerance: Float = 1e-5,
               _ what: String) throws -> (Graph, [String: Int]) {
        var after = graph
        let context = PassContext(weights: weights)
        let records = try PassManager(passes).run(&after, context)
        let stats = Dictionary(records.filter { $0.pass == FoldLayerNorm.name }.flatMap(\.statistics), uniquingKeysWith: +)
        for offset: Float in [0, 100] {
            let x = input(graph, offset: offset)
            let before = try Interpreter.run(graph, inputs: [x], weights: weights)[0]
            let folded = try Interpreter.run(after, inputs: [x], weights: context.weights)[0]
            let branch = zip(before.data, x.data).map { abs($0 - $1) }.max()!
            let err = zip(before.data, folded.data).map { abs($0 - $1) }.max()!
            // Both graphs store the block's fp32 output (around +100 with the offset): a few of its ulps are
            // rounding, not an error of the fold. Cancellation would be errors of the branch's own size.
            let ulp = before.data.map { abs($0).ulp }.max()!
            XCTAssertLessThanOrEqual(err, tolerance * branch + 4 * ulp, "\(what), input offset \(offset)")
        }
        return (after, stats)
    }

    static let fold: [Pass.Type] = [Canonicalize.self, FoldConstants.self, FoldLayerNorm.self]
    static let foldAndFuse: [Pass.Type] = fold + [FuseAttention.self, FuseFeedForward.self, EliminateDeadCode.self]

    func testTransformerBlockWithBias() throws {
        let (g, w) = try lowered(.transformerBlock, c: 8, h: 5, w: 7)
        let (folded, stats) = try check(g, w, Self.fold, "T block WithBias, folded")
        XCTAssertFalse(folded.ops.contains { $0.kind == .layerNorm })
        XCTAssertEqual(folded.ops.filter { (try? $0.attributes.string("norm")) == "with_bias" }.count, 2)
        XCTAssertEqual(stats["layer norms folded"], 2)
        let (fused, _) = try check(g, w, Self.foldAndFuse, "T block WithBias, folded and fused")
        let attention = try XCTUnwrap(fused.ops.first { $0.kind == .fusedAttention })
        let ffn = try XCTUnwrap(fused.ops.first { $0.kind == .fusedFeedForward })
        XCTAssertEqual(try attention.attributes.string("norm"), "with_bias")
        XCTAssertEqual(try ffn.attributes.string("norm"), "with_bias")
        // The bias-free block still gets a qkv and a project_in bias: b' = W·β.
        XCTAssertEqual(try ShapeRules.fusedAttentionRoles(attention.attributes).filter { $0.hasSuffix("bias") }, ["qkv.bias"])
        XCTAssertEqual(try ShapeRules.fusedFeedForwardRoles(ffn.attributes).filter { $0.hasSuffix("bias") }, ["project_in bias"])
    }

    func testTransformerBlockBiasFree() throws {
        let (g, w) = try lowered(.transformerBlock, c: 6, h: 4, w: 9, layerNorm: "BiasFree")
        let (folded, _) = try check(g, w, Self.fold, "T block BiasFree, folded")
        XCTAssertEqual(folded.ops.filter { (try? $0.attributes.string("norm")) == "bias_free" }.count, 2)
        let (fused, _) = try check(g, w, Self.foldAndFuse, "T block BiasFree, folded and fused")
        let attention = try XCTUnwrap(fused.ops.first { $0.kind == .fusedAttention })
        XCTAssertEqual(try attention.attributes.string("norm"), "bias_free")
        // No bias is invented: BiasFree never takes the WithBias form with β = 0.
        XCTAssertEqual(try ShapeRules.fusedAttentionRoles(attention.attributes).filter { $0.hasSuffix("bias") }, [])
    }

    func testTransformerBlockWithConvBiases() throws {
        for norm in ["WithBias", "BiasFree"] {
            let (g, w) = try lowered(.transformerBlock, c: 4, h: 3, w: 5, layerNorm: norm, bias: true)
            let (fused, _) = try check(g, w, Self.foldAndFuse, "T block \(norm) with conv biases")
            XCTAssertEqual(fused.ops.filter { $0.kind == .fusedAttention || $0.kind == .fusedFeedForward }.count, 2)
        }
    }

    /// S block: ln_1 folds into in_proj, out_norm takes its silu(z) gate, ln_2 (before the 3x3 CAB conv) moves
    /// into that conv unfolded (γ, β as operands; the padding stays 0). Checked on inputs with a +100 offset too.
    func testSSMBlock() throws {
        let (g, w) = try lowered(.ssmBlock, c: 6, h: 4, w: 5)
        let (folded, stats) = try check(g, w, Self.fold + [EliminateDeadCode.self], "S block")
        let norms = folded.ops.filter { $0.kind == .layerNorm }
        XCTAssertEqual(norms.map(\.scope), ["encoder_level1.0.self_attention.out_norm"])
        XCTAssertNotNil(norms.first?.attributes["gate"])
        XCTAssertEqual(folded.ops.filter { $0.attributes["norm"] != nil }.map(\.scope),
                       ["encoder_level1.0.self_attention.in_proj", "encoder_level1.0.conv_blk.cab.0"])
        let cab = try XCTUnwrap(folded.ops.first { $0.scope == "encoder_level1.0.conv_blk.cab.0" })
        XCTAssertEqual(try FoldedNorm.of(cab.attributes), FoldedNorm(centered: true, eps: 1e-5, affine: true))
        // The conv's own weights and bias, then ln_2's γ and β; it reads ln_2's input.
        let ln2 = try XCTUnwrap(g.ops.first { $0.scope == "encoder_level1.0.ln_2" })
        XCTAssertEqual(cab.operands.first, ln2.operands[0])
        XCTAssertEqual(Array(cab.operands.suffix(2)), Array(ln2.operands.dropFirst()))
        // silu(z) went into the gated norm; the depthwise conv's silu stays.
        XCTAssertEqual(folded.ops.filter { $0.kind == .silu }.count, g.ops.filter { $0.kind == .silu }.count - 1)
        XCTAssertEqual(stats["layer norms folded"], 1)
        XCTAssertEqual(stats["layer norms moved into dense convs"], 1)
        XCTAssertEqual(stats["dense convs given an unfolded norm"], 1)
        XCTAssertEqual(stats["layer norms fused with their gate"], 1)
        XCTAssertEqual(stats["layer norms left"], 0)
        // Through the rest of the pipeline (the GELU joins the conv as its activation) the result still agrees.
        let (fused, _) = try check(g, w, Pipelines.optimize, tolerance: 1e-4, "S block, optimised")
        XCTAssertFalse(fused.ops.contains { $0.kind == .layerNorm && $0.attributes["gate"] == nil })
    }

    /// The folded weights are what the definition says: W' = W·diag(γ), b' = b + W·β.
    func testFoldedWeights() throws {
        let text = """
            graph @g(%0: f32[1,2,1,1]) {
              %1 = weight {name = "g"} : f32[2]
              %2 = weight {name = "b"} : f32[2]
              %3 = layer_norm(%0, %1, %2) {axis = 1, centered = true, eps = 1e-05}
              %4 = weight {name = "w"} : f32[1,2,1,1]
              %5 = weight {name = "c"} : f32[1]
              %6 = conv2d(%3, %4, %5) {groups = 1, padding = 0}
              return %6
            }
            """
        var g = try Parser.parse(text)
        let context = PassContext(weights: ["g": Tensor(shape: [2], data: [2, 3]), "b": Tensor(shape: [2], data: [0.5, -1]),
                                            "w": Tensor(shape: [1, 2, 1, 1], data: [4, 5]), "c": Tensor(shape: [1], data: [0.25])])
        try PassManager([InferShapes.self, FoldLayerNorm.self]).run(&g, context)
        XCTAssertEqual(context.weights["w.ln_folded"]?.data, [8, 15])
        XCTAssertEqual(context.weights["w.ln_folded_bias"]?.data, [0.25 + 4 * 0.5 - 5])
    }
}
