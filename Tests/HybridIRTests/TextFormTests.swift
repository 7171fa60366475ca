/// The text form: print → parse → print is the identity, and parse errors point at file, line and column.
import XCTest
@testable import HybridIR

final class TextFormTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Every .hir file under Graphs/ and Tests/.
    static func irFiles() -> [URL] {
        var files: [URL] = []
        for dir in ["Graphs", "Tests"] {
            let root = repoRoot.appendingPathComponent(dir)
            guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where url.pathExtension == "hir" { files.append(url) }
        }
        return files.sorted { $0.path < $1.path }
    }

    func testEveryIRFileRoundTrips() throws {
        let files = Self.irFiles()
        XCTAssertGreaterThanOrEqual(files.count, 3, "expected the .hir files of Graphs/blocks")
        for url in files {
            let text = try String(contentsOf: url, encoding: .utf8)
            // Pass-test files hold several cases separated by `// -----`.
            for (i, chunk) in text.components(separatedBy: "// -----").enumerated() where chunk.contains("graph @") {
                let graph = try Parser.parse(chunk, source: "\(url.lastPathComponent)#\(i)")
                let printed = Printer.print(graph)
                let again = Printer.print(try Parser.parse(printed, source: "reprint"))
                XCTAssertEqual(printed, again, "\(url.lastPathComponent) case \(i) does not round-trip")
            }
        }
    }

    func testPrintedFormIsCanonical() throws {
        // Values renumbered in order, attributes sorted, floats exact.
        let text = """
        graph @g(%7: f32[1,2]) {
          %3 = softmax(%7) {axis = 1} : f32[1,2]
          %9 = l2_normalize(%3) {eps = 1e-12, axis = 1} : f32[1,2] loc("a.b")
          return %9
        }
        """
        let printed = Printer.print(try Parser.parse(text))
        XCTAssertEqual(printed, """
        graph @g(%0: f32[1,2]) {
          %1 = softmax(%0) {axis = 1} : f32[1,2]
          %2 = l2_normalize(%1) {axis = 1, eps = 1e-12} : f32[1,2] loc("a.b")
          return %2
        }

        """)
    }

    func testParseErrorsNameFileLineAndColumn() {
        let cases: [(String, String)] = [
            ("graph @g(%0: f32[2]) {\n  %1 = frobnicate(%0)\n  return %1\n}", "g.hir:2:8: unknown op 'frobnicate'"),
            ("graph @g(%0: f32[2]) {\n  %1 = exp(%5)\n  return %1\n}", "g.hir:2:12: operand %5 is used before it is defined"),
            ("graph @g(%0: f32[2]) {\n  %1 = exp(%0) : f32[0]\n}", "g.hir:2:22: expected a positive dimension"),
            ("graph @g(%0: f32[2]) {\n  %1 = exp(%0) {axis = 1, axis = 2}\n  return %1\n}", "attribute 'axis' is given twice"),
            ("graph @g(%0: f32[2]) {\n  return %4\n}", "returned value %4 is not defined"),
            ("graph @g(%0: f32[2]) {\n  %1 = weight {name = \"x\n", "unterminated string"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try Parser.parse(text, source: "g.hir")) { error in
                XCTAssertTrue("\(error)".contains(expected), "got: \(error), expected: \(expected)")
            }
        }
    }
}
