/// The pass manager, the registry, and the lowering of every bundled model.
import XCTest
import Frontend
import HybridIR
import Passes
import Driver

final class PipelineTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testEveryPassFileIsRegistered() throws {
        let dir = Self.root.appendingPathComponent("Passes")
        let registered = Set(PassRegistry.all.map { String(describing: $0) })
        var found = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) where file.hasSuffix(".swift") {
            let text = try String(contentsOfFile: dir.appendingPathComponent(file).path, encoding: .utf8)
            for line in text.split(separator: "\n") where line.contains("struct ") && line.contains(": Pass") {
                let name = line.split(separator: " ").drop { $0 != "struct" }.dropFirst().first.map { String($0.dropLast()) } ?? ""
                found += 1
                XCTAssertTrue(registered.contains(name), "\(file) defines pass \(name), which PassRegistry does not list")
                XCTAssertEqual(file, "\(name).swift", "a pass lives in the file named after it")
            }
        }
        XCTAssertEqual(found, PassRegistry.all.count)
        for pass in PassRegistry.all {
            XCTAssertTrue(pass.name.allSatisfy { $0.isLowercase || $0 == "-" }, "\(pass.name) is not kebab-case")
        }
    }

    /// A pass that breaks the graph is caught by the verifier the manager runs after it.
    func testVerifierRunsAfterEveryPass() throws {
        struct Break: Pass {
            static let name = "break"
            static let summary = "test only"
            func run(_ graph: inout Graph, _ context: PassContext) throws { graph.ops[0].type = TensorType(.f32, [9]) }
        }
        var g = try Parser.parse("graph @g(%0: f32[2]) {\n  %1 = exp(%0) : f32[2]\n  return %1\n}")
        XCTAssertThrowsError(try PassManager([Break.self]).run(&g, PassContext())) { error in
            XCTAssertTrue("\(error)".contains("the graph after break is invalid"), "\(error)")
        }
    }

    /// Every bundled and test spec builds, lowers to primitive ops, and both forms round-trip through the text IR.
    func testBundledModelsLowerAndRoundTrip() throws {
        var specs: [String] = []
        for dir in ["Graphs/models", "Graphs/tests"] {
            let path = Self.root.appendingPathComponent(dir)
            specs += try FileManager.default.contentsOfDirectory(atPath: path.path).filter { $0.hasSuffix(".yml") }
                .map { path.appendingPathComponent($0).path }
        }
        XCTAssertGreaterThanOrEqual(specs.count, 11)
        for spec in specs.sorted() {
            let parsed = try ModelSpecReader.load(path: spec).spec
            let graph = try UNetBuilder.build(parsed, height: 16, width: 16)
            let lowered = try ModelLoader.lower(graph, weights: [:])
            for graph in [graph, lowered] {
                let printed = Printer.print(graph)
                let reparsed = try Parser.parse(printed, source: spec)
                XCTAssertEqual(Printer.print(reparsed), printed, "\(spec) does not round-trip")
                try Verifier.verify(reparsed)
            }
            XCTAssertFalse(lowered.ops.contains { $0.kind.level == .block })
        }
    }

    func testUnknownPassListsKnownOnes() {
        XCTAssertThrowsError(try Pipelines.parse(list: "infer-shapes,fuse-everything")) { error in
            XCTAssertTrue("\(error)".contains("unknown pass 'fuse-everything'; known passes: infer-shapes, expand-blocks"), "\(error)")
        }
    }

    func testInferShapesNamesTheOp() throws {
        var g = try Parser.parse("""
        graph @g(%0: f32[1,6,4,4]) {
          %1 = pixel_shuffle(%0) {factor = 2} loc("up4_3.body.1")
          return %1
        }
        """)
        XCTAssertThrowsError(try PassManager([InferShapes.self]).run(&g, PassContext())) { error in
            XCTAssertEqual("\(error)", "pixel_shuffle %1 (up4_3.body.1): infer-shapes: channels 6 are not divisible by 4")
        }
    }
}
