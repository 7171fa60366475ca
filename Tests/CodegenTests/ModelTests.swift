/// Whole models: the generated programs of the bundled specs against the interpreter, at runtime sizes up to the
/// compiled maximum, with tiling beyond it, with 1, 2 and 4 threads, on this host and on aarch64 under qemu.
import Codegen
import Driver
import Foundation
import Frontend
import HybridIR
import XCTest

final class ModelTests: XCTestCase {
    static func spec(_ name: String) -> String { GeneratedProgram.repoRoot.appendingPathComponent(name).path }

    static func image(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in Float(rng.nextUnit()) })
    }

    /// Compiles `spec` for `target` at `maxSize`, returns the program.
    func compile(_ spec: String, _ maxSize: String, target: Target, seed: UInt64, dir: URL, flags: [String] = []) throws -> URL {
        let name = URL(fileURLWithPath: spec).deletingPathExtension().lastPathComponent
        var options = CompileOptions(spec: spec, weights: .random(seed: seed), input: try InputSize(parsing: maxSize),
                                     target: target, output: dir.appendingPathComponent("\(name)-\(target.name)").path)
        options.extraCFlags = flags
        return try Compile.run(options).executable
    }

    /// Runs the program on `image` and returns its output.
    func runProgram(_ program: URL, _ image: Tensor, target: Target, dir: URL, threads: Int = 2, extra: [String] = []) throws -> Tensor {
        let input = dir.appendingPathComponent("in-\(UUID().uuidString).npy"), output = dir.appendingPathComponent("out-\(UUID().uuidString).npy")
        try Npy.write(image, to: input.path)
        let r = try GeneratedProgram.run(program, [input.path, output.path, "--threads", "\(threads)"] + extra, target: target)
        XCTAssertEqual(r.status, 0, r.output)
        return try Npy.read(path: output.path)
    }

    func interpret(_ spec: String, _ image: Tensor, seed: UInt64) throws -> Tensor {
        let model = try ModelLoader.load(spec, weights: .random(seed: seed),
                                         input: InputSize(channels: image.shape[0], height: image.shape[1], width: image.shape[2]))
        return try Interpret.run(model: model, image: image, source: "test")
    }

    /// On the host the programs are built with -DHC_POISON: every buffer is filled with NaN after its last reader,
    /// so a memory plan that reuses a slot too early cannot go unnoticed.
    func bundledModels(target: Target) throws {
        try GeneratedProgram.requireRunnable(target)
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let models = try FileManager.default.contentsOfDirectory(atPath: Self.spec("Graphs/models"))
            .filter { $0.hasSuffix(".yml") }.sorted()
        XCTAssertEqual(models.count, 6)
        for (i, name) in models.enumerated() {
            let spec = Self.spec("Graphs/models/\(name)")
            let program = try compile(spec, "3x16x16", target: target, seed: UInt64(i), dir: dir,
                                      flags: target.runner.isEmpty ? ["-DHC_POISON"] : [])
            let image = Self.image([3, 16, 16], seed: 10 + UInt64(i))
            let actual = try runProgram(program, image, target: target, dir: dir)
            let expected = try interpret(spec, image, seed: UInt64(i))
            XCTAssertEqual(actual.shape, expected.shape)
            let err = GeneratedProgram.relativeError(actual.data, expected.data)
            XCTAssertLessThanOrEqual(err, 1e-4, "\(name) on \(target.name)")
        }
    }

    func testBundledModelsOnHost() throws { try bundledModels(target: .host) }

    /// The x86 target that `host` is not (x86-64-avx2 on an AVX-512 machine; x86-64-avx512 is skipped on a CPU
    /// without avx512f).
    func testBundledModelsOnX86AVX2() throws {
        try GeneratedProgram.requireNotHost(.x86_64AVX2, covered: "testBundledModelsOnHost")
        try bundledModels(target: .x86_64AVX2)
    }

    func testBundledModelsOnX86AVX512() throws {
        try GeneratedProgram.requireNotHost(.x86_64AVX512, covered: "testBundledModelsOnHost")
        try bundledModels(target: .x86_64AVX512)
    }

    func testBundledModelsOnAArch64() throws { try bundledModels(target: .aarch64) }

    /// The default Restormer at full width, compiled for 3x64x64: the full size, a smaller size that is not a
    /// multiple of 8, and bitwise-identical output for 1, 2 and 4 threads.
    func restormerFullWidth(target: Target) throws {
        try GeneratedProgram.requireRunnable(target)
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let spec = Self.spec("Graphs/models/restormer.yml")
        let program = try compile(spec, "3x64x64", target: target, seed: 42, dir: dir)
        for shape in [[3, 64, 64], [3, 61, 45]] {
            let image = Self.image(shape, seed: 7)
            let actual = try runProgram(program, image, target: target, dir: dir)
            let expected = try interpret(spec, image, seed: 42)
            XCTAssertEqual(actual.shape, shape)
            XCTAssertLessThanOrEqual(GeneratedProgram.relativeError(actual.data, expected.data), 1e-4, "\(shape) on \(target.name)")
            if shape == [3, 64, 64] && target.runner.isEmpty {
                for threads in [1, 4] {
                    let other = try runProgram(program, image, target: target, dir: dir, threads: threads)
                    XCTAssertEqual(other.data.map(\.bitPattern), actual.data.map(\.bitPattern),
                                   "\(threads) threads differ from 2 threads")
                }
            }
        }
    }

    func testRestormerFullWidthOnHost() throws { try restormerFullWidth(target: .host) }

    func testRestormerFullWidthOnX86AVX2() throws {
        try GeneratedProgram.requireNotHost(.x86_64AVX2, covered: "testRestormerFullWidthOnHost")
        try restormerFullWidth(target: .x86_64AVX2)
    }

    func testRestormerFullWidthOnX86AVX512() throws {
        try GeneratedProgram.requireNotHost(.x86_64AVX512, covered: "testRestormerFullWidthOnHost")
        try restormerFullWidth(target: .x86_64AVX512)
    }

    func testRestormerFullWidthOnAArch64() throws { try restormerFullWidth(target: .aarch64) }

    func testThreadCountDoesNotChangeTheResultOfAHybrid() throws {
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let program = try compile(Self.spec("Graphs/tests/tiny-hybrid.yml"), "3x32x32", target: .host, seed: 3, dir: dir)
        let image = Self.image([3, 29, 32], seed: 4)
        let outputs = try [1, 2, 3, 4].map { try runProgram(program, image, target: .host, dir: dir, threads: $0) }
        for o in outputs.dropFirst() { XCTAssertEqual(o.data.map(\.bitPattern), outputs[0].data.map(\.bitPattern)) }
    }

    /// S blocks end to end in the carry form of the chunked scan: described as a 64-core machine, the host has more
    /// threads × lanes than the scans have channels, so chunk-selective-scan picks the carry form, whose scratch the
    /// memory plan places; the run size (29x32) is below the compiled one, so L is smaller than planned.
    func testCarryFormOfTheChunkedScanEndToEnd() throws {
        let dir = try GeneratedProgram.temporaryDirectory(self)
        var target = Target.host
        target.cores = 64
        let spec = Self.spec("Graphs/tests/tiny-s.yml")
        let program = try compile(spec, "3x32x32", target: target, seed: 5, dir: dir)
        let model = try String(contentsOf: URL(fileURLWithPath: program.path + ".src/model.c"), encoding: .utf8)
        XCTAssertTrue(model.contains("form=\"carry\""), "no scan got the carry form")
        let image = Self.image([3, 29, 32], seed: 6)
        let expected = try interpret(spec, image, seed: 5)
        let outputs = try [1, 3].map { try runProgram(program, image, target: target, dir: dir, threads: $0) }
        XCTAssertLessThanOrEqual(GeneratedProgram.relativeError(outputs[0].data, expected.data), 1e-4)
        XCTAssertEqual(outputs[1].data.map(\.bitPattern), outputs[0].data.map(\.bitPattern))
    }

    /// Byte-identical kernels in one program (tiny-t's decoder level 1 and refinement blocks are both C = 32 at
    /// level 0, so their fused attention phases are the same C text): the C compiler may fold them into one body
    /// and call it directly from the others (gcc's identical code folding), and every one of them must still run.
    /// GCC 12 at -O2/-O3 once deleted such a direct call to the fused attention's `mix` (it wrongly found the
    /// kernel pure), so the second block read the first block's M; under -DHC_POISON that M is NaN by then.
    /// Small sizes on the host's widest target, where that showed up first.
    func testIdenticalKernelsAllRun() throws {
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let spec = Self.spec("Graphs/tests/tiny-t.yml")
        let program = try compile(spec, "3x16x16", target: .host, seed: 11, dir: dir, flags: ["-DHC_POISON"])
        let model = try String(contentsOf: URL(fileURLWithPath: program.path + ".src/model.c"), encoding: .utf8)
        // The bodies of the mix kernels, without their names: at least two must be the same text.
        let bodies = model.components(separatedBy: "static void k").dropFirst()
            .filter { $0.contains("_fused_attention_mix(void *argp") }
            .map { $0.drop { $0 != "{" }.components(separatedBy: "\n}\n")[0] }
        XCTAssertLessThan(Set(bodies).count, bodies.count, "no two fused attention mix kernels are the same C text")
        for shape in [[3, 16, 16], [3, 8, 16]] {
            let image = Self.image(shape, seed: 12)
            let expected = try interpret(spec, image, seed: 11)
            for threads in [1, 2] {
                let actual = try runProgram(program, image, target: .host, dir: dir, threads: threads)
                XCTAssertLessThanOrEqual(GeneratedProgram.relativeError(actual.data, expected.data), 1e-4, "\(shape), \(threads) threads")
            }
        }
    }

    /// Free concatenation (plan-memory): the U-Net's concats have no kernel, their operands are written into the
    /// concat's slot at offsets that follow the run-time size; a run below the compiled size under -DHC_POISON
    /// (every slot NaN after its last reader, a concat's slot only after the concat's last reader) still matches.
    func testFreeConcatenationBelowTheCompiledSizeUnderPoison() throws {
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let spec = Self.spec("Graphs/tests/tiny-hybrid.yml")
        let program = try compile(spec, "3x32x32", target: .host, seed: 8, dir: dir, flags: ["-DHC_POISON"])
        let model = try String(contentsOf: URL(fileURLWithPath: program.path + ".src/model.c"), encoding: .utf8)
        XCTAssertFalse(model.contains("_concat("), "a concat kernel is left")
        XCTAssertTrue(model.contains("*h8*w8);\n"), "no operand is written at a size-dependent offset")
        for shape in [[3, 32, 32], [3, 13, 22]] {
            let image = Self.image(shape, seed: 9)
            let expected = try interpret(spec, image, seed: 8)
            let outputs = try [1, 3].map { try runProgram(program, image, target: .host, dir: dir, threads: $0) }
            XCTAssertLessThanOrEqual(GeneratedProgram.relativeError(outputs[0].data, expected.data), 1e-4, "\(shape)")
            XCTAssertEqual(outputs[1].data.map(\.bitPattern), outputs[0].data.map(\.bitPattern))
        }
    }

    /// An image larger than the compiled size is cut into overlapping tiles; the reference runs the interpreter on
    /// the same tiles and blends them with the same linear ramps (the rule hc_main.c documents).
    func testLargerImagesAreTiled() throws {
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let spec = Self.spec("Graphs/tests/tiny-hybrid.yml")
        let program = try compile(spec, "3x16x24", target: .host, seed: 5, dir: dir)
        let (h, w, overlap) = (37, 50, 6)
        let image = Self.image([3, h, w], seed: 6)
        let actual = try runProgram(program, image, target: .host, dir: dir, extra: ["--overlap", "\(overlap)"])
        XCTAssertEqual(actual.shape, [3, h, w])
        let expected = try tiledReference(spec: spec, image: image, tile: (16, 24), overlap: overlap, seed: 5)
        XCTAssertLessThanOrEqual(GeneratedProgram.relativeError(actual.data, expected), 1e-4)
    }

    func tiledReference(spec: String, image: Tensor, tile: (Int, Int), overlap: Int, seed: UInt64) throws -> [Float] {
        let (c, h, w) = (image.shape[0], image.shape[1], image.shape[2])
        let (th, tw) = (min(h, tile.0), min(w, tile.1))
        let (oy, ox) = (min(overlap, th / 2), min(overlap, tw / 2))
        func count(_ len: Int, _ t: Int, _ o: Int) -> Int { len <= t ? 1 : 1 + (len - t + (t - o) - 1) / (t - o) }
        func position(_ i: Int, _ n: Int, _ len: Int, _ t: Int) -> Int { n <= 1 ? 0 : (i * (len - t) + (n - 1) / 2) / (n - 1) }
        func ramp(_ len: Int, _ lo: Int, _ hi: Int) -> [Float] {
            (0..<len).map { j in
                let a: Float = j < lo ? (Float(j) + 0.5) / Float(lo) : 1
                let b: Float = j >= len - hi ? (Float(len - j) - 0.5) / Float(hi) : 1
                return min(a, b)
            }
        }
        let (ny, nx) = (count(h, th, oy), count(w, tw, ox))
        var out = [Float](repeating: 0, count: c * h * w), weight = [Float](repeating: 0, count: h * w)
        for ty in 0..<ny {
            let y0 = position(ty, ny, h, th)
            let up = ty > 0 ? position(ty - 1, ny, h, th) + th - y0 : 0
            let down = ty < ny - 1 ? y0 + th - position(ty + 1, ny, h, th) : 0
            let wy = ramp(th, up, down)
            for tx in 0..<nx {
                let x0 = position(tx, nx, w, tw)
                let left = tx > 0 ? position(tx - 1, nx, w, tw) + tw - x0 : 0
                let right = tx < nx - 1 ? x0 + tw - position(tx + 1, nx, w, tw) : 0
                let wx = ramp(tw, left, right)
                var crop = [Float]()
                for ch in 0..<c {
                    for y in 0..<th {
                        let start = (ch * h + y0 + y) * w + x0
                        crop += image.data[start..<(start + tw)]
                    }
                }
                let result = try interpret(spec, Tensor(shape: [c, th, tw], data: crop), seed: seed)
                for y in 0..<th {
                    for x in 0..<tw {
                        let wt = wy[y] * wx[x], p = (y0 + y) * w + x0 + x
                        for ch in 0..<c {
                            let v: Float = result.data[(ch * th + y) * tw + x]
                            let q = ch * h * w + p
                            if weight[p] == 0 {
                                out[q] = v
                            } else {
                                let share: Float = wt / (weight[p] + wt)
                                out[q] += (v - out[q]) * share
                            }
                        }
                        weight[p] += wt
                    }
                }
            }
        }
        return out
    }
}

