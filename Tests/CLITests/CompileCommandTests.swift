/// `hybridc compile` as a user runs it: from any directory, writing the program and its sources, and the
/// program's own handling of images, flags and bad input.
import Foundation
import XCTest

final class CompileCommandTests: XCTestCase {
    func testCompileFromATemporaryDirectoryAndRestoreAPNG() throws {
        let dir = try CLI.temporaryDirectory(self)
        let r = try CLI.hybridc(["compile", CLI.testSpec("tiny-hybrid.yml"), "--random-weights", "1", "--input", "3x96x96",
                                 "-o", "build/tiny"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let program = dir.appendingPathComponent("build/tiny")
        let sources = dir.appendingPathComponent("build/tiny.src")
        for file in ["model.c", "model.h", "model.weights", "weights.S", "Makefile", "hc_runtime.c", "hc_main.c", "hc_simd.h"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: sources.appendingPathComponent(file).path), file)
        }
        // Generated kernels are named after their ops and open with a comment of their shapes.
        let model = try String(contentsOf: sources.appendingPathComponent("model.c"), encoding: .utf8)
        XCTAssertTrue(model.contains("static void k1_conv2d(void *argp, int tid, int nt)"))
        XCTAssertTrue(model.contains("/* k1_conv2d: conv2d(x0 f32[1,3,8h,8w], x1 f32[32,3,3,3]) -> y f32[1,32,8h,8w]"))
        // The bundled 256x256 image is larger than the compiled 96x96, so it is tiled.
        let png = CLI.repoRoot.appendingPathComponent("Graphs/images/rainy-256.png").path
        let out = dir.appendingPathComponent("restored.png").path
        let run = try CLI.run(program, [png, out, "--threads", "2"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        XCTAssertEqual(Array(bytes.prefix(8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
        // IHDR width and height.
        XCTAssertEqual(Array(bytes[16..<24]), [0, 0, 1, 0, 0, 0, 1, 0])

        // The Makefile rebuilds the program from the kept sources.
        let make = try CLI.run(URL(fileURLWithPath: "/usr/bin/env"), ["make", "-C", sources.path, "OUT=again"])
        XCTAssertEqual(make.status, 0, make.stdout + make.stderr)
        let lib = try CLI.run(URL(fileURLWithPath: "/usr/bin/env"), ["make", "-C", sources.path, "lib"])
        XCTAssertEqual(lib.status, 0, lib.stdout + lib.stderr)

        // Usage errors exit 2, I/O errors 3.
        XCTAssertEqual(try CLI.run(program, [png, out, "--threads", "zero"]).status, 2)
        XCTAssertEqual(try CLI.run(program, [png, dir.appendingPathComponent("out.bmp").path]).status, 2)
        let missing = try CLI.run(program, [dir.appendingPathComponent("missing.png").path, out])
        XCTAssertEqual(missing.status, 3)
        XCTAssertTrue(missing.stderr.contains("missing.png"), missing.stderr)
    }

    func testCompileErrors() throws {
        let dir = try CLI.temporaryDirectory(self)
        let unknown = try CLI.hybridc(["compile", CLI.testSpec("tiny-t.yml"), "--random-weights", "1", "--target", "riscv", "-o", "x"], in: dir)
        XCTAssertEqual(unknown.status, 64)
        XCTAssertTrue(unknown.stderr.contains("unknown target 'riscv'; known targets: host, aarch64, x86-64-avx2, x86-64-avx512, generic"), unknown.stderr)
        let noWeights = try CLI.hybridc(["compile", CLI.testSpec("tiny-t.yml"), "-o", "x"], in: dir)
        XCTAssertEqual(noWeights.status, 64)
        XCTAssertTrue(noWeights.stderr.contains("--weights FILE or --random-weights SEED"), noWeights.stderr)
    }

    func testCrossCompiledProgramRunsUnderQemu() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/aarch64-linux-gnu-gcc"),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-aarch64") else {
            throw XCTSkip("aarch64 cross compiler or qemu not installed (scripts/setup.sh installs them)")
        }
        let dir = try CLI.temporaryDirectory(self)
        let r = try CLI.hybridc(["compile", CLI.testSpec("tiny-t.yml"), "--random-weights", "1", "--input", "3x128x128",
                                 "--target", "aarch64", "-o", "tiny-arm"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let file = try CLI.run(URL(fileURLWithPath: "/usr/bin/env"), ["file", dir.appendingPathComponent("tiny-arm").path])
        if file.status == 0 { XCTAssertTrue(file.stdout.contains("aarch64") || file.stdout.contains("ARM"), file.stdout) }
        // The command line the issue gives, with nothing else set up.
        let png = CLI.repoRoot.appendingPathComponent("Graphs/images/rainy-256.png").path
        let run = try CLI.run(URL(fileURLWithPath: "/usr/bin/env"),
                              ["QEMU_LD_PREFIX=/usr/aarch64-linux-gnu", "qemu-aarch64", dir.appendingPathComponent("tiny-arm").path,
                               png, dir.appendingPathComponent("out.png").path])
        XCTAssertEqual(run.status, 0, run.stderr)
    }
}
