import Foundation
import XCTest
@testable import Frontend
import HybridIR

final class ModelSpecReaderTests: XCTestCase {
    // MARK: Helpers

    private func parse(_ yaml: String) throws -> (spec: ModelSpec, warnings: [String]) {
        try ModelSpecReader.parse(yaml: yaml, source: "spec.yml")
    }

    /// Parses `yaml`, expecting a HybridError; returns it (fails the test when parsing succeeds).
    private func error(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> HybridError? {
        do {
            let result = try ModelSpecReader.parse(yaml: yaml, source: "spec.yml")
            XCTFail("expected an error, got a spec with layout \(result.spec.layoutString)", file: file, line: line)
            return nil
        } catch let error as HybridError {
            return error
        } catch {
            XCTFail("expected a HybridError, got \(error)", file: file, line: line)
            return nil
        }
    }

    private func assertError(_ yaml: String, at location: String, contains parts: [String],
                             file: StaticString = #filePath, line: UInt = #line) {
        guard let error = error(yaml, file: file, line: line) else { return }
        XCTAssertEqual(error.location, location, "\(error)", file: file, line: line)
        for part in parts {
            XCTAssertTrue(error.message.contains(part), "'\(error.message)' lacks '\(part)'", file: file, line: line)
        }
    }

    private func kinds(_ text: String) -> [BlockKind] { text.map { BlockKind(rawValue: $0)! } }

    // MARK: Defaults and nesting

    func testMinimalRestormerGivesSection5Defaults() throws {
        let (spec, warnings) = try parse("type: Restormer\n")
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(spec.type, .restormer)
        XCTAssertEqual(spec.inpChannels, 3)
        XCTAssertEqual(spec.outChannels, 3)
        XCTAssertEqual(spec.dim, 48)
        XCTAssertEqual(spec.numBlocks, [4, 6, 6, 8])
        XCTAssertEqual(spec.numRefinementBlocks, 4)
        XCTAssertEqual(spec.heads, [1, 2, 4, 8])
        XCTAssertEqual(spec.ffnExpansionFactor, 2.66)
        XCTAssertEqual(spec.bias, false)
        XCTAssertEqual(spec.layerNormType, .withBias)
        XCTAssertEqual(spec.dualPixelTask, false)
        XCTAssertEqual(spec.mlpRatio, 2.0)
        XCTAssertEqual(spec.dState, [4, 8, 16, 32, 16, 8, 8, 8])
        XCTAssertEqual(spec.layoutString, "TTTT/TTTTTT/TTTTTT/TTTTTTTT/TTTTTT/TTTTTT/TTTT/TTTT")
        XCTAssertEqual(spec.source, "spec.yml")

        var expected = ModelSpec(type: .restormer, layout: [])
        expected.layout = ModelSpecReader.uniformLayout(.transformer, for: expected)
        expected.source = "spec.yml"
        XCTAssertEqual(spec, expected)
    }

    func testMinimalMambaIRUNetIsAllS() throws {
        let (spec, warnings) = try parse("type: MambaIRUNet\n")
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(spec.type, .mambaIRUNet)
        XCTAssertEqual(spec.layoutString, "SSSS/SSSSSS/SSSSSS/SSSSSSSS/SSSSSS/SSSSSS/SSSS/SSSS")
    }

    func testEveryKeySetExplicitly() throws {
        let (spec, warnings) = try parse("""
            type: HybridUNet
            inp_channels: 6
            out_channels: 3
            dim: 64
            num_blocks: [2, 3, 3, 4]
            num_refinement_blocks: 0
            heads: [2, 4, 8, 8]
            ffn_expansion_factor: 2
            bias: True
            LayerNorm_type: BiasFree
            dual_pixel_task: yes
            mlp_ratio: 4
            d_state: [16, 16, 16, 16, 16, 16, 16, 16]
            layout: S/S/T/T/T/S/S/S

            """)
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(spec.inpChannels, 6)
        XCTAssertEqual(spec.dim, 64)
        XCTAssertEqual(spec.numBlocks, [2, 3, 3, 4])
        XCTAssertEqual(spec.numRefinementBlocks, 0)
        XCTAssertEqual(spec.heads, [2, 4, 8, 8])
        XCTAssertEqual(spec.ffnExpansionFactor, 2.0)  // an int is accepted for a float
        XCTAssertTrue(spec.bias)
        XCTAssertEqual(spec.layerNormType, .biasFree)
        XCTAssertTrue(spec.dualPixelTask)
        XCTAssertEqual(spec.mlpRatio, 4.0)
        XCTAssertEqual(spec.dState, Array(repeating: 16, count: 8))
        XCTAssertEqual(spec.layoutString, "SS/SSS/TTT/TTTT/TTT/SSS/SS/")
        XCTAssertEqual(spec.layout[7], [])
    }

    func testNetworkGInsideBasicSROptionsFile() throws {
        let (spec, warnings) = try parse("""
            # general settings
            name: Deraining_Hybrid
            model_type: ImageCleanModel
            scale: 1
            num_gpu: 8
            manual_seed: 100

            datasets:
              train:
                name: TrainSet
                type: Dataset_PairedImage
                dataroot_gt: ./Datasets/train/Rain13K/target
                geometric_augs: true
                mini_batch_sizes: [8, 5, 4, 2, 1, 1]
              val:
                name: ValSet
                type: Dataset_PairedImage

            # network structures
            network_g:
              type: HybridUNet
              inp_channels: 3
              out_channels: 3
              dim: 48
              num_blocks: [4, 6, 6, 8]
              num_refinement_blocks: 4
              heads: [1, 2, 4, 8]
              ffn_expansion_factor: 2.66
              bias: False
              LayerNorm_type: BiasFree
              dual_pixel_task: False
              layout: SSSS/SSSSSS/TTTTTT/TTTTTTTT/TTTTTT/SSSSSS/SSSS/SSSS

            path:
              pretrain_network_g: ~
              strict_load_g: true

            train:
              total_iter: 300000
              optim_g:
                type: AdamW
                lr: !!float 3e-4
            """)
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(spec.type, .hybridUNet)
        XCTAssertEqual(spec.layerNormType, .biasFree)
        XCTAssertEqual(spec.ffnExpansionFactor, 2.66)
        XCTAssertEqual(spec.layoutString, "SSSS/SSSSSS/TTTTTT/TTTTTTTT/TTTTTT/SSSSSS/SSSS/SSSS")
    }

    func testNetworkGErrorsPointAtTheirLineInTheOptionsFile() {
        assertError("""
            name: x
            datasets:
              train:
                foo: 1
            network_g:
              type: Restormer
              dim: 47
            """, at: "spec.yml:7", contains: ["'dim' must be even", "47"])
    }

    // MARK: Layout

    func testLayoutExpansionOfFullGroups() throws {
        let text = "SSSS/SSSSSS/TTTTTT/TTTTTTTT/TTTTTT/SSSSSS/SSSS/SSSS"
        let (spec, _) = try parse("type: HybridUNet\nlayout: \(text)\n")
        XCTAssertEqual(spec.layout.count, 8)
        XCTAssertEqual(spec.layout[0], kinds("SSSS"))
        XCTAssertEqual(spec.layout[1], kinds("SSSSSS"))
        XCTAssertEqual(spec.layout[2], kinds("TTTTTT"))
        XCTAssertEqual(spec.layout[3], kinds("TTTTTTTT"))
        XCTAssertEqual(spec.layout[4], kinds("TTTTTT"))
        XCTAssertEqual(spec.layout[5], kinds("SSSSSS"))
        XCTAssertEqual(spec.layout[6], kinds("SSSS"))
        XCTAssertEqual(spec.layout[7], kinds("SSSS"))
        XCTAssertEqual(spec.layoutString, text)
    }

    func testLayoutOneLetterGroupsFillTheirStage() throws {
        let (spec, _) = try parse("type: HybridUNet\nlayout: S/S/T/T/T/S/S/S\n")
        XCTAssertEqual(spec.layoutString, "SSSS/SSSSSS/TTTTTT/TTTTTTTT/TTTTTT/SSSSSS/SSSS/SSSS")
    }

    func testLayoutMixesOneLetterAndFullGroupsAndInterleaves() throws {
        let (spec, _) = try parse("""
            type: HybridUNet
            num_blocks: [2, 2, 3, 4]
            num_refinement_blocks: 1
            layout: TS/S/TST/T/SSS/ST/T/S
            """)
        XCTAssertEqual(spec.layoutString, "TS/SS/TST/TTTT/SSS/ST/TT/S")
    }

    func testLayoutIgnoredForRestormerAndMambaIRUNetWithWarning() throws {
        let restormer = try parse("type: Restormer\nlayout: S/S/S/S/S/S/S/S\n")
        XCTAssertEqual(restormer.spec.layoutString, "TTTT/TTTTTT/TTTTTT/TTTTTTTT/TTTTTT/TTTTTT/TTTT/TTTT")
        XCTAssertEqual(restormer.warnings.count, 1)
        XCTAssertTrue(restormer.warnings[0].hasPrefix("spec.yml:2: warning: 'layout' is ignored for type Restormer"),
                      restormer.warnings[0])

        let mamba = try parse("type: MambaIRUNet\nlayout: T/T/T/T/T/T/T/T\n")
        XCTAssertEqual(mamba.spec.layoutString, "SSSS/SSSSSS/SSSSSS/SSSSSSSS/SSSSSS/SSSSSS/SSSS/SSSS")
        XCTAssertTrue(mamba.warnings.first?.contains("'layout' is ignored for type MambaIRUNet") ?? false)
    }

    func testHybridUNetRequiresLayout() {
        assertError("dim: 48\ntype: HybridUNet\n", at: "spec.yml:2",
                    contains: ["'layout' is required for type HybridUNet"])
    }

    func testLayoutGroupLengthMismatchNamesTheStage() {
        assertError("type: HybridUNet\nlayout: SSSS/SSSSSS/TTTTTT/TTTTTTTT/TTTTTT/SSSSS/SSSS/SSSS\n",
                    at: "spec.yml:2",
                    contains: ["group 6 (decoder_level2) has 5 letters but decoder_level2 has 6 blocks"])
    }

    func testLayoutWrongGroupCount() {
        assertError("type: HybridUNet\nlayout: S/S/T/T/T/S/S\n", at: "spec.yml:2",
                    contains: ["'layout' must have 8 groups separated by '/'", "got 7"])
    }

    func testLayoutBadLetter() {
        assertError("type: HybridUNet\nlayout: S/S/T/X/T/S/S/S\n", at: "spec.yml:2",
                    contains: ["group 4 (latent) has the invalid letter 'X'", "T (transformer) or S (state-space)"])
    }

    // MARK: Bad inputs

    func testMalformedYAMLNamesFileAndLine() {
        assertError("type: Restormer\ndim: 48\n  heads: [1, 2, 4, 8]\n", at: "spec.yml:3",
                    contains: ["malformed YAML", "column"])
        assertError("type: Restormer\ndim: 48\ndim: 50\n", at: "spec.yml:2",
                    contains: ["malformed YAML", "duplicate key 'dim'"])
    }

    func testMalformedYAMLFromLoadNamesThePath() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("ModelSpecReaderTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let bad = directory.appendingPathComponent("bad.yml")
        try "network_g:\n  type: Restormer\n  num_blocks: [4, 6, 6, 8\n".write(to: bad, atomically: true,
                                                                            encoding: .utf8)
        XCTAssertThrowsError(try ModelSpecReader.load(path: bad.path)) { error in
            let error = error as! HybridError
            XCTAssertEqual(error.location, "\(bad.path):4")
            XCTAssertTrue(error.description.hasPrefix("\(bad.path):4: malformed YAML at column 1"), "\(error)")
        }

        let good = directory.appendingPathComponent("good.yml")
        try "type: MambaIRUNet\nmlp_ratio: 4\n".write(to: good, atomically: true, encoding: .utf8)
        let (spec, _) = try ModelSpecReader.load(path: good.path)
        XCTAssertEqual(spec.source, good.path)
        XCTAssertEqual(spec.mlpRatio, 4)

        let binary = directory.appendingPathComponent("binary.yml")
        try Data("type: Restormer\ndim: 4".utf8 + [0xFF, 0xFE] + Data("8\n".utf8)).write(to: binary)
        XCTAssertThrowsError(try ModelSpecReader.load(path: binary.path)) {
            XCTAssertEqual(($0 as! HybridError).description, "\(binary.path):2: malformed YAML: the file is not valid UTF-8 text")
        }

        XCTAssertThrowsError(try ModelSpecReader.load(path: directory.appendingPathComponent("none.yml").path)) {
            XCTAssertTrue(($0 as! HybridError).message.contains("no such file"))
        }
    }

    func testMissingType() {
        assertError("dim: 48\n", at: "spec.yml:1",
                    contains: ["missing the required key 'type'", "Restormer, MambaIRUNet, HybridUNet"])
    }

    func testUnknownTypeListsKnownOnes() {
        assertError("dim: 48\ntype: Uformer\n", at: "spec.yml:2",
                    contains: ["unknown model type 'Uformer'", "known types: Restormer, MambaIRUNet, HybridUNet"])
    }

    func testUnknownKeyListsKnownOnes() {
        guard let error = error("type: Restormer\ndim: 48\nnum_block: [4, 6, 6, 8]\n") else { return }
        XCTAssertEqual(error.location, "spec.yml:3")
        XCTAssertEqual(error.message,
                       "unknown key 'num_block' (did you mean 'num_blocks'?); known keys: type, inp_channels, "
                           + "out_channels, dim, num_blocks, num_refinement_blocks, heads, ffn_expansion_factor, "
                           + "bias, LayerNorm_type, dual_pixel_task, mlp_ratio, d_state, layout")
        assertError("type: Restormer\nsqueeze: 3\n", at: "spec.yml:2",
                    contains: ["unknown key 'squeeze'; known keys: type, inp_channels"])
    }

    func testUpstreamKeysWarnWithTheirLine() throws {
        let (spec, warnings) = try parse("""
            type: MambaIRUNet
            heads: [1, 2, 4, 8]
            window_size: 8
            interval: 4
            mlp_ratio: 4
            """)
        XCTAssertEqual(spec.mlpRatio, 4)
        XCTAssertEqual(warnings, [
            "spec.yml:3: warning: key 'window_size' is an upstream option hybridc does not use; ignored",
            "spec.yml:4: warning: key 'interval' is an upstream option hybridc does not use; ignored",
        ])
    }

    func testSBlockBelow30ChannelsNamesTheStage() throws {
        // dim 24: only encoder_level1 has fewer than 30 channels (the others have at least 48).
        XCTAssertNoThrow(try parse("type: HybridUNet\ndim: 24\nlayout: T/S/S/S/S/S/S/S\n"))
        assertError("type: HybridUNet\ndim: 24\nlayout: S/T/T/T/T/T/T/T\n", at: "spec.yml:3",
                    contains: ["an S block at encoder_level1 needs at least 30 channels",
                               "encoder_level1 has 24", "C // 30 = 0"])
        assertError("type: MambaIRUNet\ndim: 16\n", at: "spec.yml:2",
                    contains: ["an S block at encoder_level1", "encoder_level1 has 16"])
    }

    func testChannelsNotDivisibleByHeads() {
        assertError("type: Restormer\nheads: [1, 2, 5, 8]\n", at: "spec.yml:2",
                    contains: ["the T blocks at encoder_level3 have 192 channels, not divisible by their 5 heads "
                               + "(heads[2])"])
        assertError("type: Restormer\nheads:\n  - 1\n  - 2\n  - 4\n  - 7\n", at: "spec.yml:6",
                    contains: ["latent have 384 channels, not divisible by their 7 heads (heads[3])"])
        // No T block at a stage, no heads check there.
        XCTAssertNoThrow(try parse("type: MambaIRUNet\nheads: [1, 5, 5, 5]\n"))
    }

    func testWrongListLength() {
        assertError("type: Restormer\nnum_blocks: [4, 6, 6]\n", at: "spec.yml:2",
                    contains: ["'num_blocks' must be a list of 4 integers, got 3 entries"])
        assertError("type: Restormer\nheads: [1, 2, 4, 8, 16]\n", at: "spec.yml:2",
                    contains: ["'heads' must be a list of 4 integers, got 5 entries"])
        assertError("type: MambaIRUNet\nd_state: [4, 8, 16, 32]\n", at: "spec.yml:2",
                    contains: ["'d_state' must be a list of 8 integers, got 4 entries"])
    }

    func testWrongValueTypes() {
        assertError("type: Restormer\ndim: abc\n", at: "spec.yml:2",
                    contains: ["'dim' must be a positive integer, got 'abc'"])
        assertError("type: Restormer\ndim: \"48\"\n", at: "spec.yml:2",
                    contains: ["'dim' must be a positive integer, got the string \"48\""])
        assertError("type: Restormer\ndim: 48.0\n", at: "spec.yml:2",
                    contains: ["'dim' must be a positive integer, got '48.0'"])
        assertError("type: Restormer\ninp_channels: 0\n", at: "spec.yml:2",
                    contains: ["'inp_channels' must be a positive integer, got 0"])
        assertError("type: Restormer\nnum_refinement_blocks: -1\n", at: "spec.yml:2",
                    contains: ["'num_refinement_blocks' must be a non-negative integer, got -1"])
        assertError("type: Restormer\nnum_blocks:\n  - 4\n  - 0\n  - 6\n  - 8\n", at: "spec.yml:4",
                    contains: ["'num_blocks[1]' must be a positive integer, got 0"])
        assertError("type: Restormer\nnum_blocks: 4\n", at: "spec.yml:2",
                    contains: ["'num_blocks' must be a list of 4 integers, got '4'"])
        assertError("type: Restormer\nffn_expansion_factor: wide\n", at: "spec.yml:2",
                    contains: ["'ffn_expansion_factor' must be a number, got 'wide'"])
        assertError("type: Restormer\nmlp_ratio: -2\n", at: "spec.yml:2",
                    contains: ["'mlp_ratio' must be a positive number, got -2"])
        assertError("type: Restormer\nbias: 1\n", at: "spec.yml:2",
                    contains: ["'bias' must be true or false, got '1'"])
        assertError("type: Restormer\ndual_pixel_task: maybe\n", at: "spec.yml:2",
                    contains: ["'dual_pixel_task' must be true or false, got 'maybe'"])
        assertError("type: Restormer\nLayerNorm_type: NoBias\n", at: "spec.yml:2",
                    contains: ["'LayerNorm_type' must be one of WithBias, BiasFree, got 'NoBias'"])
        assertError("type: HybridUNet\nlayout: [S, S]\n", at: "spec.yml:2",
                    contains: ["'layout' must be a string"])
    }

    func testDimMustBeEven() {
        XCTAssertNoThrow(try parse("type: Restormer\ndim: 50\nheads: [1, 1, 1, 1]\n"))
        assertError("type: Restormer\ndim: 47\nheads: [1, 1, 1, 1]\n", at: "spec.yml:2",
                    contains: ["'dim' must be even (each Downsample halves the channels before its pixel-unshuffle), "
                               + "got 47"])
    }

    func testBlockWidthsMustBeAtLeastOne() {
        assertError("type: Restormer\nffn_expansion_factor: 0.01\n", at: "spec.yml:2",
                    contains: ["GDFN hidden width", "encoder_level1", "= 0"])
        assertError("type: MambaIRUNet\nmlp_ratio: 0.01\n", at: "spec.yml:2",
                    contains: ["SS2D width E = int(mlp_ratio * C)", "encoder_level1", "= 0"])
    }

    func testMergeKeysAreApplied() throws {
        let (spec, _) = try parse("""
            base: &base
              type: Restormer
              dim: 32
            network_g:
              <<: *base
              dim: 64
            """)
        XCTAssertEqual(spec.type, .restormer)
        XCTAssertEqual(spec.dim, 64)
    }
}
