/// `hybridc check` on the bundled models reports the counts of ARCHITECTURES.md section 4.
import XCTest

final class CheckCommandTests: XCTestCase {
    func testRestormerCounts() throws {
        let dir = try CLI.temporaryDirectory(self)
        let r = try CLI.hybridc(["check", CLI.model("restormer.yml")], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("parameters: 26,126,644"), r.stdout)
        XCTAssertTrue(r.stdout.contains("GMAC: 154.88"), r.stdout)
        XCTAssertTrue(r.stdout.contains("GFLOP: 314.54"), r.stdout)
        XCTAssertTrue(r.stdout.contains("input: 3x256x256"), r.stdout)
        // The per-stage table: stage, channels, resolution, blocks, params, GMAC.
        let latent = r.stdout.split(separator: "\n").first { $0.hasPrefix("latent") }.map(String.init) ?? ""
        XCTAssertEqual(latent.split(separator: " ").map(String.init), ["latent", "384", "32x32", "TTTTTTTT", "14,370,448", "15.00"])
        let refinement = r.stdout.split(separator: "\n").first { $0.hasPrefix("refinement") }.map(String.init) ?? ""
        XCTAssertEqual(refinement.split(separator: " ").map(String.init), ["refinement", "96", "256x256", "TTTT", "471,484", "35.63"])
    }

    func testMambaIRUNetAndHybridCounts() throws {
        let m = try CLI.hybridc(["check", CLI.model("mambairunet.yml")])
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertTrue(m.stdout.contains("parameters: 31,506,136"), m.stdout)
        XCTAssertTrue(m.stdout.contains("GMAC: 159.92"), m.stdout)
        XCTAssertTrue(m.stdout.contains("GFLOP: 380.31"), m.stdout)
        let h = try CLI.hybridc(["check", CLI.model("ens-derain.yml")])
        XCTAssertTrue(h.stdout.contains("parameters: 26,661,184"), h.stdout)
        XCTAssertTrue(h.stdout.contains("GMAC: 154.71"), h.stdout)
        XCTAssertTrue(h.stdout.contains("GFLOP: 354.76"), h.stdout)
        XCTAssertTrue(h.stdout.contains("layout: SSSS/SSSSSS/TTTTTT/TTTTTTTT/TTTTTT/SSSSSS/SSSS/SSSS"), h.stdout)
    }

    func testInputSizeScalesTheCount() throws {
        // Section 4: 38.72 GMAC for Restormer at 128x128; odd sizes are padded to a multiple of 8.
        let r = try CLI.hybridc(["check", CLI.model("restormer.yml"), "--input", "3x121x128"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("GMAC: 38.72"), r.stdout)
        XCTAssertTrue(r.stdout.contains("input: 3x128x128"), r.stdout)
    }

    func testEveryBundledModelChecks() throws {
        for name in ["restormer-denoise.yml", "ens-deblur.yml", "ens-denoise.yml"] {
            let r = try CLI.hybridc(["check", CLI.model(name), "--input", "3x64x64"])
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("parameters: "), r.stdout)
        }
    }

    func testWeightsExportedByHybridcValidate() throws {
        let dir = try CLI.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("w.safetensors").path
        let export = try CLI.hybridc(["weights", CLI.testSpec("tiny-hybrid.yml"), "--random-weights", "3", "-o", weights])
        XCTAssertEqual(export.status, 0, export.stderr)
        let r = try CLI.hybridc(["check", CLI.testSpec("tiny-hybrid.yml"), "--weights", weights, "--input", "3x32x32"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("matches the model"), r.stdout)
    }
}
