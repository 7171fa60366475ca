/// `hybridc profile`: the per-kernel table, its JSON, the Chrome trace, the roofline SVG, --mca, and bad options.
import Foundation
import XCTest

final class ProfileCommandTests: XCTestCase {
    /// Calibration goes to a fresh folder (not ~/.cache) for every test.
    func calibrated(_ dir: URL) {
        setenv("HC_CALIBRATION_DIR", dir.appendingPathComponent("calibration").path, 1)
    }

    func testTableJsonTraceAndRoofline() throws {
        let dir = try CLI.temporaryDirectory(self)
        calibrated(dir)
        let json = dir.appendingPathComponent("p.json").path, trace = dir.appendingPathComponent("t.json").path
        let svg = dir.appendingPathComponent("r.svg").path
        let r = try CLI.hybridc(["profile", CLI.testSpec("tiny-t.yml"), "--random-weights", "0", "--input", "3x32x32",
                                 "--threads", "2", "--json", json, "--trace", trace, "--roofline", svg])
        XCTAssertEqual(r.status, 0, r.stderr)
        for column in ["kernel", "ops", "calls", "total ms", "share %", "GFLOP/s", "GB/s", "roof %", "bound"] {
            XCTAssertTrue(r.stdout.contains(column), "column \(column) in:\n\(r.stdout)")
        }
        XCTAssertTrue(r.stdout.contains("peaks:"))
        XCTAssertTrue(r.stdout.contains("by block"))
        XCTAssertTrue(r.stdout.contains("encoder_level1.0      T"), r.stdout)
        XCTAssertTrue(r.stdout.contains("k1_conv2d"), r.stdout)
        XCTAssertTrue(r.stderr.contains("compiling tiny-t.yml"), "progress line: \(r.stderr)")
        let calibration = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("calibration").path)
        XCTAssertEqual(calibration.count, 1)

        // JSON: the expected keys, non-negative numbers, one row per kernel.
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        for key in ["program", "target", "threads", "repeat", "height", "width", "run_ms_median", "total_ms", "peaks", "kernels"] {
            XCTAssertNotNil(root[key], key)
        }
        XCTAssertEqual(root["threads"] as? Int, 2)
        // Peaks are cached per CPU and SIMD mapping (avx512, avx2, neon, scalar): the file names the program's.
        let simd = try XCTUnwrap(root["target"] as? String)
        XCTAssertTrue(["avx512", "avx2", "neon", "scalar"].contains(simd), simd)
        XCTAssertTrue(calibration[0].hasPrefix("calibration-") && calibration[0].hasSuffix("-\(simd).txt"), calibration[0])
        let peaks = try XCTUnwrap(root["peaks"] as? [String: Any])
        for key in ["fma_gflops", "fma_gflops_1_thread", "copy_gbps", "ridge_flops_per_byte"] {
            XCTAssertGreaterThan((peaks[key] as? NSNumber)?.doubleValue ?? -1, 0, key)
        }
        let kernels = try XCTUnwrap(root["kernels"] as? [[String: Any]])
        XCTAssertGreaterThan(kernels.count, 10)
        var flops = 0.0
        for k in kernels {
            for key in ["index", "calls", "total_ms", "share", "flops", "bytes", "gflops", "gbps", "intensity", "roof_fraction", "peak_fraction"] {
                let v = try XCTUnwrap((k[key] as? NSNumber)?.doubleValue, "\(key) of \(k)")
                XCTAssertGreaterThanOrEqual(v, 0, "\(key) of \(k)")
            }
            for key in ["name", "ops", "scope"] { XCTAssertNotNil(k[key] as? String, key) }
            XCTAssertTrue(["compute", "memory"].contains(k["bound"] as? String ?? ""))
            XCTAssertEqual((k["calls"] as? NSNumber)?.intValue, 1, "one run: one call per kernel")
            flops += (k["flops"] as? NSNumber)?.doubleValue ?? 0
        }
        XCTAssertGreaterThan(flops, 1e6)

