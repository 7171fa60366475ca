/// `fuse-feed-forward` at the sizes of the real networks: the interpreter gives the same result before and after
/// (hidden 127 and 255, odd widths, with and without biases), a lowered transformer block's GDFN is found, and
/// the statistics report the intermediate bytes a 256x256 block no longer writes.
import XCTest
import Frontend
import HybridIR
import Passes

final class FuseFeedForwardTests: XCTestCase {
    /// A GDFN as `expand-blocks` writes it, followed by its residual add.
    static func gdfn(channels c: Int, hidden: Int, height: Int, width: Int, bias: Bool) throws -> Graph {
        var b = Builder(name: "gdfn")
        let x = b.input(TensorType(.f32, [1, c, height, width]))
        func conv(_ v: ValueID, _ name: String, _ shape: [Int], groups: Int, padding: Int) throws -> ValueID {
            var args = [v, try b.weight("\(name).weight", shape)]
            if bias { args.append(try b.weight("\(name).bias", [shape[0]])) }
            return try b.add(.conv2d, args, ["groups": .int(groups), "padding": .int(padding)], scope: name)
        }
        var u = try conv(x, "ffn.project_in", [2 * hidden, c, 1, 1], groups: 1, padding: 0)
        u = try conv(u, "ffn.dwconv", [2 * hidden, 1, 3, 3], groups: 2 * hidden, padding: 1)
        let x1 = try b.add(.slice, [u], ["axis": .int(1), "start": .int(0), "size": .int(hidden)])
        let x2 = try b.add(.slice, [u], ["axis": .int(1), "start": .int(hidden), "size": .int(hidden)])
        let gated = try b.add(.mul, [try b.add(.gelu, [x1]), x2])
        let f = try conv(gated, "ffn.project_out", [c, hidden, 1, 1], groups: 1, padding: 0)
        b.output(try b.add(.add, [x, f]))
        return b.graph
    }

    func fuse(_ graph: Graph) throws -> (Graph, [(String, Int)]) {
        var g = graph
        let records = try PassManager([FuseFeedForward.self]).run(&g, PassContext())
        return (g, records[0].statistics)
    }

    func checkEquivalence(channels: Int, hidden: Int, height: Int, width: Int, bias: Bool) throws {
        let graph = try Self.gdfn(channels: channels, hidden: hidden, height: height, width: width, bias: bias)
        let (fused, stats) = try fuse(graph)
        XCTAssertEqual(fused.ops.filter { $0.kind == .fusedFeedForward }.count, 1)
        XCTAssertFalse(fused.ops.contains { $0.kind == .gelu || $0.kind == .slice || $0.kind == .conv2d })
        XCTAssertEqual(stats.first { $0.0 == "feed-forwards fused" }?.1, 1)
        let weights = RandomWeights.generate(for: graph, seed: UInt64(hidden))
        var rng = SplitMix64(seed: 11)
        let input = Tensor(shape: graph.inputs[0].type.shape,
                           data: (0..<graph.inputs[0].type.elementCount).map { _ in Float(rng.nextUnit() * 4 - 2) })
        let before = try Interpreter.run(graph, inputs: [input], weights: weights)[0]
        let after = try Interpreter.run(fused, inputs: [input], weights: weights)[0]
        // The fused op rounds to fp32 where the unfused ops store, in the same order: the results are identical.
        XCTAssertEqual(before.data.map(\.bitPattern), after.data.map(\.bitPattern),
                       "C \(channels) hidden \(hidden) \(height)x\(width) bias \(bias)")
    }

    func testHidden127OddWidth() throws {
        try checkEquivalence(channels: 48, hidden: 127, height: 4, width: 7, bias: false)
    }

    func testHidden255OddWidthWithBias() throws {
        try checkEquivalence(channels: 96, hidden: 255, height: 3, width: 5, bias: true)
    }

    func testSingleRowAndColumn() throws {
        try checkEquivalence(channels: 3, hidden: 5, height: 1, width: 9, bias: true)
        try checkEquivalence(channels: 3, hidden: 5, height: 6, width: 1, bias: false)
    }

    /// A transformer block lowered by `expand-blocks` has exactly one GDFN, and it is fused.
    func testLoweredTransformerBlock() throws {
        var b = Builder(name: "block")
        let x = b.input(TensorType(.f32, [1, 8, 4, 5]))
        var block = Operation(kind: .transformerBlock, operands: [x],
                              attributes: ["heads": .int(2), "hidden": .int(21), "bias": .bool(false),
                                           "layer_norm": .string("WithBias")], result: 0)
        let params = try BlockParameters.of(block, channels: 8)
        let weights = try params.map { try b.weight($0.key, $0.shape) }
        block.operands += weights
        let out = try b.add(.transformerBlock, block.operands, block.attributes)
        b.output(out)
        var g = b.graph
        try PassManager([InferShapes.self, ExpandBlocks.self, InferShapes.self]).run(&g, PassContext())
        let (fused, _) = try fuse(g)
        let ffn = fused.ops.filter { $0.kind == .fusedFeedForward }
        XCTAssertEqual(ffn.count, 1)
        XCTAssertEqual(try ffn.first?.attributes.int("hidden"), 21)
        let w = RandomWeights.generate(for: g, seed: 5)
        let input = Tensor(shape: [1, 8, 4, 5], data: (0..<160).map { Float($0 % 13) / 6 - 1 })
        XCTAssertEqual(try Interpreter.run(g, inputs: [input], weights: w), try Interpreter.run(fused, inputs: [input], weights: w))
    }

    /// The fused op costs what the ops it replaced cost: the same MACs, and GELU plus the gate elementwise.
    func testCostIsUnchanged() throws {
        let graph = try Self.gdfn(channels: 48, hidden: 127, height: 16, width: 24, bias: true)
        let (fused, _) = try fuse(graph)
        let total = { (g: Graph) in Cost.perOp(g).map(\.cost).reduce(Cost(), +) }
        XCTAssertEqual(total(fused), total(graph))
        XCTAssertEqual(total(fused).macs, 16 * 24 * (254 * 48 + 254 * 9 + 48 * 127))
    }

    /// Level 1 of Restormer at 256x256 (C 48, hidden 127): the six intermediates (project_in and dwconv outputs
    /// of 2h channels, both halves, gelu, gate of h channels) are no longer written, 266,338,304 bytes per block.
    func testStatisticsAt256() throws {
        let graph = try Self.gdfn(channels: 48, hidden: 127, height: 256, width: 256, bias: false)
        let (_, stats) = try fuse(graph)
        let pixels = 256 * 256
        XCTAssertEqual(stats.first { $0.0 == "intermediate bytes not written" }?.1, (2 * 254 + 4 * 127) * pixels * 4)
        XCTAssertEqual(stats.first { $0.0 == "intermediate bytes not written" }?.1, 266_338_304)
    }
}
