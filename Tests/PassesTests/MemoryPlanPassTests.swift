/// schedule-kernels and plan-memory beyond the text-IR files: the schedule attribute reads back, the target's
/// vector width reaches it, the annotations change no result, and the plan holds on bundled models.
import Driver
import Frontend
import HybridIR
import Passes
import XCTest

final class MemoryPlanPassTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func load(_ name: String, _ size: String) throws -> (Graph, WeightStore) {
        let model = try ModelLoader.load(Self.root.appendingPathComponent("Graphs/tests/\(name)").path, weights: .random(seed: 1),
                                         input: try InputSize(parsing: size))
        return (model.graph, model.weights)
    }

    /// Every op's `schedule` attribute parses back into the record that printed it.
    func testScheduleAttributeRoundTrips() throws {
        let (g, w) = try load("tiny-hybrid.yml", "3x16x16")
        var graph = g
        try PassManager(Pipelines.compile).run(&graph, PassContext(weights: w))
        var checked = 0
        for op in graph.ops {
            guard case .string(let text)? = op.attributes["schedule"] else { continue }
            let s = try XCTUnwrap(Schedule(encoded: text), text)
            XCTAssertEqual(s.description, text)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 10)
        // The text form keeps the annotations.
        XCTAssertEqual(try Parser.parse(Printer.print(graph)), graph.renumbered())
    }

    /// The context's vector width and L1 size (the target's) choose the vectors and the pixel tiles.
    func testScheduleFollowsTheTarget() throws {
        var g = try Parser.parse("""
            graph @g(%0: f32[1,4,8,8]) {
              %1 = weight {name = "pw"} : f32[8,4,1,1]
              %2 = conv2d(%0, %1) {groups = 1, padding = 0} : f32[1,8,8,8]
              return %2
            }
            """)
        let context = PassContext()
        context.vectorWidth = 4
        context.l1dBytes = 64 * 1024
        try ScheduleKernels().run(&g, context)
        let s = try XCTUnwrap(Schedule.annotated(g.ops[1]))
        XCTAssertEqual(s.vectorWidth, 4)
        // 16 registers of 4 floats: 6 rows x 2 vectors (12 accumulators + 2 loads + 1 broadcast); KC fills half of
        // the 64 KiB L1 with the 6xKC weights and a KCx8 panel slice (32768 / (4 * 14) = 585, down to a multiple
        // of 8); NC fills half of the 1 MiB L2 with the KCxNC panel (524288 / (4 * 584) = 224).
        XCTAssertEqual(s.tiles, ["mr": 6, "nr": 8, "kc": 584, "nc": 224])
        context.vectorWidth = 8
        context.l1dBytes = 32 * 1024
        try ScheduleKernels().run(&g, context)
        XCTAssertEqual(try XCTUnwrap(Schedule.annotated(g.ops[1])).tiles, ["mr": 6, "nr": 16, "kc": 184, "nc": 256])
    }

    /// Numerical: the interpreter gives bit-identical results before and after schedule-kernels and plan-memory
    /// (and the -O0 plan) on the lowered and optimised graphs of a hybrid model.
    func testAnnotationsChangeNoResult() throws {
        let (g, w) = try load("tiny-hybrid.yml", "3x16x16")
        var lowered = g
        let context = PassContext(weights: w)
        try PassManager(Pipelines.lower + Pipelines.optimize).run(&lowered, context)
        var rng = SplitMix64(seed: 5)
        let x = Tensor(shape: lowered.inputs[0].type.shape,
                       data: (0..<lowered.inputs[0].type.shape.reduce(1, *)).map { _ in Float(rng.nextUnit() * 2 - 1) })
        let before = try Interpreter.run(lowered, inputs: [x], weights: context.weights)
        for passes in [Pipelines.plan, [ScheduleKernels.self, PlanMemoryWithoutReuse.self]] as [[Pass.Type]] {
            var planned = lowered
            try PassManager(passes).run(&planned, context)
            XCTAssertNotEqual(planned, lowered)
            XCTAssertEqual(try Interpreter.run(planned, inputs: [x], weights: context.weights), before)
        }
    }

    /// On every bundled model at 3x64x64 the plan's arena is within 1.10x of its lower bound, residual adds (or
    /// the convs that absorbed them) run in place, and the -O0 plan reuses nothing (its arena is the sum of its slots).
    func testBundledModelsPlan() throws {
        let dir = Self.root.appendingPathComponent("Graphs/models")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path).filter({ $0.hasSuffix(".yml") }).sorted() {
            let model = try ModelLoader.load(dir.appendingPathComponent(name).path, weights: .random(seed: 0),
                                             input: try InputSize(parsing: "3x64x64"))
            var graph = model.graph, o0 = model.graph
            let context = PassContext(weights: model.weights)
            let records = try PassManager(Pipelines.compile).run(&graph, context)
            try PassManager(Pipelines.O0).run(&o0, PassContext(weights: model.weights))
            let arena = try graph.attributes.int("arena_floats"), bound = try graph.attributes.int("lower_bound_floats")
            XCTAssertLessThanOrEqual(Double(arena), 1.10 * Double(bound), name)
            // Residual adds (or the convs that absorbed them, fuse-elementwise) run in place.
            XCTAssertGreaterThan(graph.ops.filter { [.add, .conv2d].contains($0.kind) && $0.attributes["in_place"] != nil }.count, 0, name)
            XCTAssertTrue(records.last!.statistics.contains { $0.0 == "arena bytes" && $0.1 == arena * 4 })
            XCTAssertFalse(o0.ops.contains { $0.attributes["in_place"] != nil }, name)
            print("\(name) 3x64x64: arena \(arena * 4) B, lower bound \(bound * 4) B, -O0 arena \(try o0.attributes.int("arena_floats") * 4) B")
        }
    }
}
