/// Checks a weights file against the weights a graph needs, reporting every missing, extra or mis-shaped key at once.
import HybridIR

public enum WeightBinder {
    /// The weights of `graph` taken from `store`; throws one error listing all problems, by key.
    public static func bind(_ graph: Graph, _ store: WeightStore, source: String) throws -> WeightStore {
        var wanted: [String: [Int]] = [:]
        var order: [String] = []
        for op in graph.ops where op.kind == .weight {
            guard let name = try? op.attributes.string("name"), let type = op.type else { continue }
            if wanted[name] == nil { order.append(name) }
            wanted[name] = type.shape
        }
        var missing: [String] = [], misshaped: [String] = []
        var bound: WeightStore = [:]
        for name in order {
            guard let t = store[name] else { missing.append(name); continue }
            if t.shape != wanted[name]! {
                misshaped.append("\(name): expected \(wanted[name]!), got \(t.shape)")
            } else {
                bound[name] = t
            }
        }
        let extra = store.keys.filter { wanted[$0] == nil }.sorted()
        guard missing.isEmpty && misshaped.isEmpty && extra.isEmpty else {
            var lines = ["the weights do not match the model (\(missing.count) missing, \(extra.count) unexpected, \(misshaped.count) mis-shaped):"]
            lines += missing.map { "  missing: \($0)" }
            lines += extra.map { "  unexpected: \($0)" }
            lines += misshaped.map { "  wrong shape: \($0)" }
            if !extra.isEmpty && extra.allSatisfy({ $0.hasPrefix("module.") }) {
                lines.append("  (the keys start with 'module.': convert the checkpoint with scripts/convert_pth.py, which strips it)")
            }
            throw HybridError(lines.joined(separator: "\n"), at: source)
        }
        return bound
    }
}