        // Trace: complete slices with ts/dur/pid/tid; every kernel on both threads, as often on each.
        let t = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: trace))) as? [String: Any])
        let events = try XCTUnwrap(t["traceEvents"] as? [[String: Any]]).filter { $0["ph"] as? String == "X" }
        var perKernel: [String: [Int: Int]] = [:]
        for e in events {
            XCTAssertNotNil(e["pid"] as? Int)
            XCTAssertGreaterThanOrEqual((e["ts"] as? NSNumber)?.doubleValue ?? -1, 0)
            XCTAssertGreaterThanOrEqual((e["dur"] as? NSNumber)?.doubleValue ?? -1, 0)
            perKernel[e["name"] as? String ?? "", default: [:]][e["tid"] as? Int ?? -1, default: 0] += 1
        }
        for k in kernels {
            let name = k["name"] as? String ?? ""
            let counts = perKernel[name] ?? [:]
            XCTAssertEqual(Set(counts.keys), [0, 1], "\(name) has a slice on each thread")
            XCTAssertEqual(counts[0], counts[1], name)
            XCTAssertGreaterThanOrEqual(counts[0] ?? 0, 1, name)
        }

        // Roofline: well-formed XML with a point per kernel that has FLOPs.
        let xml = try CLI.run(URL(fileURLWithPath: "/usr/bin/env"),
                              ["python3", "-c", "import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); print(d.documentElement.tagName)", svg])
        XCTAssertEqual(xml.status, 0, "SVG parses as XML: \(xml.stderr)")
        XCTAssertEqual(xml.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "svg")
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        XCTAssertTrue(text.contains("<svg") && text.contains("compute roof") && text.contains("bandwidth roof"))
        XCTAssertGreaterThan(text.components(separatedBy: "<circle").count, 5)
    }

    func testBadOptionsGiveClearErrors() throws {
        let dir = try CLI.temporaryDirectory(self)
        calibrated(dir)
        let spec = CLI.testSpec("tiny-t.yml")
        let cases: [([String], String)] = [
            (["profile", spec, "--random-weights", "0", "--mca"], "--target aarch64"),
            (["profile", spec, "--random-weights", "0", "--threads", "0"], "--threads"),
            (["profile", spec, "--random-weights", "0", "--trace", "t.txt"], "ending in .json"),
            (["profile", spec, "--random-weights", "0", "--roofline", "r.png"], "ending in .svg"),
            (["profile", spec], "--random-weights"),
            (["profile", spec, "--random-weights", "0", "--target", "sparc"], "unknown target"),
            (["profile", spec, "--random-weights", "0", "--image", dir.appendingPathComponent("none.png").path], "cannot read"),
            (["profile", spec, "--random-weights", "0", "--input", "3x0x4"], "CxHxW"),
        ]
        for (args, message) in cases {
            let r = try CLI.hybridc(args, in: dir)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(message), "\(args.joined(separator: " ")): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
        }
    }

    func testMcaOnTheGeneratedNeonLoops() throws {
        let found = try CLI.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "command -v llvm-mca-19"])
        if found.status != 0 { throw XCTSkip("llvm-mca-19 is not installed (apt-get install llvm-19)") }
        let dir = try CLI.temporaryDirectory(self)
        let r = try CLI.hybridc(["profile", CLI.testSpec("tiny-t.yml"), "--random-weights", "0", "--input", "3x32x32",
                                 "--target", "aarch64", "--mca"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("-mcpu=oryon-1"), r.stdout)
        XCTAssertTrue(r.stdout.contains("4.00 fmla .4s per cycle"), "llvm 19's Oryon model: 4 FMA pipes\n\(r.stdout)")
        XCTAssertTrue(r.stdout.contains("not run here"), r.stdout)
        // Rows: loop, instrs, skipped, FMAs, cycles/it, FLOP/cyc, % peak, kernels; at least one loop with FMAs and
        // a sane estimate (cycles > 0, at most 100% of the peak).
        let rows = r.stdout.split(separator: "\n").filter { $0.hasPrefix("k") && $0.contains(" .L") || $0.contains("constprop") }
        XCTAssertFalse(rows.isEmpty, r.stdout)
        var withFma = 0
        for row in rows {
            let tokens = row.split(separator: " ").map(String.init)
            let start = try XCTUnwrap((0..<max(0, tokens.count - 5)).first { i in (i..<i + 6).allSatisfy { Double(tokens[$0]) != nil } }, String(row))
            let f = tokens[start..<start + 6].map { Double($0)! }
            let (fmas, cycles, peak) = (f[2], f[3], f[5])
            withFma += fmas > 0 ? 1 : 0
            XCTAssertGreaterThan(cycles, 0, String(row))
            XCTAssertLessThanOrEqual(peak, 100.5, String(row))
        }
        XCTAssertGreaterThan(withFma, 0, "the GEMM micro-kernel's loop has vector FMAs:\n\(r.stdout)")
    }
}
