/// Golden files of the generated C for two small bundled models: a change meant as a refactor shows no diff here.
/// A missing golden file is recorded and the test fails once; HYBRIDC_RECORD_GOLDEN=1 re-records on purpose
/// (for a change that is meant to change the generated code; review the diff before committing it).
import Codegen
import Driver
import Foundation
import XCTest

final class GoldenTests: XCTestCase {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    func check(_ spec: String, _ golden: String) throws {
        let (plan, _) = try Compile.plan(spec: GeneratedProgram.repoRoot.appendingPathComponent(spec).path,
                                         weights: .random(seed: 0), input: try InputSize(parsing: "3x16x16"),
                                         target: .x86_64AVX2)
        let source = try ModelEmitter.emit(plan, source: URL(fileURLWithPath: spec).lastPathComponent).source
        let file = Self.golden.appendingPathComponent(golden)
        let record = ProcessInfo.processInfo.environment["HYBRIDC_RECORD_GOLDEN"] == "1"
        guard !record, let expected = try? String(contentsOf: file, encoding: .utf8) else {
            try FileManager.default.createDirectory(at: Self.golden, withIntermediateDirectories: true)
            try source.write(to: file, atomically: true, encoding: .utf8)
            XCTFail("recorded \(file.path); run the test again")
            return
        }
        if source != expected {
            let a = source.split(separator: "\n", omittingEmptySubsequences: false)
            let b = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let line = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
            XCTFail("\(golden) differs from the generated C at line \(line + 1):\n  golden:    \(line < b.count ? String(b[line]) : "<end>")\n  generated: \(line < a.count ? String(a[line]) : "<end>")\n(HYBRIDC_RECORD_GOLDEN=1 re-records when the change is intended)")
        }
    }

    func testRestormerShapedModel() throws { try check("Graphs/tests/tiny-t.yml", "tiny-t.c") }

    func testMambaShapedModel() throws { try check("Graphs/tests/tiny-s.yml", "tiny-s.c") }
}
