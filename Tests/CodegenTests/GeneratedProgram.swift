/// Helpers to build generated programs for a target, run them (natively or under qemu) and compare with the interpreter.
import Codegen
import Driver
import Foundation
import Frontend
import HybridIR
import XCTest

enum GeneratedProgram {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func temporaryDirectory(_ test: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hybridc-cg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// Runs a built program for `target` with arguments; returns (status, output).
    static func run(_ program: URL, _ arguments: [String], target: Target) throws -> Toolchain.Result {
        try Toolchain.run(target.runner + [program.path] + arguments, environment: Toolchain.runEnvironment(target))
    }

    /// Whether this machine can build and run programs for `target` (cross compiler and qemu for aarch64).
    static func canRun(_ target: Target) -> Bool {
        Toolchain.available(target.compiler) && (target.runner.isEmpty || Toolchain.available(target.runner[0]))
    }

    /// Skips (XCTSkip, never a failure) a test that runs programs for `target` where this machine cannot: no cross
    /// compiler or qemu, or an x86 target whose extensions this CPU lacks (e.g. x86-64-avx512 without avx512f).
    static func requireRunnable(_ target: Target) throws {
        guard canRun(target) else {
            throw XCTSkip("\(target.name): the compiler or qemu is not installed (run scripts/setup.sh)")
        }
        try requireCPU(target)
    }

    /// Skips when `target` is an x86 target and this CPU lacks one of its extensions (only the CPU is checked).
    static func requireCPU(_ target: Target) throws {
        guard target.isa == .avx2 || target.isa == .avx512 else { return }
        guard !target.runsNatively else { return }
        let missing = target.isa.requiredCPUFlags.subtracting(Target.cpuFlags()).sorted()
        throw XCTSkip("\(target.name): this CPU lacks \(missing.isEmpty ? "x86-64" : missing.joined(separator: ", ")) (per /proc/cpuinfo), so its programs cannot run here")
    }

    /// Skips an explicit-target copy of a heavy `…OnHost` test when `target` is what `host` picks here (that test
    /// already runs it), so each x86 target runs once whichever the host is.
    static func requireNotHost(_ target: Target, covered test: String) throws {
        guard Target.host.isa == target.isa else { return }
        throw XCTSkip("\(target.name) is this machine's host target: \(test) runs it")
    }

    /// max |a − b| / max |b|.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        var diff: Float = 0, top: Float = 0
        for (x, y) in zip(a, b) {
            if !x.isFinite || !y.isFinite { return .infinity }
            diff = max(diff, abs(x - y))
            top = max(top, abs(y))
        }
        return top == 0 ? diff : diff / top
    }

    /// Flags that turn on AddressSanitizer and UndefinedBehaviorSanitizer (traps on the first report).
    static let sanitizerFlags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
}
