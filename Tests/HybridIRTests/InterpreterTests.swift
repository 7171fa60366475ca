/// The interpreter's ops against values worked out by hand from their definitions.
import XCTest
@testable import HybridIR

final class InterpreterTests: XCTestCase {
    /// Runs a single op on the given operand tensors (as graph inputs).
    func run(_ kind: OpKind, _ inputs: [Tensor], _ attributes: Attributes = [:]) throws -> Tensor {
        var b = Builder(name: "t")
        let ids = inputs.map { b.input(TensorType(.f32, $0.shape)) }
        b.output(try b.add(kind, ids, attributes))
        try Verifier.verify(b.graph)
        return try Interpreter.run(b.graph, inputs: inputs, weights: [:])[0]
    }

    func assertClose(_ a: [Float], _ b: [Float], tolerance: Float = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: tolerance, file: file, line: line) }
    }

    func testConvolutionZeroPadsAndAddsBias() throws {
        // 1x1x3x3 input, one 3x3 kernel of ones: each output is the sum of its in-bounds neighbours.
        let x = Tensor(shape: [1, 1, 3, 3], data: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        let w = Tensor(shape: [1, 1, 3, 3], data: [Float](repeating: 1, count: 9))
        let y = try run(.conv2d, [x, w, Tensor(shape: [1], data: [0.5])], ["groups": .int(1), "padding": .int(1)])
        assertClose(y.data, [12, 21, 16, 27, 45, 33, 24, 39, 28].map { $0 + 0.5 })
    }

    func testDepthwiseConvolutionKeepsChannelsApart() throws {
        let x = Tensor(shape: [1, 2, 1, 2], data: [1, 2, 10, 20])
        let w = Tensor(shape: [2, 1, 1, 1], data: [3, -1])
        let y = try run(.conv2d, [x, w], ["groups": .int(2), "padding": .int(0)])
        XCTAssertEqual(y.data, [3, 6, -10, -20])
    }

    func testBatchedMatmulBroadcastsTheWeight() throws {
        let w = Tensor(shape: [2, 1, 2], data: [1, 1, 1, -1])          // (K, rows, E)
        let x = Tensor(shape: [1, 2, 2, 3], data: [1, 2, 3, 4, 5, 6, 1, 1, 1, 0, 1, 2])
        let y = try run(.matmul, [w, x])
        XCTAssertEqual(y.shape, [1, 2, 1, 3])
        XCTAssertEqual(y.data, [5, 7, 9, 1, 0, -1])
    }

    func testLayerNormWithBiasAndBiasFree() throws {
        // Two channels per pixel with values (1, 3): mean 2, var 1.
        let x = Tensor(shape: [1, 2, 1, 1], data: [1, 3])
        let w = Tensor(shape: [2], data: [2, 1])
        let b = Tensor(shape: [2], data: [0.5, 0])
        let s = 1 / Float((1 + 1e-5).squareRoot())
        let centered = try run(.layerNorm, [x, w, b], ["axis": .int(1), "eps": .float(1e-5), "centered": .bool(true)])
        assertClose(centered.data, [-2 * s + 0.5, s])
        // BiasFree: x / sqrt(var + eps) · w — the numerator is not centred, the variance is.
        let biasFree = try run(.layerNorm, [x, w], ["axis": .int(1), "eps": .float(1e-5), "centered": .bool(false)])
        assertClose(biasFree.data, [2 * s, 3 * s])
    }

    func testSoftmaxAndL2Normalize() throws {
        let x = Tensor(shape: [1, 2], data: [0, Float(log(3.0))])
        assertClose(try run(.softmax, [x], ["axis": .int(1)]).data, [0.25, 0.75])
        let v = Tensor(shape: [2, 2], data: [3, 4, 0, 0])
        assertClose(try run(.l2Normalize, [v], ["axis": .int(1), "eps": .float(1e-12)]).data, [0.6, 0.8, 0, 0])
    }

    func testUnaryFunctions() throws {
        let x = Tensor(shape: [4], data: [-1, 0, 1, 30])
        assertClose(try run(.gelu, [x]).data, [-0.15865526, 0, 0.8413447, 30])
        assertClose(try run(.silu, [x]).data, [-0.26894142, 0, 0.7310586, 30])
        // PyTorch's softplus is the identity above its threshold of 20.
        assertClose(try run(.softplus, [x]).data, [0.31326169, 0.69314718, 1.31326169, 30])
        assertClose(try run(.sigmoid, [x]).data, [0.26894142, 0.5, 0.7310586, 1])
        XCTAssertEqual(try run(.relu, [x]).data, [0, 0, 1, 30])
    }

    func testPixelShuffleFollowsTheChannelOrderAndInvertsUnshuffle() throws {
        // Channel c*4 + i*2 + j goes to pixel (2y+i, 2x+j).
        let x = Tensor(shape: [1, 4, 1, 1], data: [1, 2, 3, 4])
        let y = try run(.pixelShuffle, [x], ["factor": .int(2)])
        XCTAssertEqual(y.shape, [1, 1, 2, 2])
        XCTAssertEqual(y.data, [1, 2, 3, 4])
        let big = Tensor(shape: [1, 2, 4, 6], data: (0..<48).map(Float.init))
        let down = try run(.pixelUnshuffle, [big], ["factor": .int(2)])
        XCTAssertEqual(down.shape, [1, 8, 2, 3])
        XCTAssertEqual(down.data[0..<3], [0, 2, 4])     // channel 0 = (c 0, i 0, j 0)
        XCTAssertEqual(down.data[6..<9], [1, 3, 5])     // channel 1 = (c 0, i 0, j 1)
        XCTAssertEqual(try run(.pixelShuffle, [down], ["factor": .int(2)]), big)
    }

    func testLayoutOps() throws {
        let x = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try run(.transpose, [x], ["perm": .ints([1, 0])]).data, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(try run(.flip, [x], ["axis": .int(1)]).data, [3, 2, 1, 6, 5, 4])
        XCTAssertEqual(try run(.slice, [x], ["axis": .int(1), "start": .int(1), "size": .int(2)]).data, [2, 3, 5, 6])
        XCTAssertEqual(try run(.concat, [x, x], ["axis": .int(1)]).data, [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6])
        XCTAssertEqual(try run(.reduceMean, [x], ["axes": .ints([1])]).data, [2, 5])
        XCTAssertEqual(try run(.add, [x, Tensor(shape: [2, 1], data: [10, 20])]).data, [11, 12, 13, 24, 25, 26])
    }

    func testSelectiveScanFollowsTheRecurrence() throws {
        // One channel, N = 1, L = 2, no softplus: h0 = dt0·B0·u0, h1 = exp(dt1·A)·h0 + dt1·B1·u1, y = h·C + D·u.
        let u = Tensor(shape: [1, 1, 2], data: [1, 2])
        let dt = Tensor(shape: [1, 1, 2], data: [0.5, 0.25])
        let a = Tensor(shape: [1, 1], data: [-2])
        let bm = Tensor(shape: [1, 1, 1, 2], data: [3, 4])
        let cm = Tensor(shape: [1, 1, 1, 2], data: [5, 6])
        let d = Tensor(shape: [1], data: [0.1])
        let y = try run(.selectiveScan, [u, dt, a, bm, cm, d],
                        ["has_D": .bool(true), "has_z": .bool(false), "has_delta_bias": .bool(false),
                         "delta_softplus": .bool(false)])
        let h0 = 0.5 * 3 * 1.0, h1 = exp(0.25 * -2) * h0 + 0.25 * 4 * 2
        assertClose(y.data, [Float(h0 * 5 + 0.1), Float(h1 * 6 + 0.2)], tolerance: 1e-5)
    }

    func testSelectiveScanGroupsSoftplusAndGate() throws {
        // Two channels in two groups; delta bias and softplus; z gate. Channel 1 reads group 1.
        let u = Tensor(shape: [1, 2, 1], data: [1, 1])
        let dt = Tensor(shape: [1, 2, 1], data: [0, 0])
        let a = Tensor(shape: [2, 1], data: [-1, -1])
        let bm = Tensor(shape: [1, 2, 1, 1], data: [1, 2])
        let cm = Tensor(shape: [1, 2, 1, 1], data: [1, 3])
        let z = Tensor(shape: [1, 2, 1], data: [0, 1])
        let bias = Tensor(shape: [2], data: [0, 1])
        let y = try run(.selectiveScan, [u, dt, a, bm, cm, z, bias],
                        ["has_D": .bool(false), "has_z": .bool(true), "has_delta_bias": .bool(true),
                         "delta_softplus": .bool(true)])
        let sp0 = log(2.0), sp1 = log1p(exp(1.0))
        let silu1 = 1 / (1 + exp(-1.0))
        assertClose(y.data, [Float(sp0 * 1 * 1 * 0), Float(sp1 * 2 * 3 * silu1)], tolerance: 1e-5)
    }

    func testUnboundWeightIsAnError() throws {
        var b = Builder(name: "w")
        b.output(try b.weight("missing.weight", [2]))
        XCTAssertThrowsError(try Interpreter.run(b.graph, inputs: [], weights: [:])) { error in
            XCTAssertTrue("\(error)".contains("weight 'missing.weight' is not bound"), "\(error)")
        }
    }
}
