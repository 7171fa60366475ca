/// `hybridc opt`: the pass list, IR dumps after passes, timing, statistics, DOT and C output, dump files.
import Foundation
import XCTest

final class OptCommandTests: XCTestCase {
    static let block = CLI.repoRoot.appendingPathComponent("Graphs/blocks/ssm-block.hir").path

    func testListPassesNeedsNoInput() throws {
        let r = try CLI.hybridc(["opt", "--list-passes"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for name in ["infer-shapes", "expand-blocks", "canonicalize", "fold-constants", "eliminate-dead-code"] {
            XCTAssertTrue(r.stdout.contains(name), "\(name) missing from:\n\(r.stdout)")
        }
        XCTAssertTrue(r.stdout.contains("pipelines: O0 = "), r.stdout)
    }

    func testPrintAfterAllAndAfterChange() throws {
        let all = try CLI.hybridc(["opt", Self.block, "--print-ir-after-all"])
        XCTAssertEqual(all.status, 0, all.stderr)
        XCTAssertTrue(all.stdout.contains("// ----- IR after expand-blocks -----\ngraph @ssm_block"), all.stdout)
        XCTAssertTrue(all.stdout.contains("selective_scan("))
        let change = try CLI.hybridc(["opt", Self.block, "--print-ir-after-change"])
        XCTAssertTrue(change.stdout.contains("// ----- IR after infer-shapes -----\n(unchanged)"), change.stdout)
        let one = try CLI.hybridc(["opt", Self.block, "--print-ir-after", "fold-constants", "--passes", "infer-shapes,expand-blocks,fold-constants"])
        XCTAssertTrue(one.stdout.contains("// ----- IR after fold-constants -----"), one.stdout)
        XCTAssertFalse(one.stdout.contains("// ----- IR after expand-blocks -----"), one.stdout)
        // A = -exp(A_logs) is computed at compile time.
        XCTAssertTrue(one.stdout.contains("A_logs.exp.neg"), one.stdout)
    }

    func testTimingStatisticsAndDumps() throws {
        let dir = try CLI.temporaryDirectory(self)
        let r = try CLI.hybridc(["opt", Self.block, "--time-passes", "--stats", "--dump-dir", dir.appendingPathComponent("dumps").path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("// ----- pass timing -----"), r.stdout)
        XCTAssertTrue(r.stdout.contains("// expand-blocks: blocks expanded: 1"), r.stdout)
        XCTAssertTrue(r.stdout.contains("// fold-constants: ops folded: "), r.stdout)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("dumps").path).sorted()
        XCTAssertEqual(files.first, "00-input.hir")
        XCTAssertTrue(files.contains("02-expand-blocks.hir"), "\(files)")
        // One file for the input, then one per pass of the default pipeline, numbered in order.
        XCTAssertGreaterThanOrEqual(files.count, 8)
        XCTAssertTrue(files.contains { $0.hasSuffix("-eliminate-dead-code.hir") }, "\(files)")
        XCTAssertTrue(files.last?.hasSuffix("-plan-memory.hir") == true, "\(files)")
        // plan-memory reports the arena against its lower bound.
        XCTAssertTrue(r.stdout.contains("// plan-memory: arena bytes: "), r.stdout)
        XCTAssertTrue(r.stdout.contains(", lower bound bytes: "), r.stdout)
        XCTAssertTrue(r.stdout.contains(", concatenations free (no kernel): "), r.stdout)
        // Which scan form ran where: the scan's scope, its form and the cost rule's numbers, under the pass that chose it.
        XCTAssertTrue(r.stdout.contains("//   scan form at encoder_level2.0.self_attention (%"), r.stdout)
        XCTAssertTrue(r.stdout.contains(" 2*threads 2*vector "), r.stdout)
        XCTAssertTrue(r.stdout.contains("; length 64, chunk "), r.stdout)
    }

    func testEmitDotAndC() throws {
        let dot = try CLI.hybridc(["opt", Self.block, "--emit", "dot"])
        XCTAssertEqual(dot.status, 0, dot.stderr)
        XCTAssertTrue(dot.stdout.hasPrefix("digraph \"ssm_block\" {"), dot.stdout)
        XCTAssertTrue(dot.stdout.contains("_ss2d_scan\\nfuses: "), dot.stdout)
        XCTAssertTrue(dot.stdout.contains(",selective_scan,"), dot.stdout)
        XCTAssertTrue(dot.stdout.contains("\\nencoder_level2.0.self_attention\\nf32[1,192,8,8]"), dot.stdout)
        let c = try CLI.hybridc(["opt", CLI.testSpec("tiny-s.yml"), "--size", "3x16x16", "--emit", "c"])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stdout.contains("int model_run(model_ctx *ctx"), String(c.stdout.prefix(500)))
    }

    func testBadOptions() throws {
        let noInput = try CLI.hybridc(["opt"])
        XCTAssertEqual(noInput.status, 64)
        let unknown = try CLI.hybridc(["opt", Self.block, "--passes", "infer-shapes,fuse-all"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("unknown pass 'fuse-all'; known passes:"), unknown.stderr)
        let pipeline = try CLI.hybridc(["opt", Self.block, "--pipeline", "fast"])
        XCTAssertTrue(pipeline.stderr.contains("unknown pipeline 'fast'; known pipelines: O0, default, lower"), pipeline.stderr)
        let disable = try CLI.hybridc(["compile", CLI.testSpec("tiny-t.yml"), "--random-weights", "0", "--disable-pass", "fuse-x", "-o", "/tmp/x"])
        XCTAssertEqual(disable.status, 64)
        XCTAssertTrue(disable.stderr.contains("--disable-pass: unknown pass 'fuse-x'"), disable.stderr)
    }

    func testCompileWithO0AndDisabledPassesBuilds() throws {
        let dir = try CLI.temporaryDirectory(self)
        for flags in [["-O0"], ["--disable-pass", "fold-constants"]] {
            let r = try CLI.hybridc(["compile", CLI.testSpec("tiny-s.yml"), "--random-weights", "2", "--input", "3x16x16",
                                     "-o", dir.appendingPathComponent("p").path] + flags)
            XCTAssertEqual(r.status, 0, r.stderr)
            let model = try String(contentsOf: dir.appendingPathComponent("p.src/model.c"), encoding: .utf8)
            // Without fold-constants, codegen still folds A = -exp(A_logs) into the blob; no exp kernel on it.
            XCTAssertTrue(model.contains(flags == ["-O0"] ? "_selective_scan" : "_ss2d_scan"), "\(flags)")
            XCTAssertFalse(model.contains("_exp("), "\(flags)")
        }
    }
}