/// The library's promise: no allocation, thread creation or file I/O inside run. The program is linked with
/// wrappers that count malloc, calloc, realloc, pthread_create and fopen while model_run executes.
final class NoAllocationTests: XCTestCase {
    func check(target: Target) throws {
        guard GeneratedProgram.canRun(target) else { throw XCTSkip("\(target.name) toolchain not installed") }
        let dir = try GeneratedProgram.temporaryDirectory(self)
        let spec = ModelTests.spec("Graphs/tests/tiny-hybrid.yml")
        var options = CompileOptions(spec: spec, weights: .random(seed: 1), input: try InputSize(parsing: "3x16x16"),
                                     target: target, output: dir.appendingPathComponent("wrapped").path)
        options.extraCFlags = ["-DHC_WRAP_TEST", "hc_wrap_test.c",
                               "-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=pthread_create,--wrap=fopen"]
        let program = try Compile.run(options).executable
        let image = dir.appendingPathComponent("in.npy").path
        try Npy.write(ModelTests.image([3, 40, 30], seed: 2), to: image)   // tiled: many model_run calls
        let r = try GeneratedProgram.run(program, [image, dir.appendingPathComponent("out.npy").path, "--threads", "3"], target: target)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("wrap: 0 forbidden calls in"), r.output)
    }

    func testNoAllocationDuringRunOnHost() throws { try check(target: .host) }

    func testNoAllocationDuringRunOnAArch64() throws { try check(target: .aarch64) }
}
