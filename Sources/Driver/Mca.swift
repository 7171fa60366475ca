/// `hybridc profile --target aarch64 --mca`: a static throughput estimate of the generated NEON code on the
/// Snapdragon 8 Elite's Oryon core, from Debian's llvm-19 (`llvm-mca-19 -mcpu=oryon-1`).
///
/// model.c is compiled to assembly (`aarch64-linux-gnu-gcc -O3 -S`, the program's flags). The loops measured are
/// found generically, not by their text: regions between `LLVM-MCA-BEGIN name` / `LLVM-MCA-END` comments if the
/// generated code has any (built with -DHC_MCA), else in every function the innermost loop (a label and the last
/// backward branch to it, with no other loop inside) that has the most vector FMAs (`fmla`/`fmls` on .4s, .2d or a lane),
/// or if none has FMAs, the most float instructions (vector or scalar: a scan's recurrence is scalar). Identical loop bodies are measured once.
///
/// The FMA peak is read from llvm's own Oryon model by a probe: 16 independent `fmla v.4s` (no dependence
/// between them) give the model's FMAs per cycle (4 with llvm 19: latency 4, reciprocal throughput 0.25, i.e.
/// four 128-bit FMA pipes), so that "fraction of peak" is FMAs per cycle of the loop over that.
import Codegen
import Foundation
import HybridIR

public enum Mca {
    public struct Loop {
        public var function: String
        public var name: String
        public var body: [String]
        public var fmas: Int
        public var vectorOps: Int
        public var flops: Int { body.map(Mca.fmaFlops).reduce(0, +) }
    }

    static func isLabel(_ line: String) -> String? {
        let t = line.trimmingCharacters(in: .whitespaces)
        guard t.hasSuffix(":"), !t.contains(" "), !t.contains("\t") else { return nil }
        return String(t.dropLast())
    }

    static func isFma(_ ins: String) -> Bool {
        let t = ins.trimmingCharacters(in: .whitespaces)
        let mnemonic = t.prefix { !$0.isWhitespace }
        return (mnemonic == "fmla" || mnemonic == "fmls") && (t.contains(".4s") || t.contains(".s[") || t.contains(".2d"))
    }

    /// FLOPs of one vector FMA: 2 per lane (4 lanes of float, 2 of double).
    static func fmaFlops(_ ins: String) -> Int { isFma(ins) ? (ins.contains(".2d") ? 4 : 8) : 0 }

    static func isVectorFloat(_ ins: String) -> Bool {
        // Any floating-point instruction, vector or scalar (a scan's recurrence is scalar per channel).
        ins.trimmingCharacters(in: .whitespaces).hasPrefix("f")
    }

