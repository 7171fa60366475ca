/// `hybridc interpret` end to end, and the cross-check against the independent numpy model.
import Foundation
import Frontend
import HybridIR
import XCTest

final class InterpretCommandTests: XCTestCase {
    func testOutputKeepsRankAndOddSizesArePaddedAndCropped() throws {
        let dir = try CLI.temporaryDirectory(self)
        var rng = SplitMix64(seed: 5)
        let image = Tensor(shape: [3, 13, 19], data: (0..<3 * 13 * 19).map { _ in Float(rng.nextUnit()) })
        let input = dir.appendingPathComponent("in.npy").path, output = dir.appendingPathComponent("out.npy").path
        try Npy.write(image, to: input)
        let r = try CLI.hybridc(["interpret", CLI.testSpec("tiny-t.yml"), "--random-weights", "2", input, output], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let result = try Npy.read(path: output)
        XCTAssertEqual(result.shape, [3, 13, 19])
        XCTAssertTrue(result.data.allSatisfy { $0.isFinite })
        XCTAssertNotEqual(result.data, image.data)

        // The same image as (1, C, H, W) gives the same numbers with the batch axis kept.
        try Npy.write(Tensor(shape: [1, 3, 13, 19], data: image.data), to: input)
        XCTAssertEqual(try CLI.hybridc(["interpret", CLI.testSpec("tiny-t.yml"), "--random-weights", "2", input, output]).status, 0)
        let batched = try Npy.read(path: output)
        XCTAssertEqual(batched.shape, [1, 3, 13, 19])
        XCTAssertEqual(batched.data, result.data)
    }

    /// The interpreter against a numpy implementation written separately from ARCHITECTURES.md, reading the
    /// same safetensors weights: T-only, BiasFree, S-only, hybrid, dual-pixel and stressed weights, to 1e-4.
    func testInterpreterMatchesTheNumpyReference() throws {
        let dir = try CLI.temporaryDirectory(self)
        let script = CLI.repoRoot.appendingPathComponent("Tests/CrossCheck/crosscheck.py").path
        let python = URL(fileURLWithPath: "/usr/bin/env")
        let r = try CLI.run(python, ["python3", script, "--hybridc", CLI.binary.path, "--workdir", dir.path])
        print(r.stdout)
        XCTAssertEqual(r.status, 0, "cross-check failed:\n\(r.stdout)\n\(r.stderr)")
        XCTAssertTrue(r.stdout.contains("11/11 cases passed"), r.stdout)
    }
}
