/// Runs the text-IR pass tests of Tests/PassesTests/Inputs: each case is parsed, run through the pipeline on its
/// `// RUN:` line, printed, and matched against its `// CHECK` lines; interpretable cases are also run through
/// the interpreter before and after, which must agree exactly, or to the file's `// TOLERANCE:` (max abs error
/// relative to the largest output value) for passes that reorder sums.
import XCTest
import Frontend
import HybridIR
import Passes
import Driver

final class PassFileTests: XCTestCase {
    static let inputs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Inputs")

    func testEveryPassFile() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.inputs, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "hir" }.sorted { $0.path < $1.path }
        XCTAssertFalse(files.isEmpty)
        for url in files {
            let text = try String(contentsOf: url, encoding: .utf8)
            let chunks = text.components(separatedBy: "// -----")
            guard let run = chunks[0].split(separator: "\n").first(where: { $0.hasPrefix("// RUN:") }) else {
                XCTFail("\(url.lastPathComponent) has no // RUN: line")
                continue
            }
            let passes = try Pipelines.parse(list: String(run.dropFirst("// RUN:".count)))
            // Passes that reorder floating-point sums (fusions) state a relative tolerance; others must be exact.
            let tolerance = chunks[0].split(separator: "\n").first { $0.hasPrefix("// TOLERANCE:") }
                .flatMap { Float($0.dropFirst("// TOLERANCE:".count).trimmingCharacters(in: .whitespaces)) }
            for (i, chunk) in chunks.enumerated().dropFirst() {
                try runCase(chunk, passes: passes, tolerance: tolerance, name: "\(url.lastPathComponent) case \(i)")
            }
        }
    }

    func runCase(_ chunk: String, passes: [Pass.Type], tolerance: Float? = nil, name: String) throws {
        let input = try Parser.parse(chunk, source: name)
        var graph = input
        let weights = RandomWeights.generate(for: input, seed: 7)
        try PassManager(passes).run(&graph, PassContext(weights: weights))
        let output = Printer.print(graph)
        try FileCheck.match(output, checks: chunk, name: name)

        // Numerical equivalence where the input can be interpreted.
        var typedInput = input
        try PassManager([InferShapes.self]).run(&typedInput, PassContext())
        guard !typedInput.ops.contains(where: { $0.kind.level == .block }) else { return }
        let context = PassContext(weights: weights)
        var rerun = typedInput
        try PassManager(passes).run(&rerun, context)
        var rng = SplitMix64(seed: 3)
        let tensors = typedInput.inputs.map { i in
            Tensor(shape: i.type.shape, data: (0..<i.type.elementCount).map { _ in Float(rng.nextUnit() * 2 - 1) })
        }
        let before = try Interpreter.run(typedInput, inputs: tensors, weights: weights)
        let after = try Interpreter.run(rerun, inputs: tensors, weights: context.weights)
        guard let tolerance else {
            XCTAssertEqual(before, after, "\(name): the pass changed the result")
            return
        }
        for (b, a) in zip(before, after) {
            XCTAssertEqual(b.shape, a.shape, "\(name): the pass changed the shape")
            let scale = max(b.data.map { abs($0) }.max() ?? 0, 1e-30)
            let err = zip(b.data, a.data).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(err / scale, tolerance, "\(name): the pass changed the result beyond \(tolerance)")
        }
    }
}

/// A small FileCheck: `CHECK:` lines match in order (substring of a later output line), `CHECK-NEXT:` must match
/// the line right after the previous match, `CHECK-NOT:` must appear nowhere in the output.
enum FileCheck {
    static func match(_ output: String, checks: String, name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let lines = output.split(separator: "\n").map(String.init)
        var cursor = -1
        var checked = 0
        for raw in checks.split(separator: "\n") {
            let text = raw.trimmingCharacters(in: .whitespaces)
            if let pattern = text.value(after: "// CHECK:") {
                guard let hit = lines.indices.first(where: { $0 > cursor && lines[$0].contains(pattern) }) else {
                    XCTFail("\(name): no line after line \(cursor + 1) contains '\(pattern)'\n\(output)", file: file, line: line)
                    return
                }
                cursor = hit
            } else if let pattern = text.value(after: "// CHECK-NEXT:") {
                guard cursor + 1 < lines.count, lines[cursor + 1].contains(pattern) else {
                    XCTFail("\(name): the line after line \(cursor + 1) does not contain '\(pattern)'\n\(output)", file: file, line: line)
                    return
                }
                cursor += 1
            } else if let pattern = text.value(after: "// CHECK-NOT:") {
                if lines.contains(where: { $0.contains(pattern) }) {
                    XCTFail("\(name): the output contains '\(pattern)'\n\(output)", file: file, line: line)
                }
            } else {
                continue
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0, "\(name) has no CHECK lines", file: file, line: line)
    }
}

extension String {
    func value(after prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces) : nil
    }
}