    /// The branch target of an instruction (`b.ne .L12`, `cbnz x1, .L12`, `tbz w0, #3, .L4`, `b .L7`), if any.
    static func branchTarget(_ ins: String) -> String? {
        let t = ins.trimmingCharacters(in: .whitespaces)
        let mnemonic = t.prefix { !$0.isWhitespace }
        let conditions = ["eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al"]
        let m = String(mnemonic)
        guard m == "b" || (m.hasPrefix("b") && conditions.contains(String(m.dropFirst().drop { $0 == "." })))
                || ["cbz", "cbnz", "tbz", "tbnz"].contains(m) else { return nil }
        guard let last = t.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).last else { return nil }
        return String(last)
    }

    /// The instructions of an assembly listing: no labels, directives or comments.
    static func instructions(_ lines: ArraySlice<String>) -> [String] {
        lines.filter { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            return !t.isEmpty && isLabel(line) == nil && !t.hasPrefix(".") && !t.hasPrefix("//") && !t.hasPrefix("#") && !t.hasPrefix("@")
        }.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The loops to measure in an assembly file (see the file comment).
    public static func loops(assembly: String) -> [Loop] {
        let lines = assembly.components(separatedBy: "\n")
        var result: [Loop] = []
        // Marked regions first.
        var open: (name: String, start: Int)? = nil
        var function = ""
        for (i, line) in lines.enumerated() {
            if let l = isLabel(line), !l.hasPrefix(".") { function = l }
            if let r = line.range(of: "LLVM-MCA-BEGIN") {
                open = (line[r.upperBound...].trimmingCharacters(in: .whitespaces), i + 1)
            } else if line.contains("LLVM-MCA-END"), let o = open {
                let body = instructions(lines[o.start..<i])
                result.append(Loop(function: function, name: o.name.isEmpty ? function : o.name, body: body,
                                   fmas: body.filter(isFma).count, vectorOps: body.filter(isVectorFloat).count))
                open = nil
            }
        }
        if !result.isEmpty { return result }

        // Else the hottest innermost loop of each function.
        var start = 0
        func scan(_ name: String, _ range: Range<Int>) {
            var labels: [String: Int] = [:]
            var candidates: [(Int, Int)] = []
            for i in range {
                if let l = isLabel(lines[i]) { labels[l] = i; continue }
                if let target = branchTarget(lines[i]), let at = labels[target], at < i { candidates.append((at, i)) }
            }
            // Keep one interval per label (the widest), then the innermost ones.
            var widest: [Int: Int] = [:]
            for (a, b) in candidates { widest[a] = max(widest[a] ?? b, b) }
            let loops = widest.map { ($0.key, $0.value) }
            let innermost = loops.filter { (a, b) in !loops.contains { (c, d) in (c, d) != (a, b) && a <= c && d <= b } }
            var best: Loop? = nil
            for (a, b) in innermost {
                let body = instructions(lines[(a + 1)...b])
                let loop = Loop(function: name, name: "\(name) \(lines[a].trimmingCharacters(in: .whitespaces).dropLast())", body: body,
                                fmas: body.filter(isFma).count, vectorOps: body.filter(isVectorFloat).count)
                guard loop.vectorOps > 0 else { continue }
                if best == nil || (loop.fmas, loop.vectorOps) > (best!.fmas, best!.vectorOps) { best = loop }
            }
            if let best { result.append(best) }
        }
        var current = ""
        for (i, line) in lines.enumerated() {
            if let l = isLabel(line), !l.hasPrefix(".") {
                if !current.isEmpty { scan(current, start..<i) }
                current = l
                start = i
            }
        }
        if !current.isEmpty { scan(current, start..<lines.count) }
        return result
    }

    /// llvm-mca's cycles per iteration of a straight-line body (from Total Cycles / Iterations).
    public static func cyclesPerIteration(_ body: [String], in dir: URL, iterations: Int = 200) throws -> Double {
        try estimate(body, in: dir, iterations: iterations).cycles
    }

    /// Cycles per iteration and the number of instructions llvm's Oryon model has no scheduling data for (those
    /// are skipped, `-skip-unsupported-instructions=lack-sched`; llvm 19 lacks e.g. scalar `fmul s`).
    public static func estimate(_ body: [String], in dir: URL, iterations: Int = 200) throws -> (cycles: Double, skipped: Int) {
        let file = dir.appendingPathComponent("loop-\(UUID().uuidString).s")
        try (body.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try Toolchain.run([Profile.mcaTool, "-mtriple=aarch64", "-mcpu=oryon-1", "-iterations=\(iterations)",
                                   "-skip-unsupported-instructions=lack-sched", file.path])
        guard r.status == 0 else { throw HybridError("\(Profile.mcaTool) failed:\n\(r.output)") }
        func field(_ name: String) -> Double? {
            r.output.components(separatedBy: "\n").first { $0.hasPrefix(name) }
                .flatMap { Double($0.dropFirst(name.count).trimmingCharacters(in: .whitespaces)) }
        }
        guard let cycles = field("Total Cycles:"), let its = field("Iterations:"), its > 0 else {
            throw HybridError("cannot read \(Profile.mcaTool)'s summary:\n\(r.output)")
        }
        let skipped = r.output.components(separatedBy: "\n").filter { $0.contains("unsupported instruction") }.count
        return (cycles / its, skipped)
    }

    /// Vector FMAs per cycle on Oryon according to llvm's model (16 independent fmla .4s).
    public static func fmaPeak(in dir: URL) throws -> Double {
        let probe = (0..<16).map { "fmla v\($0).4s, v24.4s, v25.4s" }
        let file = dir.appendingPathComponent("fma-probe.s")
        try (probe.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try Toolchain.run([Profile.mcaTool, "-mtriple=aarch64", "-mcpu=oryon-1", file.path])
        // The block's reciprocal throughput is the model's steady state (no start-up cycles).
        guard r.status == 0, let line = r.output.components(separatedBy: "\n").first(where: { $0.hasPrefix("Block RThroughput:") }),
              let rt = Double(line.dropFirst("Block RThroughput:".count).trimmingCharacters(in: .whitespaces)), rt > 0 else {
            throw HybridError("cannot read \(Profile.mcaTool)'s Oryon model:\n\(r.output)")
        }
        return 16 / rt
    }

    public struct Row {
        public var loop: Loop
        public var kernels: [String]
        public var cycles: Double
        public var skipped: Int
        public var peakFraction: Double
    }

    /// Compiles model.c of `sources` to assembly for aarch64 and measures every hot loop.
    public static func measure(sources: URL, target: Target) throws -> (peak: Double, rows: [Row]) {
        guard Toolchain.available(target.compiler) else {
            throw HybridError("--mca needs the C compiler \(target.compiler) (apt-get install gcc-aarch64-linux-gnu)")
        }
        let asm = sources.appendingPathComponent("model.s")
        let flags = Toolchain.cflags(target).filter { $0 != "-Werror" }
        let r = try Toolchain.run([target.compiler] + flags + ["-DHC_MCA", "-S", "-o", asm.path, "model.c"], in: sources)
        guard r.status == 0 else { throw HybridError("\(target.compiler) -S failed on model.c:\n\(r.output)") }
        let text = try String(contentsOf: asm, encoding: .utf8)
        let peak = try fmaPeak(in: sources)
        // Group identical bodies; keep the kernels that share each.
        var groups: [[String]: (Loop, [String])] = [:]
        var order: [[String]] = []
        for loop in loops(assembly: text) {
            if groups[loop.body] == nil {
                groups[loop.body] = (loop, [])
                order.append(loop.body)
            }
            groups[loop.body]!.1.append(loop.function)
        }
        var rows: [Row] = []
        for body in order {
            let (loop, kernels) = groups[body]!
            let (cycles, skipped) = try estimate(body, in: sources)
            rows.append(Row(loop: loop, kernels: kernels, cycles: cycles, skipped: skipped,
                            peakFraction: cycles > 0 && peak > 0 ? Double(loop.fmas) / cycles / peak : 0))
        }
        return (peak, rows.sorted { ($0.peakFraction, $0.loop.fmas) > ($1.peakFraction, $1.loop.fmas) })
    }

    public static func report(sources: URL, target: Target) throws -> String {
        let (peak, rows) = try measure(sources: sources, target: target)
        var s = "llvm-mca (\(Profile.mcaTool) -mcpu=oryon-1) on the hot inner loop of each generated function; FMA peak from llvm's Oryon model: "
            + String(format: "%.2f", peak) + " fmla .4s per cycle (\(Int((peak * 8).rounded())) FLOP/cycle)\n"
        let w = max(8, min(44, rows.map { $0.loop.name.count }.max() ?? 8))
        s += Profile.pad("loop", w) + "  instrs  skipped   FMAs   cycles/it   FLOP/cyc   % peak  kernels\n"
        // FMA loops first (by fraction of peak), then the loops without vector FMAs (scans, norms, elementwise),
        // whose cycles per iteration still tell their cost.
        let listed = rows.filter { $0.loop.fmas > 0 } + rows.filter { $0.loop.fmas == 0 }.sorted { $0.cycles > $1.cycles }
        for r in listed {
            let name = r.loop.name.count > w ? String(r.loop.name.prefix(w)) : r.loop.name
            let ks = r.kernels.count == 1 ? r.kernels[0] : "\(r.kernels[0]) and \(r.kernels.count - 1) more"
            s += Profile.pad(name, w) + String(format: "  %6d  %7d  %5d  %10.2f  %9.2f  %7.1f  ", r.loop.body.count, r.skipped, r.loop.fmas,
                        r.cycles, r.cycles > 0 ? Double(r.loop.flops) / r.cycles : 0, 100 * r.peakFraction) + ks + "\n"
        }
        if listed.isEmpty { s += "(no vector loops found in model.c)\n" }
        if rows.contains(where: { $0.skipped > 0 }) {
            s += "skipped: instructions llvm's Oryon model has no data for (left out of the estimate, so it is optimistic for those loops)\n"
        }
        return s
    }
}
