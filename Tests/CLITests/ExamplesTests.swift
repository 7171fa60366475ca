/// Every numbered lesson in Examples/ runs to completion with the hybridc of this build.
import Foundation
import XCTest

final class ExamplesTests: XCTestCase {
    func testEveryExampleRuns() throws {
        let examples = CLI.repoRoot.appendingPathComponent("Examples")
        let lessons = try FileManager.default.contentsOfDirectory(atPath: examples.path).filter { $0.first?.isNumber == true }.sorted()
        XCTAssertFalse(lessons.isEmpty)
        for lesson in lessons {
            let script = examples.appendingPathComponent(lesson).appendingPathComponent("run.sh")
            let r = try CLI.run(URL(fileURLWithPath: "/usr/bin/env"), ["HYBRIDC=\(CLI.binary.path)", "bash", script.path])
            XCTAssertEqual(r.status, 0, "\(lesson) failed:\n\(r.stdout)\n\(r.stderr)")
        }
    }
}
