/// `hybridc opt`: runs a pipeline (or a list of passes) and shows what each pass did: IR dumps, timing, statistics,
/// and the result as text IR, a Graphviz kernel graph or C.
import Codegen
import Foundation
import Frontend
import HybridIR
import Passes

public struct OptOptions {
    public var input: String
    public var weights: WeightSource?
    public var size: InputSize?
    public var passes: [Pass.Type] = Pipelines.compile
    public var printAfterAll = false
    public var printAfter: Set<String> = []
    public var printAfterChange = false
    public var timePasses = false
    public var stats = false
    public var dumpDir: String?
    public var emit = "ir"
    public var target = Target.host

    public init(input: String) { self.input = input }
}

public enum Opt {
    /// Every pass with its summary, for `--list-passes`.
    public static func listPasses() -> String {
        let width = PassRegistry.all.map { $0.name.count }.max() ?? 0
        let inDefault = Set(Pipelines.compile.map { $0.name })
        var out = "passes (* = in the default compile pipeline):\n"
        for pass in PassRegistry.all {
            out += "  \(inDefault.contains(pass.name) ? "*" : " ") \(pass.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(pass.summary)\n"
        }
        out += "pipelines: " + Pipelines.named.keys.sorted().map { "\($0) = \(Pipelines.named[$0]!.map { $0.name }.joined(separator: ","))" }
            .joined(separator: "; ") + "\n"
        return out
    }

    /// Runs the passes, writing dumps and reports through `write` as they happen; returns warnings.
    public static func run(_ o: OptOptions, write: (String) -> Void) throws -> [String] {
        for name in o.printAfter where PassRegistry.named(name) == nil {
            throw HybridError("--print-ir-after: unknown pass '\(name)'; known passes: \(PassRegistry.all.map { $0.name }.joined(separator: ", "))")
        }
        let model = try ModelLoader.load(o.input, weights: o.weights ?? .random(seed: 0), input: o.size)
        var graph = model.graph
        let context = PassContext(weights: model.weights)
        var dumpIndex = 0
        let dumpDir = o.dumpDir.map { URL(fileURLWithPath: $0) }
        func dump(_ name: String, _ g: Graph) throws {
            guard let dir = dumpDir else { return }
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let file = dir.appendingPathComponent(String(format: "%02d-%@.hir", dumpIndex, name))
            try ("// IR after \(name)\n" + Printer.print(g)).write(to: file, atomically: true, encoding: .utf8)
            dumpIndex += 1
        }
        try dump("input", graph)
        var dumpError: Error?
        let records = try PassManager(o.passes).run(&graph, context) { record in
            if o.printAfterAll || o.printAfter.contains(record.pass) || o.printAfterChange {
                write("// ----- IR after \(record.pass) -----\n")
                write(o.printAfterChange && !record.changed ? "(unchanged)\n" : Printer.print(record.graphAfter))
            }
            do { try dump(record.pass, record.graphAfter) } catch { dumpError = error }
        }
        if let dumpError { throw HybridError("cannot write the IR dumps: \(dumpError.localizedDescription)", at: o.dumpDir ?? "") }

        switch o.emit {
        case "ir":
            if !(o.printAfterAll || o.printAfterChange) { write(Printer.print(graph)) }
        case "dot":
            write(dot(graph))
        case "c":
            let (plan, _) = try Compile.plan(spec: o.input, weights: o.weights ?? .random(seed: 0), input: o.size,
                                            target: o.target, passes: o.passes)
            write(try ModelEmitter.emit(plan, source: URL(fileURLWithPath: o.input).lastPathComponent).source)
        default:
            throw HybridError("--emit must be ir, dot or c, not '\(o.emit)'")
        }
        if o.timePasses {
            let total = records.map(\.seconds).reduce(0, +)
            var t = "// ----- pass timing -----\n"
            for r in records {
                t += "// \(r.pass.padding(toLength: 22, withPad: " ", startingAt: 0)) \(String(format: "%9.3f ms  %5.1f%%", r.seconds * 1000, total > 0 ? 100 * r.seconds / total : 0))\n"
            }
            t += "// \("total".padding(toLength: 22, withPad: " ", startingAt: 0)) \(String(format: "%9.3f ms", total * 1000))\n"
            write(t)
        }
        if o.stats {
            var t = "// ----- statistics -----\n"
            for r in records {
                let s = r.statistics.map { "\($0.0): \($0.1)" }.joined(separator: ", ")
                t += "// \(r.pass): \(s.isEmpty ? "-" : s)\n"
                for line in r.notes { t += "//   \(line)\n" }
            }
            // Free concatenations (plan-memory: `placed`) and slice views (`view`) are no kernel and write nothing of their own.
            let ops = graph.ops.filter { $0.kind != .weight && $0.kind != .reshape && (try? $0.attributes.bool("placed")) != true
                && (try? $0.attributes.bool("view")) != true }
            t += "// kernels: \(ops.count); bytes written per inference: \(ops.compactMap { $0.type?.byteSize }.reduce(0, +)) (op outputs; fused ops' scratch not counted)\n"
            write(t)
        }
        return model.warnings
    }

    /// Graphviz: one node per kernel (reshapes are views, weights are not drawn), labelled with the ops it computes.
    public static func dot(_ graph: Graph) -> String {
        var producer: [ValueID: String] = [:]
        for input in graph.inputs { producer[input.id] = "input\(input.id)" }
        var out = "digraph \"\(graph.name)\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n"
        for input in graph.inputs { out += "  input\(input.id) [label=\"input\\n\(input.type)\", shape=ellipse];\n" }
        var index = 0
        for op in graph.ops {
            switch op.kind {
            case .weight:
                continue
            case .reshape:
                producer[op.result] = producer[op.operands[0]]
                continue
            case .slice where (try? op.attributes.bool("view")) == true:
                producer[op.result] = producer[op.operands[0]]
                continue
            default:
                index += 1
                let node = "k\(index)"
                producer[op.result] = node
                var label = "k\(index)_\(op.kind.name)"
                if case .string(let fused)? = op.attributes["fuses"] { label += "\\nfuses: \(fused)" }
                if !op.scope.isEmpty { label += "\\n\(op.scope)" }
                if let t = op.type { label += "\\n\(t)" }
                out += "  \(node) [label=\"\(label)\"];\n"
                var seen = Set<String>()
                for v in op.operands {
                    if let p = producer[v], seen.insert(p).inserted { out += "  \(p) -> \(node);\n" }
                }
            }
        }
        for v in graph.outputs {
            out += "  output [shape=ellipse];\n"
            if let p = producer[v] { out += "  \(p) -> output;\n" }
        }
        return out + "}\n"
    }
}
