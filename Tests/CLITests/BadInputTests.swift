/// Bad specs, weights and images get a clear message and a non-zero exit, never a crash.
import Foundation
import Frontend
import HybridIR
import XCTest

final class BadInputTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try CLI.temporaryDirectory(self) }

    func write(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func writeBytes(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// Runs hybridc, expects exit status 1 (or `status`) and every fragment in stderr.
    func expectFailure(_ arguments: [String], _ fragments: [String], status: Int32 = 1,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try CLI.hybridc(arguments, in: dir)
        XCTAssertEqual(r.status, status, "exit status; stderr: \(r.stderr)", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(r.stderr.contains(f), "expected '\(f)' in:\n\(r.stderr)", file: file, line: line)
        }
        XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr, file: file, line: line)
    }

    // MARK: specs

    func testMalformedYAMLNamesFileAndLine() throws {
        let spec = try write("bad.yml", "network_g:\n  type: Restormer\n  dim: [48\n  heads: 2\n")
        try expectFailure(["check", spec], ["bad.yml:", "malformed YAML"])
        let spec2 = try write("bad2.yml", "type: Restormer\ndim: 48\n  heads: [1, 2]\n")
        try expectFailure(["check", spec2], ["bad2.yml:3", "malformed YAML"])
    }

    func testUnknownTypeListsKnownTypes() throws {
        let spec = try write("t.yml", "type: SwinIR\n")
        try expectFailure(["check", spec], ["t.yml:1", "unknown model type 'SwinIR'; known types: Restormer, MambaIRUNet, HybridUNet"])
    }

    func testUnknownKeyListsKnownKeys() throws {
        let spec = try write("k.yml", "type: Restormer\ndim: 48\nnum_blockz: [1, 1, 1, 1]\n")
        try expectFailure(["check", spec], ["k.yml:3", "unknown key 'num_blockz'", "known keys: type, inp_channels"])
    }

    func testUpstreamKeyIsOnlyAWarning() throws {
        let spec = try write("w.yml", "type: Restormer\nwindow_size: 8\n")
        let r = try CLI.hybridc(["check", spec, "--input", "3x32x32"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("w.yml:2: warning: key 'window_size'"), r.stderr)
    }

    func testLayoutGroupLengthNamesTheStage() throws {
        let spec = try write("l.yml", "type: HybridUNet\nlayout: SSSS/SSSSSS/TTTTTT/TTTTTTTT/TTTTTT/SSSSS/SSSS/SSSS\n")
        try expectFailure(["check", spec], ["l.yml:2", "decoder_level2 has 6 blocks", "5 letters"])
    }

    func testSBlockBelowThirtyChannelsIsRefused() throws {
        let spec = try write("s.yml", "type: HybridUNet\ndim: 24\nlayout: S/T/T/T/T/T/T/T\n")
        try expectFailure(["check", spec], ["an S block at encoder_level1 needs at least 30 channels", "has 24"])
    }

    func testChannelsNotDivisibleByHeads() throws {
        let spec = try write("h.yml", "type: Restormer\nheads: [1, 2, 5, 8]\n")
        try expectFailure(["check", spec], ["encoder_level3 have 192 channels, not divisible by their 5 heads"])
    }

    func testMissingSpecFile() throws {
        try expectFailure(["check", dir.appendingPathComponent("nope.yml").path], ["nope.yml", "cannot read"])
    }

    func testBadInputSizeAndConflictingWeightOptions() throws {
        try expectFailure(["check", CLI.model("restormer.yml"), "--input", "3x256"], ["must be CxHxW"])
        try expectFailure(["check", CLI.model("restormer.yml"), "--input", "1x64x64"], ["1 channels", "inp_channels = 3"])
        try expectFailure(["interpret", CLI.testSpec("tiny-t.yml"), "--weights", "a", "--random-weights", "1", "i.npy", "o.npy"],
                          ["either --weights or --random-weights"], status: 64)
    }

    // MARK: weights

    func tinyWeights() throws -> WeightStore {
        let spec = try ModelSpecReader.load(path: CLI.testSpec("tiny-t.yml")).spec
        return RandomWeights.generate(for: try UNetBuilder.build(spec, height: 16, width: 16), seed: 1)
    }

    func testMissingExtraAndMisshapedKeysAreListedTogether() throws {
        var w = try tinyWeights()
        w["latent.0.attn.temperature"] = nil
        w["encoder_level1.0.norm1.body.weight"] = nil
        w["encoder_level1.0.attn.qkv.weight"] = Tensor(zeros: [48, 8, 1, 1])
        w["decoder_level1.0.attn.extra"] = Tensor(zeros: [2])
        let path = dir.appendingPathComponent("w.safetensors").path
        try Safetensors.write(w, to: path)
        try expectFailure(["check", CLI.testSpec("tiny-t.yml"), "--weights", path],
                          ["2 missing, 1 unexpected, 1 mis-shaped",
                           "missing: latent.0.attn.temperature", "missing: encoder_level1.0.norm1.body.weight",
                           "unexpected: decoder_level1.0.attn.extra",
                           "wrong shape: encoder_level1.0.attn.qkv.weight: expected [48, 16, 1, 1], got [48, 8, 1, 1]"])
    }

    /// A safetensors file from a header string and data bytes.
    func safetensors(_ header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        let n = declaredLength ?? UInt64(h.count)
        return (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xff) } + h + data
    }

    func testUnsupportedDtype() throws {
        let path = try writeBytes("d.safetensors", safetensors(#"{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))
        try expectFailure(["check", CLI.testSpec("tiny-t.yml"), "--weights", path], ["unsupported dtype F64", "tensor a"])
    }

    func testHostileSafetensorsAreRefused() throws {
        let cases: [(String, [UInt8], String)] = [
            ("truncated", [1, 2, 3], "truncated"),
            ("long-header", safetensors("{}", data: [], declaredLength: 1 << 40), "exceeds"),
            ("not-json", safetensors("{nope", data: []), "not valid JSON"),
            ("overlap", safetensors(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                    data: [UInt8](repeating: 0, count: 12)), "overlap"),
            ("past-end", safetensors(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0, 0, 0]), "past the end"),
        ]
        for (name, bytes, fragment) in cases {
            let path = try writeBytes("\(name).safetensors", bytes)
            try expectFailure(["check", CLI.testSpec("tiny-t.yml"), "--weights", path], [fragment, "\(name).safetensors"])
        }
    }

    func testPthCheckpointPointsToTheConverter() throws {
        let path = try writeBytes("model.pth", [0x50, 0x4b, 0x03, 0x04, 0, 0])
        try expectFailure(["check", CLI.testSpec("tiny-t.yml"), "--weights", path], ["scripts/convert_pth.py"])
    }

    // MARK: images

    func testBadNpyImages() throws {
        func npy(_ descr: String, _ shape: String, body: Int) -> [UInt8] {
            var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
            while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
            header += "\n"
            let n = header.utf8.count
            return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xff), UInt8(n >> 8)] + Array(header.utf8)
                + [UInt8](repeating: 0, count: body)
        }
        let cases: [(String, [UInt8], String)] = [
            ("batch", npy("<f4", "(2, 3, 16, 16)", body: 2 * 3 * 256 * 4), "batch size 1"),
            ("shape", npy("<f4", "(16, 16)", body: 256 * 4), "(1, C, H, W) or (C, H, W)"),
            ("channels", npy("<f4", "(1, 4, 16, 16)", body: 4 * 256 * 4), "4 channels"),
            ("dtype", npy("<f8", "(3, 16, 16)", body: 3 * 256 * 8), "unsupported dtype '<f8'"),
            ("truncated", npy("<f4", "(3, 16, 16)", body: 100), "expected"),
        ]
        for (name, bytes, fragment) in cases {
            let path = try writeBytes("\(name).npy", bytes)
            try expectFailure(["interpret", CLI.testSpec("tiny-t.yml"), "--random-weights", "0", path, "out.npy"],
                              [fragment, "\(name).npy"])
        }
        try expectFailure(["interpret", CLI.testSpec("tiny-t.yml"), "--random-weights", "0", "missing.npy", "out.npy"],
                          ["missing.npy"])
    }
}
