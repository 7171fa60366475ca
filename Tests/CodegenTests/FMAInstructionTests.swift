/// Disassembles the generated model code of the two small bundled models (objdump) and fails any hot kernel —
/// a GEMM, convolution or fused kernel, together with the helpers printed for it (`kN_…_gemm`, `kN_…_micro`, …) —
/// whose machine code has no vector FMA: `vfmadd…ps` on ymm registers for AVX2, on zmm registers for AVX-512,
/// `fmla v….4s` for aarch64 NEON. (Only compiled and disassembled: no CPU extension is needed to run these.)
/// Kernels that are not expected to have one are listed with the reason.
import Codegen
import Driver
import Foundation
import HybridIR
import XCTest

final class FMAInstructionTests: XCTestCase {
    /// Kernel kinds (the function name after `kN_`) exempt from the check, and why.
    static let exempt: [String: String] = [
        "fused_attention_softmax": "per head, the Gram partials reduced and a D×D softmax in fp64: a negligible share of the time",
        "fused_attention_mix": "the fold of the fp64 attn into W_out (C×C×D): a negligible share of the time",
    ]

    /// Kernel kinds that count as hot (GEMM, convolution, fused).
    static func isHot(_ kind: String) -> Bool {
        kind.hasPrefix("conv2d") || kind.hasPrefix("matmul") || kind.hasPrefix("fused_")
    }

    func check(_ target: Target, objdump: String) throws {
        guard Toolchain.available(target.compiler), Toolchain.available(objdump) else {
            throw XCTSkip("\(target.compiler) or \(objdump) is not installed")
        }
        let vectorFMA: String
        switch target.isa {
        case .avx2: vectorFMA = #"vfmadd[0-9]+ps\s.*%ymm"#
        case .avx512: vectorFMA = #"vfmadd[0-9]+ps\s.*%zmm"#
        default: vectorFMA = #"fmla\s+v[0-9]+\.4s"#
        }
        let fma = try NSRegularExpression(pattern: vectorFMA)
        let header = try NSRegularExpression(pattern: #"^[0-9a-f]+ <([A-Za-z0-9_.]+)>:$"#)
        let call = try NSRegularExpression(pattern: #"\s(?:call|jmp|bl|b)\s+[0-9a-f]+ <([A-Za-z0-9_.]+)>"#)
        for spec in ["Graphs/tests/tiny-t.yml", "Graphs/tests/tiny-s.yml"] {
            let (plan, _) = try Compile.plan(spec: GeneratedProgram.repoRoot.appendingPathComponent(spec).path,
                                             weights: .random(seed: 0), input: try InputSize(parsing: "3x16x16"), target: target)
            let generated = try ModelEmitter.emit(plan, source: URL(fileURLWithPath: spec).lastPathComponent)
            let dir = try GeneratedProgram.temporaryDirectory(self)
            try Compile.writeSources(generated, plan: plan, to: dir, target: target)
            let compile = try Toolchain.run([target.compiler] + Toolchain.cflags(target) + ["-c", "model.c", "-o", "model.o"], in: dir)
            XCTAssertEqual(compile.status, 0, "\(spec) for \(target.name) does not compile:\n\(compile.output)")
            let dump = try Toolchain.run([objdump, "-d", "--no-show-raw-insn", dir.appendingPathComponent("model.o").path])
            XCTAssertEqual(dump.status, 0, dump.output)
            // FMA count per function symbol and the functions each calls or tail-jumps to (the compiler merges
            // identical helpers of different kernels, so a kernel may run another kernel's `_gemm`).
            var fmas: [String: Int] = [:]
            var callees: [String: Set<String>] = [:]
            var current: String? = nil
            for line in dump.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
                let range = NSRange(line.startIndex..., in: line)
                if let m = header.firstMatch(in: line, range: range) {
                    current = String(line[Range(m.range(at: 1), in: line)!])
                    fmas[current!] = 0
                    continue
                }
                guard let c = current else { continue }
                if line.isEmpty { current = nil; continue }
                if fma.firstMatch(in: line, range: range) != nil { fmas[c, default: 0] += 1 }
                if let m = call.firstMatch(in: line, range: range) {
                    callees[c, default: []].insert(String(line[Range(m.range(at: 1), in: line)!]))
                }
            }
            /// Vector FMAs in `symbol` and everything it reaches.
            func reachableFMAs(_ symbol: String) -> Int {
                var seen: Set<String> = [symbol], stack = [symbol], total = 0
                while let f = stack.popLast() {
                    total += fmas[f] ?? 0
                    for g in callees[f] ?? [] where !seen.contains(g) { seen.insert(g); stack.append(g) }
                }
                return total
            }
            var checked = 0
            for kernel in plan.kernels {
                let kind = String(kernel.name.drop { $0 != "_" }.dropFirst())
                guard Self.isHot(kind), Self.exempt[kind] == nil else { continue }
                checked += 1
                let symbols = fmas.keys.filter { name in kernel.functionNames.contains { name == $0 || name.hasPrefix($0 + ".") } }
                XCTAssertFalse(symbols.isEmpty, "\(kernel.name) is not in the object file")
                XCTAssertGreaterThan(symbols.map(reachableFMAs).reduce(0, +), 0,
                                     "\(spec) on \(target.name): hot kernel \(kernel.name) (\(kernel.ops.joined(separator: "+"))) has no vector FMA")
            }
            XCTAssertGreaterThan(checked, 3, "\(spec): expected hot kernels to check")
        }
    }

    func testHostAVX2KernelsUseVectorFMA() throws {
        #if arch(x86_64)
        try check(.x86_64AVX2, objdump: "objdump")
        #else
        throw XCTSkip("not an x86-64 host")
        #endif
    }

    func testX86AVX512KernelsUseVectorFMAOnZmm() throws {
        #if arch(x86_64)
        try check(.x86_64AVX512, objdump: "objdump")
        #else
        throw XCTSkip("not an x86-64 host")
        #endif
    }

    func testAArch64KernelsUseVectorFMA() throws {
        try check(.aarch64, objdump: "aarch64-linux-gnu-objdump")
    }
}
